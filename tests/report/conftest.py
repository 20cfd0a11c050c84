"""Fixtures: a hand-built run with a fault, phases and a profile (known numbers)."""

from __future__ import annotations

import json
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


DOUBLE11 = """
name: double11-mini
stages:
  - {name: evening, duration: 40s, rate: 40/s}
  - {name: midnight-spike, duration: 2s, rate: 200/s}
  - {name: peak, duration: 30s, rate: 80/s}
  - {name: cool-down, duration: 40s, rate: 40/s}
journeys:
  - {name: pay, weight: 3, http: [{name: pay, method: POST, path: /pay}]}
  - {name: balance, weight: 1, http: [{name: balance, path: /balance}]}
network:
  - {name: wifi, weight: 70%}
  - {name: weak-4g, weight: 30%, latency: 200ms}
"""


def build_breakdown_run(path: Path, *, status: str = "completed", end: int = 112) -> Path:
    """Double 11 in miniature on two instances and two network classes: a database link of
    wallet-1 slowed over [45, 70) makes wallet-1's users busy (40%), wallet-2 stays fine; a
    short spike at [40, 42); the wallet's own causes in server-causes.jsonl."""
    rd = RunDirBuilder(path, profile=DOUBLE11, name="double11-mini", status=status)
    for t in range(end):
        phase = (
            "evening"
            if t < 40
            else "midnight-spike"
            if t < 42
            else "peak"
            if t < 72
            else "cool-down"
        )
        for instance in ("wallet-1", "wallet-2"):
            for network, share in (("wifi", 7), ("weak-4g", 3)):
                slow = instance == "wallet-1" and 45 <= t < 70
                busy = {"timeout": 4 * share // 2, "unavailable": share} if slow else {}
                ok = 10 * share - sum(busy.values())
                lat = [900.0, 2000.0] if slow else [8.0 + (20 if network == "weak-4g" else 0)]
                for journey in ("pay", "balance"):
                    for level in ("action", "request"):
                        rd.line(
                            t,
                            phase,
                            level=level,
                            journey=journey,
                            endpoint="*" if level == "action" else f"POST /{journey}",
                            ok=ok,
                            busy=busy,
                            lat_ms=lat,
                            instance=instance,
                            network=network,
                        )
    rd.fault("f01", "slow-db-link", 45, 70, target="wallet-1-postgres", type="network.latency")
    rd.fault("f02", "db-blip", 43, 47, target="postgres", type="postgres.restart")
    out = rd.write()
    lines = [
        {
            "schema": "loadkit.server-causes/v1",
            "source": "reference wallet /metrics",
            "groups": {"db_pool_timeout": "pool wait", "db_timeout": "database"},
        },
    ]
    for t in range(46, 70):
        lines.append(
            {
                "t": t + 1.0,
                "dt": 1.0,
                "instance": "wallet-1",
                "busy": {"db_pool_timeout": 30, "db_timeout": 5},
            }
        )
    (out / "server-causes.jsonl").write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    return out


@pytest.fixture
def breakdown_run(tmp_path: Path) -> Path:
    return build_breakdown_run(tmp_path / "20261111-000000-double11-mini")
