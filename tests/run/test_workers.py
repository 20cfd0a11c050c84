"""Locust workers: a worker lost mid-run is reported (which one, when, its arrivals counted
unsent, the run invalid past 1%) and the run ends on time, and its money movements are not
taken for the wallet's; the master binds only where it may."""

from __future__ import annotations

import contextlib
import json
import signal
import time
from pathlib import Path

import pytest

from loadkit.errors import ConfigError
from loadkit.run.orchestrator import Runner, RunOptions
from loadkit.rundir import RunDir, RunStatus
from loadkit.stack.reference import ReferenceStack
from tests.conftest import PlainService

PROFILE = """
name: workers
stages:
  - {name: steady, duration: 12s, rate: 40/s}
journeys:
  - name: health
    http:
      - {name: health, path: /healthz}
"""


def test_a_killed_worker_is_reported_and_its_share_counted_unsent(
    plain_service: PlainService, tmp_path: Path
) -> None:
    profile = tmp_path / "p.yaml"
    profile.write_text(PROFILE)
    runner = Runner(
        RunOptions(profile=profile, target=plain_service.url, workers=2, out=tmp_path / "r")
    )
    killed: list[float] = []

    def kill_worker_2(run: Runner, t: float) -> None:
        if t >= 4 and not killed:
            worker = next(p for p in run.procs if p.info.name == "locust-worker-2")
            worker.signal(signal.SIGKILL)
            killed.append(t)

    runner.events.tick.add_listener(kill_worker_2)
    started = time.monotonic()
    result = runner.run()
    took = time.monotonic() - started
    assert killed
    assert result.status == RunStatus.INVALID, result.record.reason
    (lost,) = result.record.lost_workers
    assert lost["share"] in (0, 1) and lost["worker"]
    assert 4 <= lost["lost_at_s"] <= 12
    assert lost["unsent_from_s"] <= killed[0] + 1
    assert f"share {lost['share']}) lost at" in (result.record.reason or "")
    actions = result.timeline.totals("action")
    # every arrival of the run is accounted for: answered, or unsent (the lost share's)
    assert actions.answered + actions.count("unsent") == 12 * 40
    assert actions.count("unsent") == lost["unsent"] > 0
    assert RunDir(result.run_dir).lost_workers() == [lost]
    # ended on time: the profile, the drain, Locust's 3 s heartbeat — not the 30 s grace
    assert took < 12 + runner.drain_s() + 25, took


def test_the_master_binds_loopback_unless_allowed(tmp_path: Path) -> None:
    profile = tmp_path / "p.yaml"
    profile.write_text(PROFILE)
    base = {"profile": profile, "target": "http://127.0.0.1:9", "workers": 1}
    with pytest.raises(ConfigError, match=r"--master-bind: 198\.18\.0\.1 is not on loopback"):
        Runner(RunOptions(**base, master_bind="198.18.0.1:5557"))  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="listens on every interface"):
        Runner(RunOptions(**base, master_bind="0.0.0.0"))  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="expected ADDR"):
        Runner(RunOptions(**base, master_bind="198.18.0.1:http"))  # type: ignore[arg-type]
    ok = Runner(
        RunOptions(**base, master_bind="198.18.0.1:5557", allow=("198.18.0.0/30",))  # type: ignore[arg-type]
    )
    assert (ok.master_host, ok.master_port) == ("198.18.0.1", 5557)
    assert Runner(RunOptions(**base)).master_host == "127.0.0.1"  # type: ignore[arg-type]


# few users: they have all logged in (a login comes before a transfer's key) when the kill comes
MONEY_PROFILE = """
name: workers-money
stages:
  - {name: steady, duration: 10s, rate: 30/s}
users: {accounts: 20}
journeys:
  - {wallet: p2p_transfer, amount: {min: 1, max: 5}}
client: {timeout: 3s}
"""


def test_a_killed_workers_movements_are_resolved_not_unexpected(
    stack: ReferenceStack, tmp_path: Path
) -> None:
    """SIGKILL of a worker with movements in flight (the database link slowed down, so that
    there are some): every key it sent was on disk before it left, so nothing the ledger
    applied is "never sent"; its in-flight keys are unknowns, resolved against the ledger."""
    profile = tmp_path / "p.yaml"
    profile.write_text(MONEY_PROFILE)
    runner = Runner(
        RunOptions(profile=profile, stack_dir=stack.stack_dir, workers=2, out=tmp_path / "r")
    )
    killed: list[float] = []

    def kill_worker_2(run: Runner, t: float) -> None:
        if t >= 5 and not killed:
            worker = next(p for p in run.procs if p.info.name == "locust-worker-2")
            worker.signal(signal.SIGKILL)
            killed.append(t)

    runner.events.tick.add_listener(kill_worker_2)
    tp = stack.toxiproxy
    with contextlib.ExitStack() as slow:
        for w in stack.manifest.wallets:  # a few movements in flight per worker at any moment
            slow.enter_context(tp.toxic(w.db_proxy, "latency", attributes={"latency": 100}))
        result = runner.run()
    assert killed and len(result.record.lost_workers) == 1
    integrity = result.integrity
    assert integrity is not None and integrity.error is None, integrity
    assert integrity.unexpected == 0, integrity.examples  # before: "applied but never sent"
    assert integrity.ok is True, integrity.problems()
    assert integrity.in_flight > 0
    assert integrity.unknown_applied + integrity.unknown_not_applied == integrity.unknown
    assert integrity.unknown >= integrity.in_flight
    # the dead worker's last second reached only its own log: the check read it there
    rd = RunDir(result.run_dir)
    spills = sorted(rd.acks_spill.glob("worker-*.jsonl"))
    assert len(spills) == 2
    merged = _keys(rd.acks)
    assert any(_keys(spill) - merged for spill in spills)


def _keys(path: Path) -> set[str]:
    lines = path.read_text().splitlines()[1:]
    return {json.loads(line)["key"] for line in lines if line.strip().endswith("}")}
