"""compute_metrics against numbers computed by hand from hand-built run directories."""

from __future__ import annotations

from pathlib import Path

import pytest
from hdrh.histogram import HdrHistogram

from loadkit.report.metrics import compute_metrics
from loadkit.rundir.hdr import Decoder, percentile_ms, zeros
from tests.report.rundirs import RunDirBuilder, hist

PROFILE = """
name: hand-built
stages:
  - {name: warm, duration: 10s, rate: 100/s}
  - {name: peak, duration: 20s, rate: 200/s}
journeys:
  - {name: pay, weight: 1, http: [{name: pay, path: /pay}]}
"""


def test_1000_requests_73_throttled_is_7_3_percent(tmp_path: Path) -> None:
    rd = RunDirBuilder(tmp_path / "run")
    # 10 seconds × 100 requests; 73 throttled spread over them; 27 rejected (not busy)
    for t in range(10):
        throttled = 7 if t < 7 else 8  # 7×7 + 3×8 = 73
        rejected = 3 if t < 9 else 0  # 27
        rd.second(
            t,
            "peak",
            ok=100 - throttled - rejected,
            rejected=rejected,
            busy={"throttled": throttled},
            lat_ms=[10.0, 20.0, 900.0],
        )
    m = compute_metrics(rd.write())
    for level in (m.total.action, m.total.request):
        assert level.counts.answered == 1000
        assert level.counts.busy == 73 and level.counts.rejected == 27
        assert level.busy_rate == pytest.approx(0.073)
    assert [(c.cause, c.requests, c.actions, c.share) for c in m.causes] == [
        ("throttled", 73, 73, 1.0)
    ]
    (peak,) = m.phases
    assert peak.name == "peak" and peak.action.busy_rate == pytest.approx(0.073)
    assert {(e.journey, e.endpoint, e.level) for e in m.endpoints} == {
        ("pay", "*", "action"),
        ("pay", "POST /v1/payments", "request"),
    }
    assert m.verdict.startswith("hand-built: 7.3% of user actions busy")
    assert m.total.valid and m.total.action.counts.unsent == 0


def test_latency_percentiles_equal_hdrhistogram_merged_by_hand(tmp_path: Path) -> None:
    rd = RunDirBuilder(tmp_path / "run")
    expected = HdrHistogram(1, 600_000_000, 2)
    for t in range(5):
        values = [1.0 + t, 15.0 * (t + 1), 250.0, 3000.0 + t]
        rd.line(t, "p", ok=4, lat_ms=values, svc_ms=values)
        for v in values:
            expected.record_value(int(v * 1000))
    m = compute_metrics(rd.write())
    lat = m.total.action.latency
    for p, got in ((50, lat.p50), (95, lat.p95), (99, lat.p99), (99.9, lat.p999)):
        assert got == expected.get_value_at_percentile(p) / 1000
    assert m.total.action.service == lat


def test_fast_decoder_matches_hdrhistogram() -> None:
    encoded = hist([0.5, 3.0, 42.0, 1234.0], [5, 7, 1, 2])
    decoded = Decoder().decode(encoded)
    assert decoded is not None
    counts = zeros()
    first, found = decoded
    counts[first : first + len(found)] += found
    assert int(counts.sum()) == 15
    ref = HdrHistogram.decode(encoded)
    for p in (1, 50, 90, 99.9):
        assert percentile_ms(counts, p) == ref.get_value_at_percentile(p) / 1000
    other = HdrHistogram(1, 3_600_000_000, 3)  # other settings: re-recorded into ours
    other.record_value(5000, 3)
    decoded = Decoder().decode(other.encode())
    assert decoded is not None and int(decoded[1].sum()) == 3


def _fault_run(tmp_path: Path, *, back_after: int, end: int = 90, **kw: object) -> RunDirBuilder:
    """100 actions/s; a fault over [30, 40); 100% busy from 30 until 40 + ``back_after``."""
    rd = RunDirBuilder(tmp_path / "run", **kw)  # type: ignore[arg-type]
    for t in range(end):
        broken = 30 <= t < 40 + back_after
        phase = "before" if t < 30 else "during" if t < 40 else "after"
        if broken:
            rd.second(t, phase, busy={"unavailable": 60, "timeout": 40}, lat_ms=[2000.0])
        else:
            rd.second(t, phase, ok=100, lat_ms=[10.0])
    rd.fault("f01", "db-down", 30, 40)
    return rd


def test_recovery_is_seconds_until_busy_rate_is_back_and_stays(tmp_path: Path) -> None:
    m = compute_metrics(_fault_run(tmp_path, back_after=18).write())
    (f,) = m.faults
    assert (f.name, f.start_s, f.end_s) == ("db-down", 30, 40)
    assert f.recovered and f.recovery_s == 18
    assert f.busy_s == 28, "seconds 30–57 were busy"
    assert f.action.busy_rate == 1.0 and f.action.counts.causes == {
        "unavailable": 600,
        "timeout": 400,
    }
    assert m.limit is not None and (m.limit.source, m.limit.value) == ("baseline", 0.01)
    assert m.worst_10s is not None and m.worst_10s.busy_rate == 1.0
    assert m.worst_10s.start_s == 30
    assert "db-down: busy for 28 s, recovered in 18 s" in m.verdict


def test_recovery_limit_comes_from_the_scenario_probe(tmp_path: Path) -> None:
    scenario = (
        "name: sc\nsteady_state:\n  probes:\n    - {name: calm, type: busy-rate, max: 5%}\n"
        "faults:\n  - {name: db-down, type: postgres.crash, at: 30s, duration: 10s}\n"
    )
    m = compute_metrics(_fault_run(tmp_path, back_after=0, scenario=scenario).write())
    assert m.limit is not None and (m.limit.source, m.limit.value) == ("scenario", 0.05)
    assert m.faults[0].recovery_s == 0


def test_not_recovered_when_the_run_ends_too_soon(tmp_path: Path) -> None:
    m = compute_metrics(_fault_run(tmp_path, back_after=5, end=52).write())
    (f,) = m.faults
    assert not f.recovered and f.recovery_s is None
    assert f.note and "ended before" in f.note
    assert "not recovered" in m.verdict


def test_not_recovered_while_still_busy(tmp_path: Path) -> None:
    m = compute_metrics(_fault_run(tmp_path, back_after=100, end=90).write())
    assert not m.faults[0].recovered


def test_offered_from_the_profile_vs_achieved(tmp_path: Path) -> None:
    rd = RunDirBuilder(tmp_path / "run", profile=PROFILE)
    for t in range(30):
        phase = "warm" if t < 10 else "peak"
        rd.line(t, phase, ok=90 if t < 10 else 150, unsent=0)
    m = compute_metrics(rd.write())
    warm, peak = m.phases
    assert (warm.start_s, warm.end_s, peak.end_s) == (0, 10, 30)
    assert warm.offered == pytest.approx(1000) and peak.offered == pytest.approx(4000)
    assert warm.offered_rate == pytest.approx(100) and warm.achieved_rate == pytest.approx(90)
    assert peak.achieved_rate == pytest.approx(150)
    assert m.total.offered == pytest.approx(5000)
    assert m.series[12].offered == pytest.approx(200) and m.series[12].answered == 150


def test_unsent_over_one_percent_marks_the_run_invalid(tmp_path: Path) -> None:
    rd = RunDirBuilder(tmp_path / "run")
    rd.line(0, "p", ok=980, unsent=20, lat_ms=[5.0])
    m = compute_metrics(rd.write())
    assert m.total.action.counts.unsent == 20
    assert m.total.unsent_share == pytest.approx(0.02) and not m.total.valid
    assert "INVALID" in m.verdict


def test_request_and_action_levels_differ_after_retries(tmp_path: Path) -> None:
    rd = RunDirBuilder(tmp_path / "run")
    # 100 actions: 90 ok first time, 10 retried twice (2 busy requests each) then ok
    rd.line(0, "p", level="action", ok=100, lat_ms=[5.0])
    rd.line(0, "p", level="request", ok=100, busy={"throttled": 20}, lat_ms=[5.0])
    m = compute_metrics(rd.write())
    assert m.total.action.busy_rate == 0.0
    assert m.total.request.busy_rate == pytest.approx(20 / 120)
    assert m.causes[0].actions == 0 and m.causes[0].requests == 20


def test_interrupted_run_with_missing_and_torn_files(tmp_path: Path) -> None:
    rd = RunDirBuilder(tmp_path / "run", status="interrupted")
    rd.line(0, "p", ok=10, lat_ms=[5.0])
    rd.line(1, "p", ok=5, busy={"timeout": 5})
    path = rd.write(clock=False, torn_tail=True)
    m = compute_metrics(path)
    assert m.status == "interrupted" and m.total.action.counts.answered == 20
    assert any("clock.json" in n for n in m.notes)
    assert "run interrupted" in m.verdict
    (path / "run.json").unlink()
    (path / "timeline.jsonl").write_text('{"t": 0, "phase": "p", "level": "action", "n": {"ok"')
    empty = compute_metrics(path)
    assert empty.status == "unknown" and empty.total.action.counts.answered == 0
    assert empty.worst_10s is None


def test_fault_never_reverted_lasts_until_the_data_ends(tmp_path: Path) -> None:
    rd = RunDirBuilder(tmp_path / "run")
    for t in range(20):
        rd.line(t, "p", ok=50 if t < 10 else 0, busy={"connection": 0 if t < 10 else 50})
    rd.fault("f01", "api-down", 10, None)
    m = compute_metrics(rd.write())
    (f,) = m.faults
    assert f.end_s is None and f.action.counts.busy == 500 and not f.recovered
    assert f.note and "never reverted" in f.note


def test_integrity_json_is_passed_through(tmp_path: Path) -> None:
    rd = RunDirBuilder(tmp_path / "run", integrity={"ok": True, "lost": 0})
    rd.line(0, "p", ok=1)
    m = compute_metrics(rd.write())
    assert m.integrity == {"ok": True, "lost": 0}
    assert m.verdict.endswith("money integrity clean: nothing lost or duplicated")


def test_worst_10_seconds(tmp_path: Path) -> None:
    rd = RunDirBuilder(tmp_path / "run")
    for t in range(40):
        busy = 30 if 20 <= t < 25 else 0  # 5 seconds at 30% → a 10-s window at 15%
        rd.line(t, "p", ok=100 - busy, busy={"throttled": busy})
    m = compute_metrics(rd.write())
    assert m.worst_10s is not None
    assert m.worst_10s.busy_rate == pytest.approx(0.15) and m.worst_10s.busy == 150
    assert m.worst_10s.start_s == 20  # of the equally bad windows, the one where busy starts
