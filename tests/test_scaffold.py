"""``loadkit init`` (:func:`loadkit.scaffold.scaffold`): the files it writes validate (reader and
schema), their commented examples validate once uncommented, nothing is overwritten without
``force``, and a scaffolded profile really runs and passes its own gate against a service."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from jsonschema import Draft7Validator

from loadkit.chaos.scenario import load_scenario, make_plan
from loadkit.errors import ConfigError
from loadkit.gate import gate_run, load_slo
from loadkit.profile.model import load_profile
from loadkit.run.orchestrator import RunOptions, run_profile
from loadkit.run.validate import detect_kind, validate_file
from loadkit.scaffold import scaffold
from loadkit.schemas import MODELINE, load_schema, schema_path
from loadkit.spec.loader import load_document, parse_document
from tests.conftest import PlainService

KINDS = {"profile.yaml": "profile", "slo.yaml": "slo", "chaos.yaml": "scenario"}


def check_against_schemas(folder: Path) -> None:
    for file, kind in KINDS.items():
        path = folder / file
        first = path.read_text().splitlines()[0]
        schema = (folder / first.removeprefix(MODELINE)).resolve()
        assert first.startswith(MODELINE) and schema == (folder / "schemas" / f"{kind}.schema.json")
        assert schema.read_text() == schema_path(kind).read_text()  # a copy of the shipped one
        doc = load_document(path)
        assert detect_kind(doc) == kind
        errors = list(Draft7Validator(load_schema(kind)).iter_errors(doc.root.plain()))
        assert not errors, [e.message for e in errors]


def test_a_service_gets_http_journeys_and_every_file_validates(tmp_path: Path) -> None:
    folder = tmp_path / "loadtest"
    result = scaffold("http://127.0.0.1:8080/healthz?deep=1", folder, name="shop")
    assert [p.relative_to(folder).as_posix() for p in result.files] == [
        "profile.yaml",
        "slo.yaml",
        "chaos.yaml",
        "data/accounts.csv",
        "schemas/profile.schema.json",
        "schemas/slo.schema.json",
        "schemas/scenario.schema.json",
    ]
    assert result.summaries == tuple(validate_file(folder / f) for f in KINDS)
    assert result.next_steps == (
        f"loadkit validate {folder}/profile.yaml {folder}/slo.yaml {folder}/chaos.yaml",
        f"loadkit run {folder}/profile.yaml --target http://127.0.0.1:8080 --slo {folder}/slo.yaml",
        f"loadkit stack up && loadkit chaos run {folder}/chaos.yaml --profile "
        f"{folder}/profile.yaml",
    )
    profile = load_profile(folder / "profile.yaml")
    assert profile.name == "shop" and [s.name for s in profile.stages] == [
        "warm-up",
        "ramp",
        "hold",
        "spike",
        "cool-down",
    ]
    (journey,) = profile.journeys
    assert journey.steps[0].path.source == "/healthz?deep=1"  # type: ignore[union-attr]
    check_against_schemas(folder)
    # the scenario's phase times fall within the profile
    plan = make_plan(load_scenario(folder / "chaos.yaml"), profile)
    assert [(f.spec.name, f.start_s, f.end_s) for f in plan.faults] == [
        ("slow-db", 90.0, 120.0),
        ("api-crash", 180.0, 190.0),
    ]


def test_the_commented_example_validates_once_uncommented(tmp_path: Path) -> None:
    scaffold("http://127.0.0.1:8080", tmp_path)
    text = (tmp_path / "profile.yaml").read_text()
    # remove '# ' where the comment says: the 'pay' journey and the data block
    text = re.sub(r"(?m)^  # (?=[ -])", "  ", text)
    text = re.sub(r"(?m)^# (data:|  accounts: data/)", r"\1", text)
    assert "\n  - name: pay\n" in text and "\ndata:\n" in text
    (tmp_path / "profile.yaml").write_text(text)
    profile = load_profile(tmp_path / "profile.yaml")
    assert [j.name for j in profile.journeys] == ["home", "pay"]
    assert profile.data[0].rows[0] == ("user001", "secret-001") and len(profile.data[0].rows) == 100
    doc = parse_document(text, "profile.yaml")
    assert not list(Draft7Validator(load_schema("profile")).iter_errors(doc.root.plain()))
    assert profile.with_tags(include=["payments"]).journeys[0].name == "pay"


def test_the_reference_wallet_gets_its_own_journeys(tmp_path: Path) -> None:
    result = scaffold(None, tmp_path)
    assert result.next_steps == (
        f"loadkit validate {tmp_path}/profile.yaml {tmp_path}/slo.yaml {tmp_path}/chaos.yaml",
        f"loadkit run {tmp_path}/profile.yaml --chaos {tmp_path}/chaos.yaml --slo "
        f"{tmp_path}/slo.yaml",
    )
    profile = load_profile(tmp_path / "profile.yaml")
    assert profile.name == "wallet" and len(profile.journeys) == 5
    assert not (tmp_path / "data").exists()
    assert [o.measure for o in load_slo(tmp_path / "slo.yaml").objectives][-1] == "integrity"
    check_against_schemas(tmp_path)


def test_existing_files_are_kept_unless_forced(tmp_path: Path) -> None:
    (tmp_path / "slo.yaml").write_text("mine\n")
    with pytest.raises(ConfigError) as caught:
        scaffold("http://127.0.0.1:8080", tmp_path)
    assert caught.value.message == (
        f"init: {tmp_path}/slo.yaml already exist(s); choose another folder or add --force"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["slo.yaml"]  # nothing written
    scaffold("http://127.0.0.1:8080", tmp_path, force=True)
    assert (tmp_path / "slo.yaml").read_text() != "mine\n"


@pytest.mark.parametrize(
    ("target", "name", "message"),
    [
        (
            "127.0.0.1:8080",
            None,
            "init: expected a URL like http://127.0.0.1:8080, got '127.0.0.1:8080'",
        ),
        (
            "ftp://127.0.0.1",
            None,
            "init: expected a URL like http://127.0.0.1:8080, got 'ftp://127.0.0.1'",
        ),
        (
            "http://127.0.0.1",
            "my shop",
            "init: --name: expected letters, digits, '_', '.' or '-', got 'my shop'",
        ),
    ],
)
def test_bad_arguments(tmp_path: Path, target: str, name: str | None, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        scaffold(target, tmp_path, name=name)
    assert caught.value.message == message
    assert not any(tmp_path.iterdir())


@pytest.mark.slow
def test_a_scaffolded_profile_runs_and_passes_its_gate(
    plain_service: PlainService, tmp_path: Path
) -> None:
    scaffold(f"{plain_service.url}/healthz", tmp_path / "loadtest")
    folder = tmp_path / "loadtest"
    result = run_profile(
        RunOptions(
            profile=folder / "profile.yaml",
            target=plain_service.url,
            time_scale=0.05,  # the 3m50s profile in 11.5 s; every stage still lasts 1 s or more
            out=tmp_path / "reports",
            slo=folder / "slo.yaml",
        )
    )
    assert result.status == "completed"
    gate = gate_run(result.run_dir, load_slo(folder / "slo.yaml"), write=False)
    assert gate.passed, [r.objective.label() for r in gate.failed]
    assert result.timeline.totals("action").answered > 100
