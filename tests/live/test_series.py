"""The live per-second numbers equal what the reports compute from the same timeline."""

from __future__ import annotations

from pathlib import Path

from loadkit.live.series import Series, TimelineTail
from loadkit.report.metrics import compute_metrics
from loadkit.rundir.timeline import Timeline
from tests.report.conftest import build_fault_run


def test_series_totals_and_percentiles_match_the_report(tmp_path: Path) -> None:
    run_dir = build_fault_run(tmp_path / "r")
    tail = TimelineTail(run_dir / "timeline.jsonl")
    series = Series()
    lines = tail.read()
    assert lines and tail.read() == [], "a second read finds nothing new"
    series.add_lines(lines[: len(lines) // 2])  # in two helpings, as a run delivers them
    series.settle()
    series.add_lines(lines[len(lines) // 2 :])
    series.settle()
    m = compute_metrics(run_dir)
    a, r = m.total.action.counts, m.total.request.counts
    assert series.totals["action"] == [a.ok, a.rejected, a.busy, a.unsent]
    assert series.totals["request"] == [r.ok, r.rejected, r.busy, r.unsent]
    assert series.causes["request"] == r.causes
    timeline = Timeline.read(run_dir / "timeline.jsonl").per_second("action")
    for point in series.points():
        bucket = timeline[point["t"]]
        assert point["a"] == [bucket.count(o) for o in ("ok", "rejected", "busy", "unsent")]
        assert point["p"][1] == bucket.percentile_ms(95)
    buckets, total_s, count = series.histogram("action")
    whole = Timeline.read(run_dir / "timeline.jsonl").totals("action").lat
    assert whole is not None and count == whole.get_total_count() and buckets[-1][1] == count
    assert [c for _le, c in buckets] == sorted(c for _le, c in buckets), "cumulative"
    assert total_s > 0


def test_probe_answers_count_at_both_levels() -> None:
    series = Series()
    series.add_answer(3.2, "ok", None, 0.012)
    series.add_answer(3.7, "busy", "unavailable/db_down", 0.4)
    series.settle()
    (point,) = series.points()
    assert point["t"] == 3 and point["a"] == [1, 0, 1, 0] and point["r"] == [1, 0, 1, 0]
    assert point["c"] == {"unavailable": 1} and point["p"][0] is not None
