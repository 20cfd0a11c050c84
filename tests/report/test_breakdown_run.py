"""A real run on the two-instance reference stack with a fault on one instance's client link:
the timeline knows where every answer came from, the breakdown and the fault's row show which
instance made users wait, and one SLO file passes for one journey and fails for another (and
likewise per instance) in the same run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from loadkit.gate import gate_run, load_slo
from loadkit.report.formats import write_reports
from loadkit.report.metrics import compute_metrics
from loadkit.run.orchestrator import RunOptions, run_profile
from loadkit.rundir.timeline import Timeline
from loadkit.stack.reference import ReferenceStack

# transfers above the OTP threshold (5,000 CNY) take three requests (ask, read the code, send
# it again), a balance one: through a link that adds 600 ms to every answer, 1.8 s against
# 0.6 s. Twenty users have all logged in (one more request) before the fault.
PROFILE = """
name: two-instances
users: {accounts: 20}
stages:
  - {name: before, duration: 3s, rate: 24/s}
  - {name: slow, duration: 6s, rate: 24/s}
  - {name: after, duration: 3s, rate: 24/s}
journeys:
  - {wallet: balance, weight: 2}
  - {wallet: p2p_transfer, weight: 1, amount: {min: 6000, max: 6100}, otp: true}
client: {timeout: 5s}
"""
SCENARIO = """
name: one-instance-slow
faults:
  - {name: slow-wallet-1, type: network.latency, target: client-wallet-1, latency: 600ms,
     at: 3s, duration: 6s}
"""
SLO = """
name: per-journey-and-instance
objectives:
  - {max_p95: 1200ms, journey: balance, name: balance p95}
  - {max_p95: 1200ms, journey: p2p_transfer, name: transfer p95}
  - {max_p95: 400ms, instance: wallet-2, name: wallet-2 p95}
  - {max_p95: 400ms, instance: wallet-1, name: wallet-1 p95}
"""


@pytest.mark.slow
def test_a_fault_on_one_instance_shows_in_the_breakdown_and_the_scoped_slo(
    stack: ReferenceStack, tmp_path: Path
) -> None:
    (tmp_path / "p.yaml").write_text(PROFILE)
    (tmp_path / "s.yaml").write_text(SCENARIO)
    (tmp_path / "slo.yaml").write_text(SLO)
    result = run_profile(
        RunOptions(
            profile=tmp_path / "p.yaml",
            chaos=tmp_path / "s.yaml",
            stack_dir=stack.stack_dir,
            out=tmp_path / "reports",
        )
    )
    assert result.status == "completed", result.record.reason
    run_dir = result.run_dir

    # the timeline names both instances (the stack's names) on every line
    tl = Timeline.read(run_dir / "timeline.jsonl")
    assert tl.values("instance") == ["wallet-1", "wallet-2"]
    assert all(key[5] for key in tl.buckets), "every line says which instance answered"

    m = compute_metrics(run_dir)
    instances = m.breakdown("instance")
    assert instances is not None
    by = {r.value: r for r in instances.rows}
    one, two = by["wallet-1"].action.latency.p95, by["wallet-2"].action.latency.p95
    assert one is not None and two is not None and one > 550 and two < 400, (one, two)
    slow = {p.phase: p for p in by["wallet-1"].phases}["slow"]
    assert slow.p95 is not None and slow.p95 > 550
    (fault,) = m.faults
    assert fault.hit == ["wallet-1"]
    during = {i.instance: i.action.latency.p95 for i in fault.instances}
    assert during["wallet-1"] is not None and during["wallet-1"] > 550, during
    assert during["wallet-2"] is not None and during["wallet-2"] < 400, during
    journeys = m.breakdown("journey")
    assert journeys is not None and {r.value for r in journeys.rows} == {"balance", "p2p_transfer"}

    # the reference wallet's own causes were scraped (none busy here: the header says from where)
    assert (run_dir / "server-causes.jsonl").is_file()
    assert m.server_causes is not None and "wallet_busy_responses_total" in m.server_causes.source

    gate = gate_run(run_dir, load_slo(tmp_path / "slo.yaml"))
    verdicts = {r.title(): r for r in gate.results}
    assert verdicts["balance p95"].passed, verdicts["balance p95"]
    assert not verdicts["transfer p95"].passed, verdicts["transfer p95"]
    assert verdicts["wallet-2 p95"].passed, verdicts["wallet-2 p95"]
    assert not verdicts["wallet-1 p95"].passed, verdicts["wallet-1 p95"]

    # every report shows the breakdown and the fault's instances
    write_reports(run_dir, ["html", "md", "json"])
    html = (run_dir / "report.html").read_text()
    assert "By target instance" in html and "wallet-1 (hit)" in html
    md = (run_dir / "summary.md").read_text()
    assert "#### By target instance" in md and "wallet-1 (hit)" in md
    doc = json.loads((run_dir / "report.json").read_text())
    assert doc["faults"][0]["instances"][0]["instance"] == "wallet-1"
    assert doc["gate"]["passed"] is False
