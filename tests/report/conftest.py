"""Fixtures: a hand-built run with a fault, phases and a profile (known numbers)."""

from __future__ import annotations

from pathlib import Path

import pytest

from loadkit.report.metrics import compute_metrics
from loadkit.report.model import RunMetrics
from tests.report.rundirs import RunDirBuilder

PROFILE = """
name: hand-built
stages:
  - {name: before, duration: 30s, rate: 100/s}
  - {name: during, duration: 10s, rate: 100/s}
  - {name: after, duration: 50s, rate: 100/s}
journeys:
  - {name: pay, weight: 1, http: [{name: pay, path: /pay}]}
"""


def build_fault_run(path: Path, *, back_after: int = 18) -> Path:
    """90 s at 100 actions/s: a fault over [30, 40), 100% busy until 40 + ``back_after``."""
    rd = RunDirBuilder(path, profile=PROFILE)
    for t in range(90):
        phase = "before" if t < 30 else "during" if t < 40 else "after"
        if 30 <= t < 40 + back_after:
            rd.second(t, phase, busy={"unavailable": 60, "timeout": 40}, lat_ms=[2000.0, 2500.0])
        else:
            throttled = 1 if t % 10 == 0 else 0
            rd.second(
                t,
                phase,
                ok=99 - throttled,
                rejected=1,
                busy={"throttled": throttled},
                lat_ms=[8.0, 12.0, 30.0 + t],
            )
            rd.line(
                t,
                phase,
                level="request",
                journey="pay",
                endpoint="POST /v1/login",
                ok=100,
                lat_ms=[3.0, 4.0],
            )
    rd.fault("f01", "db-down", 30, 40)
    return rd.write()


@pytest.fixture
def fault_run(tmp_path: Path) -> Path:
    return build_fault_run(tmp_path / "20261128-193000-hand-built")


@pytest.fixture
def fault_metrics(fault_run: Path) -> RunMetrics:
    return compute_metrics(fault_run)
