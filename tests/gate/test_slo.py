"""SLO files: every shipped one loads; every mistake is reported at file:line:col with the field,
what was expected and a close match."""

from __future__ import annotations

from pathlib import Path

import pytest

from loadkit.gate.slo import Objective, check_names, load_slo
from loadkit.run.validate import validate_file
from loadkit.spec import SpecError
from loadkit.spec.loader import load_document
from loadkit.spec.values import parse_duration

ROOT = Path(__file__).parents[2]

CONTRACT_EXAMPLE = """\
name: double11-release
description: what the release must hold at the Double 11 peak
objectives:
  - max_busy_rate: 2%
    level: action
    phase: midnight-peak
    name: payments busy at the peak
  - max_busy_rate: 0.5%
    cause: throttled
  - max_p95: 300ms
  - max_p99: 800ms
  - max_recovery: 30s
    fault: db-crash
  - min_achieved_rate: 95%
  - min_achieved_rate: 800/s
  - max_unsent: 0.1%
  - integrity: clean
  - max_busy_rate: 3%
    level: request
    fault: db-crash
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "slo.yaml"
    path.write_text(text)
    return path


def _problems(tmp_path: Path, text: str) -> list[str]:
    path = _write(tmp_path, text)
    with pytest.raises(SpecError) as caught:
        load_slo(path)
    return [str(p).removeprefix(f"{path}:") for p in caught.value.problems]


def test_the_contract_example_loads_into_objectives(tmp_path: Path) -> None:
    slo = load_slo(_write(tmp_path, CONTRACT_EXAMPLE))
    assert slo.name == "double11-release"
    o = slo.objectives
    assert o[0] == Objective(
        "max_busy_rate",
        0.02,
        phase="midnight-peak",
        name="payments busy at the peak",
        line=4,
    )
    assert o[0].label() == "busy rate (action) in phase midnight-peak ≤ 2%"
    assert (o[1].measure, o[1].limit, o[1].cause) == ("max_busy_rate", 0.005, "throttled")
    assert o[2].limit == pytest.approx(0.3) and o[3].limit == pytest.approx(0.8)
    assert (o[4].limit, o[4].fault) == (30.0, "db-crash")
    assert (o[5].limit, o[5].relative) == (0.95, True)
    assert (o[6].limit, o[6].relative) == (800.0, False)
    assert o[7].limit == pytest.approx(0.001)
    assert (o[8].measure, o[8].limit) == ("integrity", None)
    assert (o[9].level, o[9].fault) == ("request", "db-crash")
    assert [x.label() for x in o[1:]] == [
        "throttled busy rate (action) ≤ 0.5%",
        "p95 latency (action) ≤ 300ms",
        "p99 latency (action) ≤ 800ms",
        "recovery of fault db-crash ≤ 30s",
        "achieved rate ≥ 95% of offered",
        "achieved rate ≥ 800/s",
        "unsent arrivals ≤ 0.1%",
        "money integrity clean",
        "busy rate (request) during fault db-crash ≤ 3%",
    ]


#: one SLO file holding many mistakes, and every problem the reader must report
MISTAKES = """\
name: bad
objectives:
  - max_busy_rat: 2%
  - max_busy_rate: 2
    levle: action
  - max_p95: 300
    cause: throttled
  - max_recovery: 30s
    phase: peak
  - integrity: ok
  - min_achieved_rate: 0.95
  - max_unsent: 0.1%
    max_busy_rate: 1%
  - level: request
  - max_busy_rate: 1%
    cause: throtled
    level: requests
    phase: a
    fault: b
  - max_busy_rate: 150%
  - max_p99: soon
"""
MISTAKES_EXPECTED = [
    "3:5: objectives[0].max_busy_rat: unknown key 'max_busy_rat'; did you mean 'max_busy_rate'?",
    "4:20: objectives[1].max_busy_rate: expected a percentage like '10%' (or a fraction "
    "from 0 to 1), got 2; did you mean '2%'?",
    "5:5: objectives[1].levle: unknown key 'levle'; did you mean 'level'?",
    "6:14: objectives[2].max_p95: expected a duration like '300ms' or '1.5s', got the bare "
    "number 300; did you mean '300ms'?",
    "7:5: objectives[2].cause: 'cause' does not apply to max_p95: a cause applies to "
    "max_busy_rate only",
    "9:5: objectives[3].phase: 'phase' does not apply to max_recovery: recovery belongs to "
    "a fault: use 'fault:'",
    "10:16: objectives[4].integrity: expected 'clean', got 'ok'",
    "11:24: objectives[5].min_achieved_rate: expected a percentage of the offered rate like "
    "'95%', or a rate like '800/s', got the bare number 0.95; did you mean '95%' or "
    "'0.95/s'?",
    "13:5: objectives[6].max_busy_rate: one measure per objective, this one already has "
    "'max_unsent'; write each as its own '- ' item",
    "14:5: objectives[7]: an objective needs one measure: max_busy_rate, max_p95, max_p99, "
    "max_recovery, min_achieved_rate, max_unsent, integrity",
    "16:12: objectives[8].cause: unknown busy cause 'throtled'; did you mean 'throttled'? "
    "(expected one of: throttled, maintenance, unavailable, server_error, gateway_timeout, "
    "timeout, connection)",
    "17:12: objectives[8].level: unknown level 'requests'; did you mean 'request'? "
    "(expected one of: action, request)",
    "19:12: objectives[8].fault: give either 'phase:' or 'fault:', not both",
    "20:20: objectives[9].max_busy_rate: expected at most 100%, got '150%'",
    "21:14: objectives[10].max_p99: expected a duration like '90s', '2m', '1h30m' or "
    "'500ms', got 'soon'",
]


def test_every_mistake_is_reported_with_its_place(tmp_path: Path) -> None:
    assert _problems(tmp_path, MISTAKES) == MISTAKES_EXPECTED


#: SLO files with a mistake at file level, and the problems the reader reports
FILE_MISTAKES: list[tuple[str, list[str]]] = [
    ("name: x\n", ["1:1: objectives: missing required key 'objectives' in this SLO file"]),
    (
        "objectives: []\nnmae: x\n",
        [
            "1:13: objectives: expected at least one objective, got an empty list",
            "2:1: nmae: unknown key 'nmae'; did you mean 'name'?",
        ],
    ),
    (
        "objectives:\n  - max_busy_rate\n",
        [
            "2:5: objectives[0]: expected an objective like '- max_busy_rate: 2%' "
            "('key: value' lines), got 'max_busy_rate'"
        ],
    ),
    (
        "objectives:\n  - {max_busy_rate: 1%, phase: ''}\n",
        ["2:32: objectives[0].phase: expected a phase name, got ''"],
    ),
]


@pytest.mark.parametrize(("text", "expected"), FILE_MISTAKES)
def test_file_level_mistakes(tmp_path: Path, text: str, expected: list[str]) -> None:
    assert _problems(tmp_path, text) == expected


def test_a_fraction_is_a_percentage_too(tmp_path: Path) -> None:
    slo = load_slo(_write(tmp_path, "objectives:\n  - max_busy_rate: 0.02\n"))
    assert slo.objectives[0].limit == 0.02 and slo.objectives[0].label().endswith("≤ 2%")
    assert slo.name == "slo"  # the file name when none is given


def test_phase_and_fault_names_are_checked_against_the_run(tmp_path: Path) -> None:
    text = (
        "objectives:\n  - {max_busy_rate: 1%, phase: peek}\n  - max_recovery: 30s\n    fault: db\n"
    )
    path = _write(tmp_path, text)
    slo = load_slo(path)
    with pytest.raises(SpecError) as caught:
        check_names(slo, phases=["warm", "peak"], faults=["db-down"])
    assert str(caught.value).splitlines() == [
        f"{path}:2:32: objectives[0].phase: the profile has no phase 'peek'; did you mean "
        "'peak'? (its phases: warm, peak)",
        f"{path}:4:12: objectives[1].fault: the scenario has no fault 'db' (its faults: db-down)",
    ]
    check_names(slo, phases=["peek"], faults=None)  # faults not checked without a scenario
    check_names(slo, phases=["peek#1", "peek#2"])  # a repeated stage's name covers its repeats


def test_every_shipped_slo_file_validates_and_matches_its_profile() -> None:
    slo_files = sorted((ROOT / "slo").glob("*.yaml"))
    profiles = {p.stem for p in (ROOT / "profiles").glob("*.yaml")}
    assert profiles <= {p.stem for p in slo_files}, "one SLO file per shipped profile"
    for path in slo_files:
        assert "SLO" in validate_file(path)
        slo = load_slo(path)
        profile_path = ROOT / "profiles" / f"{path.stem}.yaml"
        if not profile_path.exists():
            profile_path = ROOT / "loadkit" / "data" / f"{path.stem}.yaml"
        doc = load_document(profile_path)
        from loadkit.profile.read import read_profile

        phases = [s.name for s in read_profile(doc).stages]
        check_names(slo, phases=phases)


def test_validate_accepts_slo_files(tmp_path: Path) -> None:
    summary = validate_file(_write(tmp_path, CONTRACT_EXAMPLE))
    assert summary.endswith(
        "SLO 'double11-release': 10 objectives (busy rate, p95, p99, recovery, achieved rate, "
        "unsent, integrity)"
    )


def test_latency_limits_parse_like_durations() -> None:
    assert parse_duration("800ms") == pytest.approx(0.8)


def test_every_example_in_docs_slo_md_reads(tmp_path: Path) -> None:
    import re

    blocks = re.findall(r"```yaml\n(.*?)```", (ROOT / "docs" / "slo.md").read_text(), re.S)
    assert len(blocks) >= 2
    for i, block in enumerate(blocks):
        path = tmp_path / f"example-{i}.yaml"
        path.write_text(block)
        assert load_slo(path).objectives, block
