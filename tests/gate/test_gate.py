"""The gate on hand-built run directories: for each kind of objective, exactly at the limit
passes and just over fails; baselines; invalid runs; what ``loadkit gate`` prints, writes and
exits with."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from junitparser import JUnitXml

from loadkit.cli.gate import parse_points
from loadkit.gate import GateResult, evaluate, gate_run, load_slo
from loadkit.gate.evaluate import within
from loadkit.gate.slo import Objective, Slo
from loadkit.gate.watch import SloWatch
from loadkit.profile.model import load_profile
from loadkit.report.metrics import compute_metrics
from loadkit.rundir.timeline import Timeline
from loadkit.stack.reference import ReferenceStack
from tests.report.conftest import build_fault_run
from tests.report.rundirs import RunDirBuilder
from tests.support import loadkit

ROOT = Path(__file__).parents[2]

# 10 s at 100 arrivals/s: 1,000 scheduled actions, 500 in each phase
PROFILE = """
name: hand-built
stages:
  - {name: calm, duration: 5s, rate: 100/s}
  - {name: peak, duration: 5s, rate: 100/s}
journeys:
  - {name: pay, weight: 1, http: [{name: pay, path: /pay}]}
"""
CLEAN = {
    "schema": "loadkit.integrity/v1",
    "ok": True,
    "error": None,
    "source": "reference",
    "acks": {"acknowledged": 900, "refused": 100, "unknown": 0, "total": 1000},
    "lost": 0,
    "duplicated": 0,
    "unexpected": 0,
    "refused_applied": 0,
    "unknown_applied": 0,
    "unknown_not_applied": 0,
    "money_conserved": True,
    "negative_balances": 0,
    "examples": {"lost": [], "duplicated": [], "unexpected": []},
    "unsafe_mode": None,
}


def build(
    path: Path,
    *,
    busy: int = 0,
    throttled: int = 0,
    peak_busy: int = 0,
    request_busy: int = 0,
    unsent: int = 0,
    missing: int = 0,
    lat_ms: float = 20.0,
    status: str = "completed",
    integrity: dict[str, object] | None = None,
) -> Path:
    """1,000 arrivals over 10 s; ``busy`` (cause unavailable), ``throttled`` and ``unsent``
    arrivals in the first seconds, ``peak_busy`` busy actions in the peak phase,
    ``request_busy`` extra busy requests (retries that a later attempt saved), and ``missing``
    arrivals never recorded at all (the achieved rate falls short of the offered one)."""
    rd = RunDirBuilder(path, profile=PROFILE, status=status, integrity=integrity)
    left = {"busy": busy, "throttled": throttled, "peak": peak_busy, "unsent": unsent}
    gone = missing
    for t in range(10):
        phase = "calm" if t < 5 else "peak"
        take = {k: min(v, 100) if (k != "peak" or t >= 5) else 0 for k, v in left.items()}
        causes = {"unavailable": take["busy"]} if take["busy"] else {}
        rest = 100 - take["busy"]
        t_throttled = min(take["throttled"], rest)
        rest -= t_throttled
        t_peak = min(take["peak"], rest)
        rest -= t_peak
        t_unsent = min(take["unsent"], rest)
        rest -= t_unsent
        t_gone = min(gone, rest)
        rest -= t_gone
        gone -= t_gone
        if t_throttled:
            causes["throttled"] = t_throttled
        if t_peak:
            causes["unavailable"] = causes.get("unavailable", 0) + t_peak
        for key, used in (
            ("busy", take["busy"]),
            ("throttled", t_throttled),
            ("peak", t_peak),
            ("unsent", t_unsent),
        ):
            left[key] -= used
        rd.line(t, phase, ok=rest, busy=causes, unsent=t_unsent, lat_ms=[lat_ms])
        extra = request_busy // 10 + (1 if t < request_busy % 10 else 0)
        request_causes = dict(causes)
        if extra:
            request_causes["timeout"] = request_causes.get("timeout", 0) + extra
        rd.line(t, phase, level="request", ok=rest + extra, busy=request_causes, lat_ms=[lat_ms])
    assert not any(left.values()) and not gone, left
    return rd.write()


def verdict(run_dir: Path, *objectives: Objective) -> GateResult:
    return evaluate(compute_metrics(run_dir), Slo("t", tuple(objectives), "t.yaml"))


def passes(run_dir: Path, objective: Objective) -> bool:
    result = verdict(run_dir, objective)
    assert result.invalid_reason is None
    return result.passed


# -- at the limit passes, just over fails: one case per kind of objective --------------------

Case = tuple[Objective, Callable[[Path], Path], Callable[[Path], Path]]
BOUNDARIES: dict[str, Case] = {
    # 20 of 1,000 answered = 2%; 21 = 2.1%
    "busy rate (action)": (
        Objective("max_busy_rate", 0.02),
        lambda p: build(p, busy=20),
        lambda p: build(p, busy=21),
    ),
    # every action answered ok after retries; 20 (then 21) busy requests of 1,020 (1,021)
    "busy rate (request)": (
        Objective("max_busy_rate", 20 / 1020, level="request"),
        lambda p: build(p, request_busy=20),
        lambda p: build(p, request_busy=21),
    ),
    "busy rate per cause": (
        Objective("max_busy_rate", 0.005, cause="throttled"),
        lambda p: build(p, throttled=5, busy=40),
        lambda p: build(p, throttled=6, busy=40),
    ),
    # 10 of the peak's 500 = 2% (the whole run: 1%)
    "busy rate in a phase": (
        Objective("max_busy_rate", 0.02, phase="peak"),
        lambda p: build(p, peak_busy=10),
        lambda p: build(p, peak_busy=11),
    ),
    "unsent share": (
        Objective("max_unsent", 0.001),
        lambda p: build(p, unsent=1),
        lambda p: build(p, unsent=2),
    ),
    # answered actions / 10 s against 100/s offered: 950 answered = 95%
    "achieved rate (share of offered)": (
        Objective("min_achieved_rate", 0.95, relative=True),
        lambda p: build(p, missing=50),
        lambda p: build(p, missing=51),
    ),
    "achieved rate (absolute)": (
        Objective("min_achieved_rate", 95.0),
        lambda p: build(p, missing=50),
        lambda p: build(p, missing=51),
    ),
    # the fault run recovers 18 s after its fault ends (19 s with one more busy second)
    "recovery of a named fault": (
        Objective("max_recovery", 18.0, fault="db-down"),
        lambda p: build_fault_run(p, back_after=18),
        lambda p: build_fault_run(p, back_after=19),
    ),
    "recovery of every fault": (
        Objective("max_recovery", 18.0),
        lambda p: build_fault_run(p, back_after=18),
        lambda p: build_fault_run(p, back_after=19),
    ),
    "integrity": (
        Objective("integrity", None),
        lambda p: build(p, integrity=CLEAN),
        lambda p: build(p, integrity={**CLEAN, "ok": False, "lost": 1}),
    ),
}


@pytest.mark.parametrize("kind", list(BOUNDARIES))
def test_exactly_at_the_limit_passes_just_over_fails(tmp_path: Path, kind: str) -> None:
    objective, at_limit, over = BOUNDARIES[kind]
    assert passes(at_limit(tmp_path / "at"), objective), kind
    assert not passes(over(tmp_path / "over"), objective), kind


def test_over_1_percent_unsent_is_an_invalid_run_that_never_passes(tmp_path: Path) -> None:
    result = verdict(build(tmp_path / "r", unsent=50), Objective("max_busy_rate", 0.5))
    assert not result.passed and result.results[0].passed
    assert result.invalid_reason == "5% of arrivals unsent (over 1%): invalid run"


@pytest.mark.parametrize("measure", ["max_p95", "max_p99"])
def test_latency_at_the_limit_passes_just_over_fails(tmp_path: Path, measure: str) -> None:
    run = build(tmp_path / "r", lat_ms=300.0)
    m = compute_metrics(run)
    value = getattr(m.total.action.latency, measure.removeprefix("max_")) / 1000
    # HDR keeps 2 significant digits: 300 ms is recorded as 301.055 ms; the limit as a user
    # would write it, parsed like the SLO file does
    assert value == pytest.approx(0.301055)
    slo = tmp_path / "slo.yaml"
    slo.write_text(f"objectives:\n  - {measure}: 301.055ms\n  - {measure}: 301.054ms\n")
    at, under = load_slo(slo).objectives
    result = evaluate(m, Slo("t", (at, under), str(slo)))
    assert [r.passed for r in result.results] == [True, False]
    assert result.results[1].measured_text() == "301ms"


def test_latency_per_phase_and_level(tmp_path: Path) -> None:
    run = build(tmp_path / "r", lat_ms=40.0)
    for level in ("action", "request"):
        assert passes(run, Objective("max_p95", 0.041, level=level, phase="peak"))
        assert not passes(run, Objective("max_p95", 0.039, level=level, phase="peak"))


def test_fault_scoped_busy_rate(tmp_path: Path) -> None:
    fault_run = build_fault_run(tmp_path / "r")
    # during the fault [30, 40) every answer was busy
    failed = verdict(fault_run, Objective("max_busy_rate", 0.5, fault="db-down"))
    assert not failed.passed and failed.results[0].measured == 1.0
    assert failed.results[0].detail == "1,000 busy of 1,000 answered"
    assert passes(fault_run, Objective("max_busy_rate", 1.0, fault="f01"))  # by id too


def test_missing_phases_faults_and_integrity_fail_with_a_reason(tmp_path: Path) -> None:
    run = build(tmp_path / "r")
    result = verdict(
        run,
        Objective("max_busy_rate", 0.5, phase="midnight"),
        Objective("max_recovery", 30.0, fault="db-down"),
        Objective("max_recovery", 30.0),
        Objective("integrity", None),
    )
    assert [(r.passed, r.detail) for r in result.results] == [
        (False, "this run has no phase 'midnight'; its phases: calm, peak"),
        (False, "this run has no fault 'db-down'; its faults: none"),
        (True, "no faults in this run: nothing to recover from"),
        (False, "no integrity check ran: no integrity.json in the run directory"),
    ]


@pytest.mark.parametrize(
    ("integrity", "detail"),
    [
        (CLEAN, "clean: 900 acknowledged payments checked"),
        ({**CLEAN, "ok": None, "error": "database down"}, "could not run: database down"),
        ({**CLEAN, "ok": False, "duplicated": 2}, "violated: 2 duplicated"),
        ({**CLEAN, "money_conserved": False}, "violated: money not conserved"),
        ({**CLEAN, "negative_balances": 1}, "violated: 1 negative balances"),
    ],
)
def test_integrity_reads_integrity_json(
    tmp_path: Path, integrity: dict[str, object], detail: str
) -> None:
    result = verdict(build(tmp_path / "r", integrity=integrity), Objective("integrity", None))
    assert result.results[0].detail.endswith(detail)
    assert result.passed is (integrity is CLEAN)


@pytest.mark.parametrize("status", ["aborted", "interrupted", "failed", "running"])
def test_a_run_that_did_not_complete_never_passes(tmp_path: Path, status: str) -> None:
    result = verdict(build(tmp_path / "r", status=status), Objective("max_busy_rate", 0.5))
    assert result.results[0].passed and not result.passed
    assert result.invalid_reason == f"run {status}"
    assert "the run cannot pass: run " + status in result.headline()


# -- baselines --------------------------------------------------------------------------------


def test_a_baseline_flags_a_1_5pp_regression_and_passes_a_0_5pp_one(tmp_path: Path) -> None:
    old = build(tmp_path / "old", busy=10)  # 1.0%
    worse = build(tmp_path / "worse", busy=25)  # 2.5%: +1.5 pp
    slightly = build(tmp_path / "slightly", busy=15)  # 1.5%: +0.5 pp
    slo = Slo("t", (Objective("max_busy_rate", 0.05),), "t.yaml")
    base = compute_metrics(old)
    flagged = evaluate(compute_metrics(worse), slo, baseline=base, max_regression=0.01)
    (r,) = flagged.results
    assert not flagged.passed and r.baseline == pytest.approx(0.01)
    assert r.detail.startswith(
        "1.5 pp worse than the baseline's 1.00%, at most 1 pp allowed; 25 busy"
    )
    fine = evaluate(compute_metrics(slightly), slo, baseline=base, max_regression=0.01)
    assert fine.passed and fine.results[0].baseline == pytest.approx(0.01)
    # exactly 1 pp is allowed
    at = evaluate(
        compute_metrics(build(tmp_path / "at", busy=20)), slo, baseline=base, max_regression=0.01
    )
    assert at.passed


def test_a_baseline_without_max_regression_only_shows_values(tmp_path: Path) -> None:
    slo = Slo("t", (Objective("max_busy_rate", 0.05), Objective("max_p95", 1.0)), "t.yaml")
    result = evaluate(
        compute_metrics(build(tmp_path / "new", busy=40)),
        slo,
        baseline=compute_metrics(build(tmp_path / "old", busy=0)),
    )
    assert result.passed and [r.baseline for r in result.results] == [
        0.0,
        pytest.approx(0.0201, abs=1e-3),
    ]


def test_max_regression_is_given_in_percentage_points() -> None:
    assert parse_points("1pp") == 0.01 and parse_points("0.5 pp") == 0.005
    with pytest.raises(Exception, match="did you mean '1pp'"):
        parse_points("1%")


def test_within_includes_the_limit_and_absorbs_float_noise() -> None:
    assert within(300 * 0.001, 0.3) and within(0.3, 300 * 0.001)
    assert not within(0.3001, 0.3) and within(0.95, 0.95, at_least=True)


# -- repeated phases --------------------------------------------------------------------------


def test_an_objective_on_a_repeated_phase_holds_in_every_repeat(tmp_path: Path) -> None:
    rd = RunDirBuilder(tmp_path / "r")
    for t, phase, busy in ((0, "burst#1", 0), (1, "lull#1", 0), (2, "burst#2", 10)):
        rd.second(t, phase, ok=100 - busy, busy={"unavailable": busy} if busy else None)
    result = verdict(rd.write(), Objective("max_busy_rate", 0.05, phase="burst"))
    assert [(r.title(), r.passed) for r in result.results] == [
        ("busy rate (action) in phase burst#1 ≤ 5%", True),
        ("busy rate (action) in phase burst#2 ≤ 5%", False),
    ]


# -- what gate_run writes ---------------------------------------------------------------------


def _slo_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "slo.yaml"
    path.write_text(text)
    return path


SLO_TEXT = """\
name: gate-test
objectives:
  - max_busy_rate: 2%
    name: busy overall
  - max_busy_rate: 1%
    phase: peak
  - max_p95: 100ms
  - integrity: clean
"""


def test_gate_writes_junit_summary_and_gate_json_next_to_the_report(tmp_path: Path) -> None:
    from loadkit.report import write_reports

    run = build(tmp_path / "run", busy=10, peak_busy=10, integrity=CLEAN)
    write_reports(run, ["md", "junit"])
    report_md = (run / "summary.md").read_text()
    slo = load_slo(_slo_file(tmp_path, SLO_TEXT))
    for _ in range(2):  # gating again replaces the gate's sections, nothing else
        result = gate_run(run, slo)
    assert not result.passed
    assert [r.title() for r in result.failed] == ["busy rate (action) in phase peak ≤ 1%"]
    md = (run / "summary.md").read_text()
    assert md.count("<!-- loadkit:gate -->") == 1 and md.endswith(report_md)
    assert "### ❌ gate FAILED: 1 of 4 objectives failed (SLO gate-test)" in md
    xml = JUnitXml.fromfile(str(run / "junit.xml"))
    suites = {s.name: s for s in xml}
    assert set(suites) == {"loadkit.hand-built", "loadkit.gate.gate-test"}
    gate = suites["loadkit.gate.gate-test"]
    assert (gate.tests, gate.failures) == (5, 1)
    cases = {c.name: c for c in gate}
    assert list(cases) == [
        "run completed and valid",
        "busy overall",
        "busy rate (action) in phase peak ≤ 1%",
        "p95 latency (action) ≤ 100ms",
        "money integrity clean",
    ]
    failure = cases["busy rate (action) in phase peak ≤ 1%"].result[0]
    assert failure.message == (
        "busy rate (action) in phase peak ≤ 1%: measured 2.00%, limit 1% — 10 busy of 500 answered"
    )
    assert xml.tests == sum(s.tests for s in xml)
    data = json.loads((run / "gate.json").read_text())
    assert data["schema"] == "loadkit.gate/v1" and data["passed"] is False
    assert [o["passed"] for o in data["objectives"]] == [True, False, True, True]
    assert data["objectives"][1]["measured"] == pytest.approx(0.02)


def test_reporting_again_keeps_the_gate_and_the_html_report_shows_it(tmp_path: Path) -> None:
    from loadkit.report import write_reports

    run = build(tmp_path / "run", busy=10, peak_busy=10, integrity=CLEAN)
    gate_run(run, load_slo(_slo_file(tmp_path, SLO_TEXT)))
    write_reports(run, ["md", "junit", "html"])  # `loadkit report` after `loadkit gate`
    md = (run / "summary.md").read_text()
    assert md.count("<!-- loadkit:gate -->") == 1
    assert md.index("gate FAILED") < md.index("### loadkit: hand-built")
    suites = {s.name: s for s in JUnitXml.fromfile(str(run / "junit.xml"))}
    assert set(suites) == {"loadkit.hand-built", "loadkit.gate.gate-test"}
    assert (suites["loadkit.gate.gate-test"].tests, suites["loadkit.gate.gate-test"].failures) == (
        5,
        1,
    )
    html = (run / "report.html").read_text()
    assert "Release gate:\nFAILED (SLO gate-test)" in html
    assert html.count('<td class="l bad">FAIL</td>') == 1
    assert "busy rate (action) in phase peak ≤ 1%" in html and "10 busy of 500 answered" in html


def test_gate_renders_every_report_file_again_with_the_gate(tmp_path: Path) -> None:
    from loadkit.report import write_reports

    run = build(tmp_path / "run", busy=10, peak_busy=10, integrity=CLEAN)
    write_reports(run)  # the run's reports, before the gate
    assert "Release gate" not in (run / "report.html").read_text()
    result = gate_run(run, load_slo(_slo_file(tmp_path, SLO_TEXT)))
    assert sorted(result.written) == ["gate", "html", "json", "junit", "md"]
    html = (run / "report.html").read_text()
    assert "Release gate:\nFAILED (SLO gate-test)" in html
    report = json.loads((run / "report.json").read_text())
    assert report["gate"] == json.loads((run / "gate.json").read_text())
    integrity = report["gate"]["objectives"][3]
    assert (integrity["measure"], integrity["measured_text"]) == ("integrity", "clean")


def test_gate_renders_the_report_files_when_missing(tmp_path: Path) -> None:
    run = build(tmp_path / "run")
    result = gate_run(run, load_slo(_slo_file(tmp_path, "objectives:\n  - max_unsent: 0%\n")))
    assert result.passed
    assert "### loadkit: hand-built" in (run / "summary.md").read_text()
    assert {s.name for s in JUnitXml.fromfile(str(run / "junit.xml"))} == {
        "loadkit.hand-built",
        "loadkit.gate.slo",
    }


# -- the early-abort watch ----------------------------------------------------------------------


def _timeline(lines: list[dict[str, object]]) -> Timeline:
    tl = Timeline()
    tl.feed(json.dumps(x) for x in lines)
    return tl


def _line(t: int, phase: str, ok: int, busy: int = 0, unsent: int = 0) -> dict[str, object]:
    return {
        "t": t,
        "phase": phase,
        "journey": "pay",
        "endpoint": "*",
        "level": "action",
        "n": {"ok": ok, "rejected": 0, "busy": busy, "unsent": unsent},
        "busy": {"unavailable": busy} if busy else {},
    }


def test_the_watch_judges_a_phase_once_its_answers_are_in(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(PROFILE)
    profile = load_profile(path)
    slo = Slo("t", (Objective("max_busy_rate", 0.02, phase="calm"),), "t.yaml")
    watch = SloWatch(slo, profile, drain_s=2.0)
    tl = _timeline([_line(t, "calm", 97, busy=3) for t in range(5)])
    assert watch.check(tl, 6.0, force=True) is None  # answers may still come
    reason = watch.check(tl, 10.0, force=True)
    assert reason == (
        "busy rate (action) in phase calm ≤ 2% can no longer be met: 3.00% "
        "(15 busy of 500 answered)"
    )
    assert watch.check(tl, 11.0, force=True) is None  # judged once


def test_the_watch_gives_up_on_the_whole_run_only_when_no_arrival_can_save_it(
    tmp_path: Path,
) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(PROFILE)
    profile = load_profile(path)  # 1,000 arrivals in all
    slo = Slo("t", (Objective("max_busy_rate", 0.05),), "t.yaml")
    watch = SloWatch(slo, profile, drain_s=2.0)
    # 50 busy: 5% of 1,000 — 1,000 more ok answers could still save it (bound 1,055)
    assert watch.check(_timeline([_line(0, "calm", 0, busy=50)]), 1.0, force=True) is None
    reason = watch.check(_timeline([_line(0, "calm", 0, busy=60)]), 1.0, force=True)
    assert reason is not None and reason.startswith(
        "busy rate (action) ≤ 5% can no longer be met: 60 busy already"
    )


# -- the CLI ------------------------------------------------------------------------------------


_loadkit = functools.partial(loadkit, columns=80)


def test_loadkit_gate_exit_codes_table_and_files(tmp_path: Path) -> None:
    good = build(tmp_path / "good", integrity=CLEAN)
    bad = build(tmp_path / "bad", busy=30, integrity=CLEAN)
    slo = _slo_file(tmp_path, SLO_TEXT)
    ok = _loadkit("gate", str(good), "--slo", str(slo), cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr + ok.stdout
    assert "gate passed: 4 of 4 objectives met (SLO gate-test)" in ok.stdout
    table = ok.stdout.split("gate passed")[0].splitlines()
    assert len(table) > 5 and max(len(line) for line in table) <= 80
    for name in ("junit.xml", "summary.md", "gate.json"):
        assert f"{good / name}" in ok.stdout.replace("\n", "")
    fail = _loadkit("gate", str(bad), "--slo", str(slo), cwd=tmp_path)
    assert fail.returncode == 1, fail.stderr + fail.stdout
    assert "FAIL   busy overall" in fail.stdout
    assert "✗ busy overall: measured 3.00%, limit 2% — 30 busy of 1,000 answered" in fail.stdout
    regressed = _loadkit(
        "gate", str(bad), "--slo", str(slo), "--baseline", str(good), "--json", cwd=tmp_path
    )
    data = json.loads(regressed.stdout)
    assert regressed.returncode == 1 and data["max_regression"] == 0.01
    assert data["objectives"][0]["baseline"] == 0.0


def test_loadkit_gate_refuses_bad_input_with_exit_2(tmp_path: Path) -> None:
    run = build(tmp_path / "run")
    bad_slo = _slo_file(tmp_path, "objectives:\n  - max_busy_rate: 2\n  - max_p59: 1s\n")
    out = _loadkit("gate", str(run), "--slo", str(bad_slo), cwd=tmp_path)
    assert out.returncode == 2
    assert f"{bad_slo}:2:20: objectives[0].max_busy_rate:" in out.stderr
    assert "did you mean 'max_p99'?" in out.stderr.replace("\n", "")
    assert not (run / "gate.json").exists()
    good_slo = _slo_file(tmp_path, SLO_TEXT)
    for args in (
        ("gate", str(tmp_path / "nope"), "--slo", str(good_slo)),
        ("gate", str(run), "--slo", str(good_slo), "--max-regression", "1pp"),
        ("gate", str(run), "--slo", str(good_slo), "--baseline", str(run), "--max-regression", "1"),
    ):
        out = _loadkit(*args, cwd=tmp_path)
        assert out.returncode == 2, (args, out.stdout, out.stderr)
        assert out.stderr.startswith("error: ")


def test_loadkit_validate_checks_slo_files(tmp_path: Path) -> None:
    out = _loadkit("validate", str(ROOT / "slo" / "smoke.yaml"), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "SLO 'smoke'" in out.stdout


# -- loadkit run --slo against the reference stack ------------------------------------------------

ABORT_PROFILE = """
name: abort-me
stages:
  - {name: first, duration: 3s, rate: 10/s}
  - {name: second, duration: 40s, rate: 10/s}
journeys:
  - {wallet: balance, weight: 1}
client: {timeout: 1s, retries: {attempts: 1}}
"""


def test_run_slo_abort_stops_the_load_once_an_objective_is_lost(
    stack: ReferenceStack, tmp_path: Path
) -> None:
    profile = tmp_path / "abort-me.yaml"
    profile.write_text(ABORT_PROFILE)
    slo = _slo_file(
        tmp_path,
        "objectives:\n  - min_achieved_rate: 10000/s\n    phase: first\n  - max_busy_rate: 50%\n",
    )
    bad_phase = tmp_path / "bad.yaml"
    bad_phase.write_text("objectives:\n  - {max_busy_rate: 1%, phase: frist}\n")
    refused = _loadkit(
        "run",
        str(profile),
        "--slo",
        str(bad_phase),
        "--stack-dir",
        str(stack.stack_dir),
        cwd=tmp_path,
    )
    assert refused.returncode == 2 and "did you mean 'first'?" in refused.stderr
    out = tmp_path / "reports"
    run = _loadkit(
        "run",
        str(profile),
        "--stack-dir",
        str(stack.stack_dir),
        "--out",
        str(out),
        "--slo",
        str(slo),
        "--slo-abort",
        cwd=tmp_path,
    )
    assert run.returncode == 1, run.stdout + run.stderr
    (run_dir,) = out.iterdir()
    record = json.loads((run_dir / "run.json").read_text())
    assert record["status"] == "aborted"
    assert record["reason"].startswith(
        "stopped by --slo-abort: achieved rate in phase first ≥ 10000/s can no longer be met: "
    )
    gate = json.loads((run_dir / "gate.json").read_text())
    assert gate["passed"] is False and gate["invalid_reason"].startswith("run aborted")
    # stopped long before the 43 s profile would have ended
    m = compute_metrics(run_dir)
    phase = m.phase("second")
    assert phase is not None and phase.action.counts.answered < 10 * 30


# -- examples/ci ---------------------------------------------------------------------------------


def _command_lines(path: Path) -> list[str]:
    """Every shell line of a GitHub Actions workflow's ``run:`` steps or a GitLab job's scripts."""
    import yaml

    data = yaml.safe_load(path.read_text())
    blocks: list[str] = []
    for job in data.get("jobs", {}).values():  # GitHub Actions
        blocks += [step["run"] for step in job["steps"] if "run" in step]
    for key, job in data.items():  # GitLab CI
        if isinstance(job, dict) and key != "jobs":
            for part in ("before_script", "script", "after_script"):
                blocks += job.get(part, [])
    return [line.strip() for block in blocks for line in block.splitlines() if line.strip()]


@pytest.mark.parametrize("name", ["github-actions.yml", "gitlab-ci.yml"])
def test_ci_examples_parse_and_name_files_that_exist(name: str) -> None:
    import shlex

    from loadkit.cli.main import build_parser

    lines = _command_lines(ROOT / "examples" / "ci" / name)
    commands = []
    segments: list[list[str]] = []
    for line in lines:
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        segments.append([])
        for word in lexer:
            if word in ("&&", "||", ";", "|", "(", ")"):
                segments.append([])
            else:
                segments[-1].append(word)
    for words in segments:
        if not words or not (words[0] == "loadkit" or words[0].endswith("/bin/loadkit")):
            continue
        argv = [w.replace("$RUN_DIR", "reports/x") for w in words[1:]]
        args = build_parser().parse_args(argv)  # SystemExit (a failure) if it does not parse
        commands.append(args.command)
        for word in argv:
            if word.endswith((".yaml", ".yml")):
                assert (ROOT / word).is_file(), f"{name}: {word} does not exist"
    assert {"stack", "run"} <= set(commands)
    run_line = next(line for line in lines if " run profiles/" in line)
    assert "--chaos chaos/smoke-fault.yaml" in run_line
    assert "gate" in commands or "--slo slo/smoke.yaml" in run_line
