"""The schemas and the readers agree on the mistakes of the test corpus: every structural mistake
(unknown key, wrong type, missing key, bad enum value, malformed duration…) the readers report
in tests/profile/test_read.py, tests/chaos/test_spec.py, tests/gate/test_slo.py and
tests/stack/test_system.py, the schema rejects too, at the same place; what only the reader can
see (it needs the whole file, or the file system) is listed here with the reason, and the schema
must accept it (so the list stays exact). Valid files of the test corpus pass both."""

from __future__ import annotations

import re
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft7Validator

from loadkit.schemas import load_schema
from loadkit.spec.loader import parse_document
from tests.chaos import test_spec as scenario_cases
from tests.gate import test_slo as slo_cases
from tests.load import test_journeys
from tests.profile import test_data, test_model
from tests.profile import test_read as profile_cases
from tests.stack import test_system as system_cases

ROOT = Path(__file__).parents[2]
#: mistakes only the reader can see, by case name, with why
BEYOND_A_SCHEMA: dict[str, dict[str, str]] = {
    "profile": {
        "open and closed stages mixed": "compares stages with each other",
        "exponential ramp from zero": "needs the level the previous stage ended at",
        "duplicate stage names": "compares names across the list",
        "stage too short once time_scale compresses it": "multiplies two fields",
        "mix naming an unknown journey": "needs the journeys' names",
        "users over the accounts there are": "compares with users.accounts",
        "amount range upside down": "compares two values",
        "duplicate journey names": "compares names across the list",
        "template using a variable no earlier step extracts": "needs the earlier steps",
        "network weights not adding up; jitter over latency": "adds and compares values",
        "duplicate YAML keys": "YAML itself: the editor's YAML parser reports it",
    },
    "scenario": {
        "until before at": "compares two times",
        "jitter above the latency": "compares two values",
        "overlapping maintenance windows on one instance": "compares faults with each other",
        "two faults with one name": "compares names across the list",
        "an abort on a probe that does not exist": "needs the probes' names",
    },
    "slo": {},
    "system": {
        "a missing CA file": "needs the file system",
        "tls on a plain http service": "compares the tls block with the URLs' schemes",
        "two probes with one name": "compares names across the list",
    },
}
_PROBLEM = re.compile(r"(?:[^:]*:)?\d+:\d+: ([^:]*): ")


def _corpus() -> Iterator[tuple[str, str, Any, list[str]]]:
    """(kind, case, the file as data, the fields the reader reports)."""
    for kind, cases in (
        ("profile", profile_cases.CASES),
        ("scenario", scenario_cases.CASES),
        ("system", system_cases.MISTAKES),
    ):
        for case, (text, expected) in cases.items():
            doc = parse_document(textwrap.dedent(text).lstrip("\n"), "case.yaml")
            yield kind, case, doc.root.plain(), [_field(line) for line in expected]
    many = parse_document(slo_cases.MISTAKES, "slo.yaml").root.plain()
    assert isinstance(many, dict)
    for index, objective in enumerate(many["objectives"]):
        prefix = f"objectives[{index}]"
        fields = [_field(p) for p in slo_cases.MISTAKES_EXPECTED if _field(p).startswith(prefix)]
        shown = {"objectives": [objective]}
        yield (
            "slo",
            f"objective {index}",
            shown,
            [f"objectives[0]{f[len(prefix) :]}" for f in fields],
        )
    for index, (text, expected) in enumerate(slo_cases.FILE_MISTAKES):
        doc = parse_document(text, "slo.yaml")
        yield "slo", f"file mistake {index}", doc.root.plain(), [_field(e) for e in expected]


def _field(problem: str) -> str:
    match = _PROBLEM.match(problem)
    assert match, problem
    return match[1]


def _dotted(path: Any) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else ("." if out else "") + str(part)
    return out


CORPUS = list(_corpus())
VALIDATORS = {kind: Draft7Validator(load_schema(kind)) for kind in BEYOND_A_SCHEMA}


def test_the_corpus_is_large_and_classified() -> None:
    assert len(CORPUS) >= 80
    names = {(kind, case) for kind, case, _, _ in CORPUS}
    for kind, cases in BEYOND_A_SCHEMA.items():
        assert {(kind, case) for case in cases} <= names, "a listed case no longer exists"
    structural = [c for k, c, _, _ in CORPUS if c not in BEYOND_A_SCHEMA[k]]
    assert len(structural) >= 60


@pytest.mark.parametrize(
    ("kind", "case", "data", "fields"), CORPUS, ids=[f"{k}: {c}" for k, c, _, _ in CORPUS]
)
def test_schema_and_reader_agree_on_each_mistake(
    kind: str, case: str, data: Any, fields: list[str]
) -> None:
    errors = list(VALIDATORS[kind].iter_errors(data))
    if case in BEYOND_A_SCHEMA[kind]:
        assert not errors, f"the schema catches '{case}' now: take it off BEYOND_A_SCHEMA"
        return
    assert errors, f"the reader refuses '{case}' ({fields}), the schema accepts it"
    for error in errors:  # at the place the reader names (or the mapping around it)
        path = _dotted(error.absolute_path)
        assert any(f.startswith(path) or path.startswith(f) for f in fields), (path, fields)


def _valid() -> Iterator[tuple[str, str, str]]:
    yield "slo", "the SLO contract example", slo_cases.CONTRACT_EXAMPLE
    for name in ("PROFILE", "CLOSED", "FED"):
        yield "profile", f"test_journeys.{name}", textwrap.dedent(getattr(test_journeys, name))
    yield "profile", "test_data.PROFILE", textwrap.dedent(test_data.PROFILE)
    yield "profile", "test_model.TAGGED", textwrap.dedent(test_model.TAGGED)
    yield "system", "test_system.GOOD", system_cases.GOOD
    yield "system", "test_system.CHAOS", system_cases.CHAOS
    for path in sorted((ROOT / "tests" / "integrity" / "data").glob("*.yaml")):
        kind = "profile" if "stages:" in path.read_text() else "scenario"
        yield kind, path.name, path.read_text()


VALID = list(_valid())


@pytest.mark.parametrize(("kind", "name", "text"), VALID, ids=[n for _, n, _ in VALID])
def test_valid_files_of_the_corpus_pass_the_schema(kind: str, name: str, text: str) -> None:
    data = parse_document(text.lstrip("\n"), name).root.plain()
    errors = list(VALIDATORS[kind].iter_errors(data))
    assert not errors, [f"{_dotted(e.absolute_path)}: {e.message}" for e in errors]
