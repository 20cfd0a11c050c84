"""A real short run against the reference stack: the report's numbers equal run.json's totals
(the orchestrator's own count) and Timeline's percentiles (hdrhistogram's)."""

from __future__ import annotations

from pathlib import Path

import pytest

from loadkit.report.formats import write_reports
from loadkit.report.metrics import compute_metrics
from loadkit.run.orchestrator import RunOptions, run_profile
from loadkit.rundir.timeline import Timeline
from loadkit.stack.reference import ReferenceStack

PROFILE = """
name: report-real
stages:
  - {name: warm, duration: 3s, rate: 20/s}
  - {name: peak, duration: 3s, rate: 40/s}
journeys:
  - {wallet: balance, weight: 2}
  - {wallet: p2p_transfer, weight: 1, amount: {min: 1, max: 5}}
client: {timeout: 2s}
"""


@pytest.mark.slow
def test_report_of_a_real_run(stack: ReferenceStack, tmp_path: Path) -> None:
    profile = tmp_path / "p.yaml"
    profile.write_text(PROFILE)
    result = run_profile(
        RunOptions(profile=profile, stack_dir=stack.stack_dir, out=tmp_path / "reports")
    )
    assert result.status == "completed", result.record.reason
    m = compute_metrics(result.run_dir)
    totals = result.record.totals
    assert m.total.action.counts.ok == totals["actions"]["ok"]
    assert m.total.action.counts.scheduled == totals["scheduled"]
    assert m.total.request.counts.answered == sum(
        totals["requests"][k] for k in ("ok", "rejected", "busy")
    )
    assert [p.name for p in m.phases] == ["warm", "peak"]
    assert m.phases[0].offered == pytest.approx(60) and m.phases[1].offered == pytest.approx(120)
    assert m.total.offered == pytest.approx(180)
    tl = Timeline.read(result.run_dir / "timeline.jsonl")
    for phase in m.phases:
        bucket = tl.select("action", phase=phase.name)
        assert phase.action.latency.p95 == bucket.percentile_ms(95)
        assert phase.action.counts.answered == bucket.answered
    written = write_reports(result.run_dir, ["html", "md", "json", "junit"])
    assert sorted(written) == ["html", "json", "junit", "md"]
