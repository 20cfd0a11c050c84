"""The capacity search against the real reference stack: with the wallets' admission-control
rate limit set to a known value, the knee found is within 10% of it, and it moves with the
limit (here: a chaos fault that tightens the limit, held through the search)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from loadkit.capacity import CapacityResult, Outcome, Verdict
from loadkit.stack.reference import ReferenceStack

ROOT = Path(__file__).parents[2]

# one request per action: balance, logged in during the ramp, no client retries
PROFILE = """
name: knee
stages: [{name: steady, duration: 10s, rate: 250/s}]
users: {accounts: 200, max_in_flight: 500}
journeys: [{wallet: balance}]
client: {timeout: 2s, retries: {attempts: 1}}
"""

TIGHTER = """
name: tighter-limit
description: each instance admits 100 requests/s (200/s in all) for as long as the run lasts
faults:
  - {name: limit-100, type: wallet.limits, rate_limit: 100/s, rate_burst: 20, at: 0s}
"""


@pytest.fixture
def limited(stack: ReferenceStack) -> Iterator[ReferenceStack]:
    """Each of the 2 instances admits 150 requests/s: 300/s in all."""
    stack.admin.limits(rate_limit=150, rate_burst=30)
    yield stack
    stack.admin.limits(rate_limit=None)


@pytest.fixture(scope="session")
def loadkit_stack(stack: ReferenceStack) -> ReferenceStack:
    """The pytest plugin's capacity searches go to the session's reference stack."""
    return stack


def test_knee_is_the_rate_limit(
    limited: ReferenceStack, loadkit_capacity: Any, tmp_path: Path
) -> None:
    """Through the pytest plugin's ``loadkit_capacity`` fixture (loadkit.capacity underneath)."""
    profile = tmp_path / "knee.yaml"
    profile.write_text(PROFILE)
    result = loadkit_capacity(
        profile,
        max_busy=0.01,
        start_rate=200,
        step=50,
        max_rate=450,
        resolution=15,
        hold_s=3,
        warmup_s=1,
    )
    assert isinstance(result, CapacityResult)
    assert result.outcome is Outcome.KNEE, result.message
    assert result.knee_rate is not None and abs(result.knee_rate - 300) <= 30, result.message
    assert [p.name for p in result.passes] == ["coarse", "fine"]
    assert all(p.status == "completed" for p in result.passes)
    assert "stopped early" in str(result.passes[0].reason)  # 400/s and 450/s never ran
    coarse = {s.rate: s for s in result.steps if s.pass_name == "coarse"}
    assert coarse[450.0].verdict is Verdict.NOT_RUN
    measured = [s for s in result.steps if s.verdict is not Verdict.NOT_RUN]
    for step in measured:
        assert step.unsent == 0 and step.achieved_rate == pytest.approx(step.rate, rel=0.05)
        if step.verdict is Verdict.FAIL:
            # where the busy answers came from: the wallets' rate limit
            assert next(iter(step.cause_groups())) == "throttled", step
            assert step.rate > 300

    cdir = Path(result.capacity_dir)
    data = json.loads((cdir / "capacity.json").read_text())
    assert data["schema"] == "loadkit.capacity/v1" and data["outcome"] == "knee"
    assert data["knee_rate"] == result.knee_rate and len(data["steps"]) == len(result.steps)
    html = (cdir / "capacity.html").read_text()
    assert "<svg" in html and f"knee at {result.knee_rate:g}/s" in html
    assert "knee" in (cdir / "summary.md").read_text()
    for record in result.passes:
        assert (Path(record.run_dir) / "report.html").is_file()


def test_cli_knee_moves_with_the_limit(limited: ReferenceStack, tmp_path: Path) -> None:
    profile = tmp_path / "knee.yaml"
    profile.write_text(PROFILE)
    scenario = tmp_path / "tighter.yaml"
    scenario.write_text(TIGHTER)
    out = tmp_path / "out"
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "loadkit",
            "capacity",
            str(profile),
            "--stack-dir",
            str(limited.stack_dir),
            "--chaos",
            str(scenario),
            *("--start-rate", "140/s", "--step", "20/s", "--resolution", "20/s"),
            *("--max-rate", "300/s"),
            *("--hold", "3s", "--warmup", "1s", "--min-knee", "250/s"),
            *("--out", str(out)),
        ],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=tmp_path,
        env={**os.environ, "COLUMNS": "120", "PYTHONPATH": str(ROOT)},
    )
    # a knee was found, but below the CI gate's --min-knee: exit 1
    assert run.returncode == 1, run.stdout + run.stderr
    assert "capacity below --min-knee: needed 250/s" in run.stderr
    (cdir,) = out.iterdir()
    data = json.loads((cdir / "capacity.json").read_text())
    assert data["outcome"] == "knee" and data["scenario"] == str(scenario)
    assert abs(data["knee_rate"] - 200) <= 20, data["message"]
    assert f"knee at {data['knee_rate']:g}/s" in run.stdout
    assert f"capacity directory: {cdir}" in run.stdout
    # the fault was reverted at the end of each pass: the limit is the fixture's again
    assert all(s["limits"]["rate_limit"] == 150 for s in limited.admin.state())
