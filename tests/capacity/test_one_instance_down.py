"""Capacity while one instance is down: each of the 2 reference wallets admits L requests/s, and
``chaos/one-instance-down.yaml`` keeps wallet-2 crashed through the search. With ``client:
failover: true`` (the load balancer's passive health check, client-side) the knee is L — what
the instance left can take — instead of 2L with both up, or "not met" with users pinned to the
dead one."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from loadkit.capacity import Outcome, Verdict
from loadkit.rundir.timeline import Timeline
from loadkit.stack.reference import ReferenceStack

ROOT = Path(__file__).parents[2]
LIMIT = 150  # requests/s per instance

# one request per action: balance, logged in during the ramp, no client retries
PROFILE = """
name: one-down
stages: [{name: steady, duration: 10s, rate: 150/s}]
users: {accounts: 200, max_in_flight: 500}
journeys: [{wallet: balance}]
client: {timeout: 2s, retries: {attempts: 1}, failover: true}
"""


@pytest.fixture
def limited(stack: ReferenceStack) -> Iterator[ReferenceStack]:
    """Each of the 2 instances admits LIMIT requests/s, with a small burst."""
    stack.admin.limits(rate_limit=LIMIT, rate_burst=10)
    yield stack
    stack.admin.limits(rate_limit=None)


@pytest.fixture(scope="session")
def loadkit_stack(stack: ReferenceStack) -> ReferenceStack:
    return stack


def test_capacity_while_one_instance_is_down(
    limited: ReferenceStack, loadkit_capacity: Any, tmp_path: Path
) -> None:
    profile = tmp_path / "one-down.yaml"
    profile.write_text(PROFILE)
    result = loadkit_capacity(
        profile,
        scenario=ROOT / "chaos" / "one-instance-down.yaml",
        max_busy=0.01,
        start_rate=105,
        step=15,
        resolution=15,  # one pass
        max_rate=2 * LIMIT,
        hold_s=3,
        warmup_s=1,
    )
    assert result.outcome is Outcome.KNEE, result.message
    assert result.knee_rate is not None
    assert abs(result.knee_rate - LIMIT) <= 0.1 * LIMIT, result.message
    (record,) = result.passes
    for step in result.steps:
        if step.verdict is Verdict.FAIL:
            # lost to the rate limit of the instance left, not to the dead one's connections
            assert next(iter(step.cause_groups())) == "throttled", step
            assert step.rate > LIMIT
    # wallet-2 was down: requests to it failed over (a few, each followed by an ejection) …
    timeline = Timeline.read(Path(record.run_dir) / "timeline.jsonl")
    assert timeline.totals("request").busy.get("connection", 0) > 0
    # … and no user action saw it
    assert timeline.totals("action").busy.get("connection", 0) == 0
    # the crash was reverted at the end of the pass: both instances answer again
    assert len(limited.admin.state()) == 2
