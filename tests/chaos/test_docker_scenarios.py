"""The shipped scenarios against the reference stack in containers (``--backend docker``), under
real load through the real CLI: users see busy while a fault lasts, recover afterwards, and every
container runs again at the end; and a controller killed with SIGKILL mid-fault leaves paused
and killed containers that ``loadkit chaos rollback`` brings back.

The scenarios are ``chaos/api-crash.yaml`` and ``chaos/db-crash.yaml`` as shipped (same faults,
targets, probes and abort conditions), with their fault times scaled down to fit the test budget.
"""

from __future__ import annotations

import math
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from loadkit.report.metrics import compute_metrics
from loadkit.rundir.events import read_events
from loadkit.rundir.timeline import Timeline
from loadkit.spec.values import format_duration, parse_duration
from loadkit.stack.backends.docker import DockerBackend
from loadkit.stack.reference import ReferenceStack, StackOptions
from tests.support import loadkit

ROOT = Path(__file__).parents[2]
SCALE = 0.25  # fault times of the shipped scenarios, compressed

PROFILE = """
name: docker-chaos
stages:
  - {name: steady, duration: DURATION, rate: 30/s}
journeys:
  - {wallet: balance, weight: 2}
  - {wallet: p2p_transfer, weight: 1, amount: {min: 1, max: 5}}
client: {timeout: 2s}
"""


@pytest.fixture(scope="module")
def docker_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReferenceStack]:
    """A docker-backed reference stack for this module (the engine must answer: no skipping)."""
    where = tmp_path_factory.mktemp("docker-stack")
    where.chmod(0o755)
    stack = ReferenceStack.up(
        where / "stack", StackOptions(instances=2, users=200, merchants=10, backend="docker")
    )
    assert isinstance(stack.backend, DockerBackend)
    try:
        yield stack
    finally:
        ReferenceStack.attach(stack.stack_dir).down()


def scaled(name: str, into: Path) -> Path:
    """``chaos/<name>.yaml`` with every fault's ``at``/``duration``/``until`` times ``SCALE``."""
    doc: dict[str, Any] = yaml.safe_load((ROOT / "chaos" / f"{name}.yaml").read_text())
    for fault in doc["faults"]:
        for key in ("at", "duration", "until"):
            if key in fault:
                fault[key] = format_duration(parse_duration(fault[key]) * SCALE)
    path = into / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def containers(stack: ReferenceStack) -> dict[str, Any]:
    assert isinstance(stack.backend, DockerBackend)
    return stack.backend.containers()


def containers_running(stack: ReferenceStack) -> dict[str, str]:
    return {name: c.status for name, c in containers(stack).items()}


def run_under_load(stack: ReferenceStack, scenario: Path, tmp_path: Path, seconds: int) -> Path:
    profile = tmp_path / "profile.yaml"
    profile.write_text(PROFILE.replace("DURATION", f"{seconds}s"))
    out = tmp_path / "reports"
    done = loadkit(
        "run",
        str(profile),
        "--chaos",
        str(scenario),
        "--stack-dir",
        str(stack.stack_dir),
        "--out",
        str(out),
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (run_dir,) = [d for d in out.iterdir() if d.is_dir()]
    return run_dir


def assert_all_back(stack: ReferenceStack, run_dir: Path) -> None:
    events = read_events(run_dir / "events.jsonl")
    injected = [e for e in events if e.get("event") == "inject.end" and e["result"] == "ok"]
    reverted = [e for e in events if e.get("event") == "revert.end" and e["result"] == "ok"]
    assert injected and len(reverted) == len(injected), events
    now = ReferenceStack.attach(stack.stack_dir)
    assert isinstance(now.backend, DockerBackend)
    assert set(containers_running(now).values()) == {"running"}, containers_running(now)
    status = now.status()
    assert status["healthy"], status
    assert now.admin.invariants()["ok"]


@pytest.mark.slow
def test_api_crash_on_containers(docker_stack: ReferenceStack, tmp_path: Path) -> None:
    before = {n: c.id for n, c in containers(docker_stack).items()}
    run_dir = run_under_load(docker_stack, scaled("api-crash", tmp_path), tmp_path, 34)
    m = compute_metrics(run_dir)
    crash, hang = m.fault("kill-wallet-1"), m.fault("hang-wallet-2")
    assert crash is not None and hang is not None
    # half the traffic goes to the killed container: users see "busy" (connection refused)
    assert crash.request.counts.busy > 0 and (crash.request.busy_rate or 0) > 0.1, crash
    # a 1.25 s hang is shorter than the 2 s client timeout: users wait rather than fail
    assert hang.request.latency.p95 is not None and hang.request.latency.p95 > 500, hang
    assert crash.recovered and hang.recovered, (crash.note, hang.note)
    assert_all_back(docker_stack, run_dir)
    # the same containers, started again (not replaced)
    assert {n: c.id for n, c in containers(docker_stack).items()} == before
    events = read_events(run_dir / "events.jsonl")
    killed = next(e for e in events if e.get("fault") == "kill-wallet-1" and "state" in e)
    assert killed["state"]["processes"][0]["process"]["log"].startswith("docker logs ")


@pytest.mark.slow
def test_db_crash_on_containers(docker_stack: ReferenceStack, tmp_path: Path) -> None:
    run_dir = run_under_load(docker_stack, scaled("db-crash", tmp_path), tmp_path, 40)
    m = compute_metrics(run_dir)
    down, backend = m.fault("db-down"), m.fault("backend-crash")
    assert down is not None and backend is not None and down.end_s is not None
    assert down.request.counts.busy > 0 and (down.request.busy_rate or 0) > 0.3, down
    causes = set(down.request.counts.causes)
    assert causes <= {"unavailable", "timeout", "connection", "server_error"}, causes
    # compressed, the killed backend comes before db-down's 20 s recovery window ends: db-down's
    # recovery shows as users served again; the last fault's as the report's recovery time
    tl = Timeline.read(run_dir / "timeline.jsonl")
    calm = tl.select("action", t_from=math.ceil(down.end_s) + 2, t_to=math.floor(backend.start_s))
    assert calm.answered > 0 and calm.busy_rate == 0
    assert backend.recovered and backend.recovery_s is not None, backend
    assert_all_back(docker_stack, run_dir)


def wait_injected(out: Path, n: int, timeout: float = 30.0) -> Path:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for run_dir in out.glob("*"):
            events = read_events(run_dir / "events.jsonl")
            if sum(1 for e in events if e.get("event") == "inject.end") >= n:
                return run_dir
        time.sleep(0.05)
    raise AssertionError(f"{n} injections not journaled within {timeout}s")


@pytest.mark.slow
def test_rollback_after_sigkill_restores_containers(
    docker_stack: ReferenceStack, tmp_path: Path
) -> None:
    scenario = tmp_path / "killed.yaml"
    scenario.write_text(
        "name: killed-mid-fault\n"
        "faults:\n"
        "  - {name: freeze-1, type: container.pause, target: wallet-1, at: 500ms, duration: 5m}\n"
        "  - {name: kill-2, type: container.kill, target: wallet-2, at: 500ms, duration: 5m}\n"
        "  - {name: db-down, type: postgres.crash, at: 500ms, duration: 5m}\n"
    )
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "loadkit", "chaos", "run", str(scenario), "--no-dashboard"),
            *("--stack-dir", str(docker_stack.stack_dir), "--out", str(out)),
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        run_dir = wait_injected(out, 3)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    states = containers_running(docker_stack)
    assert states["wallet-1"] == "paused" and states["wallet-2"] == "exited", states
    assert states["postgres"] == "exited", states

    done = loadkit("chaos", "rollback", str(run_dir), timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("reverted ") == 3, done.stdout
    assert "unpaused" in done.stdout and "started" in done.stdout
    now = ReferenceStack.attach(docker_stack.stack_dir)
    assert isinstance(now.backend, DockerBackend)
    assert set(containers_running(now).values()) == {"running"}
    assert now.status()["healthy"], now.status()
    again = loadkit("chaos", "rollback", str(run_dir))
    assert again.returncode == 0 and "nothing to roll back" in again.stdout


def test_bare_names_are_the_stacks_containers(docker_stack: ReferenceStack) -> None:
    from loadkit.chaos.env import StackEnv
    from loadkit.chaos.faults.docker import refusals

    stack = ReferenceStack.attach(docker_stack.stack_dir)
    assert refusals(StackEnv(stack), "wallet-1") == []
    assert refusals(StackEnv(stack), "name:*") == []  # its own containers only: in scope
    # safety.allow patterns match the container's name or, for the stack's own, its component
    narrowed = StackEnv(stack, patterns=("wallet-*",))
    assert refusals(narrowed, "wallet-1") == []
    (why,) = refusals(narrowed, "postgres")
    assert why.startswith(
        f"'postgres' matches only containers outside the blast radius "
        f"({containers(docker_stack)['postgres'].name}); faults may touch containers named "
        "wallet-*"
    )
