"""Locust workers: a worker lost mid-run is reported (which one, when, its arrivals counted
unsent, the run invalid past 1%) and the run ends on time, and its money movements are not
taken for the wallet's; the master binds only where it may."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from loadkit.errors import ConfigError
from loadkit.run.orchestrator import Runner, RunOptions
from loadkit.rundir import RunDir, RunStatus
from loadkit.rundir.acks import read_records
from loadkit.stack.ports import free_port
from loadkit.stack.reference import ReferenceStack
from tests.conftest import PlainService
from tests.netns import TestHost
from tests.support import ROOT

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


def test_a_worker_on_another_host_joins_and_its_loss_is_reported(
    netns_host: TestHost, tmp_path: Path
) -> None:
    """The master listens on the address a second host reaches (its gateway); a worker started
    there with `loadkit worker --master` joins; SIGKILL of it mid-run is reported."""
    gateway = netns_host.gateway
    port = free_port()
    service = subprocess.Popen(
        [sys.executable, "-m", "tests.load.plain_service", str(port), "--bind", gateway],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while not _open(gateway, port):
            assert time.monotonic() < deadline and service.poll() is None
            time.sleep(0.05)
        profile = tmp_path / "p.yaml"
        profile.write_text(PROFILE)
        master = free_port()
        runner = Runner(
            RunOptions(
                profile=profile,
                target=f"http://{gateway}:{port}",
                workers=1,
                remote_workers=1,
                master_bind=f"{gateway}:{master}",
                allow=(gateway,),
                out=tmp_path / "r",
            )
        )
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        with (tmp_path / "remote-worker.log").open("wb") as log:
            # `ip netns exec` execs the command: the pid is the worker's own
            remote = netns_host.run(
                [sys.executable, "-m", "loadkit", "worker", "--master", f"{gateway}:{master}"],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        killed: list[float] = []

        def kill_remote(run: Runner, t: float) -> None:
            if t >= 4 and not killed:
                remote.send_signal(signal.SIGKILL)
                killed.append(t)

        runner.events.tick.add_listener(kill_remote)
        result = runner.run()
    finally:
        service.terminate()
        service.wait(10)
    assert killed, (tmp_path / "remote-worker.log").read_text()[-2000:]
    assert result.record.master == {"bind": gateway, "port": master}
    log = (tmp_path / "remote-worker.log").read_text()[-2000:]
    assert len(result.record.lost_workers) == 1, (result.record, log)
    (lost,) = result.record.lost_workers
    assert "lost at" in (result.record.reason or "")
    actions = result.timeline.totals("action")
    assert actions.answered > 0 and actions.count("unsent") == lost["unsent"] > 0
    assert actions.answered + actions.count("unsent") == 12 * 40


def _open(host: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
        return True
    return False


def test_the_compose_recipe_for_a_master_and_workers() -> None:
    """docker/compose.workers.yaml: its commands are real loadkit command lines that agree
    with each other (the port the master binds is the one workers join), on the core image."""
    import yaml

    from loadkit.cli.main import build_parser

    compose = yaml.safe_load((ROOT / "docker" / "compose.workers.yaml").read_text())
    services = compose["services"]
    master = [str(a) for a in services["master"]["command"]]
    worker = [str(a) for a in services["worker"]["command"]]
    parser = build_parser()
    run = parser.parse_args([a.replace("${WORKERS:-2}", "2") for a in master])
    assert run.remote_workers == 2 and run.master_bind == "0.0.0.0:5557"
    assert "0.0.0.0" in run.allow, "listening everywhere is allowed on purpose"
    assert (ROOT / run.profile).is_file() and (ROOT / run.system).is_file()
    joined = parser.parse_args(worker)
    assert joined.master == "master:5557"
    dockerfile = (ROOT / "docker" / "Dockerfile.load").read_text()
    assert "pip install --no-cache-dir /src" in dockerfile, "loadkit's core: no stack extra"


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
    spills = sorted(rd.acks_spill.glob("worker-*.bin"))
    assert len(spills) == 2 and all(_keys(spill) for spill in spills)
    # their logs are in the run directory: the master did not write their records again
    assert not _keys(rd.acks)


def _keys(path: Path) -> set[str]:
    return {r["key"] for r in read_records(path)}
