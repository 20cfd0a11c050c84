"""The wallet's security throttling during a run: its anomaly counters before and after, their
difference in security.json, and the report's section next to the busy rate."""

from __future__ import annotations

import json
from pathlib import Path

from loadkit.run.orchestrator import Runner, RunOptions
from loadkit.run.security import difference
from loadkit.rundir import RunDir
from loadkit.stack.reference import ReferenceStack


def _snap(velocity: int, refusals: dict[str, int]) -> dict[str, dict[str, int]]:
    return {"events": {"velocity": velocity, "otp_failed": 0}, "refusals": refusals}


def test_the_difference_over_instances_with_a_restart_and_a_silent_one() -> None:
    start = {
        "wallet-1": _snap(10, {"INSUFFICIENT_FUNDS": 5}),
        "wallet-2": _snap(50, {}),
        "wallet-3": _snap(1, {}),
    }
    end = {
        "wallet-1": _snap(25, {"INSUFFICIENT_FUNDS": 7, "OTP_REQUIRED": 3}),
        "wallet-2": _snap(4, {"OTP_REQUIRED": 1}),  # restarted by a crash fault: 4 since
    }
    total, notes = difference(start, end)
    assert total["events"] == {"velocity": 15 + 4, "otp_failed": 0}
    assert total["refusals"] == {"INSUFFICIENT_FUNDS": 2, "OTP_REQUIRED": 4}
    assert notes == [
        "wallet-2: restarted during the run; counted since its restart",
        "wallet-3: no reading at the end; its counts are missing",
    ]


PROFILE = """
name: throttled
stages:
  - {name: peak, duration: 5s, rate: 30/s}
users: {accounts: 10}
journeys:
  - {wallet: balance, weight: 3}
  - {wallet: p2p_transfer, weight: 1, amount: {min: 50000, max: 50000}}
client: {retries: {attempts: 1}}
"""


def test_a_run_records_the_wallets_security_throttling(
    stack: ReferenceStack, tmp_path: Path
) -> None:
    """Ten users at three actions a second each against a per-user limit of one a second: the
    wallet throttles them (velocity), and refuses transfers beyond their balance; the run's
    security.json and every report say how many, next to the busy rate."""
    profile = tmp_path / "p.yaml"
    profile.write_text(PROFILE)
    before = stack.admin.anomalies()
    stack.admin.limits(per_user_rate=1, per_user_burst=1)
    try:
        result = Runner(
            RunOptions(profile=profile, stack_dir=stack.stack_dir, out=tmp_path / "r")
        ).run()
    finally:
        stack.admin.limits(per_user_rate=None)  # the policy's own again
    rd = RunDir(result.run_dir)
    data = rd.read_json("security.json")
    assert data["schema"] == "loadkit.security/v1" and data["source"] == "reference"
    assert data["instances"] == ["wallet-1", "wallet-2"] and data["notes"] == []
    throttled = result.timeline.totals("request").busy.get("throttled", 0)
    assert throttled > 30
    # every 429 the users saw was a velocity event of the wallet's (and nothing before the run)
    assert data["events"]["velocity"] == throttled
    refused = result.timeline.totals("request").count("rejected")
    assert 0 < sum(data["refusals"].values()) == refused
    assert sum(int(a["events"]["velocity"]) for a in before) < sum(
        int(a["events"]["velocity"]) for a in stack.admin.anomalies()
    )
    report = json.loads(rd.report_json.read_text()) if rd.report_json.exists() else None
    assert report is None  # no report listener here: the report is written below
    from loadkit.report.formats import write_reports

    write_reports(rd.path, ["json", "md", "html"])
    report = json.loads(rd.report_json.read_text())
    assert report["security"]["events"]["velocity"] == throttled
    md = rd.summary_md.read_text()
    assert "#### Security throttling" in md
    assert f"| throttled requests (429) | {throttled:,} |" in md
    assert f"| users over the policy's rate (velocity) | {throttled:,} |" in md
    assert 'id="security"' in rd.report_html.read_text()
