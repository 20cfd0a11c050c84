"""SLO objectives on a slice of the run (journey, endpoint, target instance, network class),
combined with phase, fault, cause and level: read with every mistake at file:line:col, judged on
that slice's numbers, watched by --slo-abort on that slice."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from loadkit.gate import evaluate, gate_run, load_slo
from loadkit.gate.slo import Objective, check_names
from loadkit.gate.watch import SloWatch
from loadkit.profile.model import load_profile
from loadkit.report.metrics import compute_metrics
from loadkit.rundir.timeline import Timeline
from loadkit.spec import SpecError
from tests.report.conftest import build_breakdown_run

SCOPED = """\
name: per-slice
objectives:
  - max_busy_rate: 1%
    instance: wallet-2
    phase: peak
  - max_busy_rate: 1%
    instance: wallet-1
    phase: peak
  - max_p95: 300ms
    journey: pay
    network: weak-4g
  - max_busy_rate: 5%
    endpoint: POST /pay
    fault: slow-db-link
    cause: timeout
  - max_recovery: 30s
    fault: slow-db-link
    instance: wallet-1
  - min_achieved_rate: 150/s
    journey: balance
  - max_unsent: 0.1%
    network: wifi
"""


@pytest.fixture
def breakdown_run(tmp_path: Path) -> Path:
    """Double 11 in miniature: wallet-1 30% busy while its database link is slow, wallet-2 fine."""
    return build_breakdown_run(tmp_path / "20261111-000000-double11-mini")


def _slo(tmp_path: Path, text: str = SCOPED) -> Path:
    path = tmp_path / "slo.yaml"
    path.write_text(text)
    return path


def _problems(tmp_path: Path, text: str) -> list[str]:
    path = _slo(tmp_path, text)
    with pytest.raises(SpecError) as caught:
        load_slo(path)
    return [str(p).removeprefix(f"{path}:") for p in caught.value.problems]


def test_scoped_objectives_read_and_say_what_they_measure(tmp_path: Path) -> None:
    slo = load_slo(_slo(tmp_path))
    labels = [o.label() for o in slo.objectives]
    assert labels[0] == "busy rate (action) of instance wallet-2 in phase peak ≤ 1%"
    assert labels[2] == "p95 latency (action) of journey pay, network class weak-4g ≤ 300ms"
    endpoint = slo.objectives[3]
    assert endpoint.level == "request", "an endpoint is one request: its objectives count those"
    assert endpoint.scope is not None and endpoint.scope.endpoint == "POST /pay"
    assert slo.objectives[0].scope is not None and Objective("max_p95", 0.3).scope is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "objectives:\n  - max_busy_rate: 1%\n    endpoint: GET /x\n    level: action\n",
            "4:12: objectives[0].level: an endpoint is one HTTP request",
        ),
        (
            "objectives:\n  - min_achieved_rate: 95%\n    journey: pay\n",
            "2:24: objectives[0].min_achieved_rate: a share of the offered rate needs the "
            "whole run",
        ),
        (
            "objectives:\n  - max_recovery: 30s\n    endpoint: GET /x\n",
            "3:5: objectives[0].endpoint: 'endpoint' does not apply to max_recovery: recovery "
            "is measured on user actions",
        ),
        (
            "objectives:\n  - integrity: clean\n    instance: wallet-1\n",
            "3:5: objectives[0].instance: 'instance' does not apply to integrity",
        ),
        (
            "objectives:\n  - max_busy_rate: 1%\n    instnce: wallet-1\n",
            "3:5: objectives[0].instnce: unknown key 'instnce'; did you mean 'instance'?",
        ),
    ],
)
def test_scope_mistakes_are_reported_at_their_place(
    tmp_path: Path, text: str, expected: str
) -> None:
    problems = _problems(tmp_path, text)
    assert any(p.startswith(expected) for p in problems), problems


def test_journey_and_network_names_are_checked_against_the_profile(tmp_path: Path) -> None:
    slo = load_slo(
        _slo(
            tmp_path,
            "objectives:\n  - max_busy_rate: 1%\n    journey: pya\n"
            "  - max_busy_rate: 1%\n    network: weak4g\n",
        )
    )
    with pytest.raises(SpecError) as caught:
        check_names(slo, journeys=["pay", "balance"], networks=["wifi", "weak-4g"])
    text = "\n".join(str(p) for p in caught.value.problems)
    assert (
        ":3:14: objectives[0].journey: the profile has no journey 'pya'; did you mean 'pay'?"
        in text
    )
    assert "the profile has no network class 'weak4g'; did you mean 'weak-4g'?" in text
    check_names(slo, journeys=None, networks=None)  # not checked without a profile


def test_one_run_passes_for_one_instance_and_fails_for_the_other(
    tmp_path: Path, breakdown_run: Path
) -> None:
    result = gate_run(breakdown_run, load_slo(_slo(tmp_path)))
    verdicts = {r.title(): (r.passed, r.measured) for r in result.results}
    assert verdicts["busy rate (action) of instance wallet-2 in phase peak ≤ 1%"] == (True, 0.0)
    failed = verdicts["busy rate (action) of instance wallet-1 in phase peak ≤ 1%"]
    assert failed[0] is False and failed[1] == pytest.approx(0.25)
    assert (
        verdicts["p95 latency (action) of journey pay, network class weak-4g ≤ 300ms"][0] is False
    )
    timeout = result.results[3]
    # POST /pay during the fault: 25 s × 200 answered/s, 20 timeouts/s from wallet-1
    assert timeout.passed is False and timeout.measured == pytest.approx(25 * 20 / (25 * 200))
    recovery = result.results[4]
    assert recovery.passed and recovery.objective.instance == "wallet-1"
    achieved = result.results[5]
    assert achieved.passed and achieved.measured == pytest.approx(200.0)
    gate = json.loads((breakdown_run / "gate.json").read_text())
    assert gate["objectives"][1]["scope"] == {"instance": "wallet-1"}
    assert gate["objectives"][3]["scope"] == {"endpoint": "POST /pay"}


def test_a_slice_the_run_does_not_have_fails_and_names_what_it_has(
    tmp_path: Path, breakdown_run: Path
) -> None:
    slo = load_slo(_slo(tmp_path, "objectives:\n  - max_busy_rate: 1%\n    instance: wallet-3\n"))
    result = evaluate(compute_metrics(breakdown_run), slo, run_dir=breakdown_run)
    (only,) = result.results
    assert not only.passed and only.measured is None
    assert only.detail == (
        "nothing was answered in instance wallet-3 (this run's instances: wallet-1, wallet-2)"
    )


def test_slo_abort_watches_a_slice(breakdown_run: Path, tmp_path: Path) -> None:
    profile = load_profile(breakdown_run / "profile.yaml")
    timeline = Timeline.read(breakdown_run / "timeline.jsonl")
    text = "objectives:\n  - max_busy_rate: 1%\n    phase: peak\n    instance: {}\n"
    for instance, stops in (("wallet-2", False), ("wallet-1", True)):
        watch = SloWatch(load_slo(_slo(tmp_path, text.format(instance))), profile, drain_s=1.0)
        why = watch.check(timeline, 200.0, force=True)
        assert (why is not None) == stops, why
    assert "25.00% (1,500 busy of 6,000 answered)" in str(
        SloWatch(load_slo(_slo(tmp_path, text.format("wallet-1"))), profile, drain_s=1.0).check(
            timeline, 200.0, force=True
        )
    )
