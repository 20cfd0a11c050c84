"""``loadkit chaos`` as a real command in a subprocess: the catalog, dry runs, exit codes, and
rollback after the controller is halted, interrupted, or killed with SIGKILL."""

from __future__ import annotations

import json
import os
import pty
import signal
import subprocess
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from loadkit.chaos import read_events
from loadkit.chaos.catalog import FAULTS
from loadkit.chaos.faults.postgres import run_sql
from loadkit.stack.reference import ReferenceStack
from tests.support import loadkit, spawn_loadkit

ROOT = Path(__file__).parents[2]


def chaos(*args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """``loadkit chaos ARGS…``"""
    return loadkit("chaos", *args, timeout=120, columns=200, **kwargs)


def spawn(*args: str, **kwargs: Any) -> subprocess.Popen[str]:
    """``loadkit chaos ARGS…`` in the background."""
    return spawn_loadkit("chaos", *args, columns=200, **kwargs)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "scenario.yaml"
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


def wait_for(out: Path, injected: int, timeout: float = 20.0) -> Path:
    """The run directory, once its journal shows ``injected`` finished injections."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for run_dir in out.glob("*"):
            events = read_events(run_dir / "events.jsonl")
            if sum(1 for e in events if e.get("event") == "inject.end") >= injected:
                return run_dir
        time.sleep(0.05)
    raise AssertionError(f"{injected} injections not journaled within {timeout}s")


def test_list_prints_every_fault_with_its_parameters() -> None:
    done = chaos("list")
    assert done.returncode == 0, done.stderr
    for name in FAULTS:
        assert name in done.stdout
    assert "latency (1s)" in done.stdout and "toxicity (100%)" in done.stdout
    rows = json.loads(chaos("list", "--json").stdout)
    assert {r["type"] for r in rows} == set(FAULTS) and len(
        rows
    ) == 30  # 20, 5 container, 4 SQL, 1 command
    latency = next(r for r in rows if r["type"] == "network.latency")
    assert [p["name"] for p in latency["params"]] == ["latency", "jitter", "stream", "toxicity"]


def test_dry_run_prints_the_plan_with_phases_resolved(stack: ReferenceStack) -> None:
    done = chaos(
        "run",
        "chaos/gameday.yaml",
        "--profile",
        "profiles/double11.yaml",
        "--dry-run",
        "--stack-dir",
        str(stack.stack_dir),
    )
    assert done.returncode == 0, done.stderr
    assert "363s (peak+2s)" in done.stdout and "368s (5s)" in done.stdout
    assert "every target is allowlisted" in done.stdout
    assert "abort when busy-rate over 10s above 60% for 30s (too-busy)" in done.stdout


def test_a_mistake_in_the_file_exits_2_with_its_place(tmp_path: Path) -> None:
    path = write(tmp_path, "faults:\n  - {type: proces.crash, target: wallet-1, at: 1s}\n")
    done = chaos("run", str(path), "--stack-dir", str(tmp_path))
    assert done.returncode == 2
    assert f"error: {path}:2:12: faults[0].type: unknown fault type 'proces.crash'; did you " in (
        done.stderr.replace("\n", "")
    )


def test_a_refused_target_exits_4_before_anything_runs(
    stack: ReferenceStack, tmp_path: Path
) -> None:
    path = write(
        tmp_path,
        """
        faults:
          - {type: network.latency, target: wallet-1-postgres, at: 0s, duration: 5s}
          - {type: process.crash, target: wallet-7, at: 0s, duration: 1s}
        """,
    )
    out = tmp_path / "out"
    done = chaos("run", str(path), "--stack-dir", str(stack.stack_dir), "--out", str(out))
    assert done.returncode == 4, done.stderr
    assert "refused before injecting anything: fault 'crash-2' (process.crash): no wallet" in (
        done.stderr.replace("\n", " ")
    )
    assert not out.exists()
    assert stack.toxiproxy.toxics("wallet-1-postgres") == []


def test_abort_condition_exits_4_with_everything_rolled_back(
    stack: ReferenceStack, tmp_path: Path
) -> None:
    path = write(
        tmp_path,
        """
        steady_state:
          traffic: {rate: 20/s}
        faults:
          - {type: wallet.maintenance, at: 300ms, duration: 1m}
        abort:
          - {name: maintenance-too-long, when: busy-rate, above: 50%, window: 1s, for: 1s}
        """,
    )
    out = tmp_path / "out"
    done = chaos(
        "run", str(path), "--stack-dir", str(stack.stack_dir), "--out", str(out), "--no-dashboard"
    )
    assert done.returncode == 4, done.stderr
    assert "aborted, everything rolled back: abort condition 'maintenance-too-long'" in (
        done.stderr.replace("\n", " ")
    )
    (run_dir,) = out.glob("*")
    run = json.loads((run_dir / "run.json").read_text())
    assert run["status"] == "aborted" and "clock.json" in os.listdir(run_dir)
    assert {s["maintenance"]["enabled"] for s in stack.admin.state()} == {False}


def test_sigterm_rolls_back_and_exits_130(stack: ReferenceStack, tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        faults:
          - {type: network.latency, target: client-wallet-2, latency: 2s, at: 0s, duration: 1m}
          - {type: process.hang, target: wallet-2, at: 0s, duration: 1m}
        """,
    )
    out = tmp_path / "out"
    proc = spawn(
        "run",
        str(path),
        "--stack-dir",
        str(stack.stack_dir),
        "--out",
        str(out),
        "--no-dashboard",
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        run_dir = wait_for(out, 2)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    events = read_events(run_dir / "events.jsonl")
    assert [e["reason"] for e in events if e.get("event") == "halt"] == [
        "interrupted (Ctrl-C or SIGTERM)"
    ]
    assert sum(1 for e in events if e.get("event") == "revert.end" and e["result"] == "ok") == 2


def test_the_halt_key_rolls_back_at_once(stack: ReferenceStack, tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "faults:\n  - {type: wallet.policy, at: 0s, duration: 1m}\n",
    )
    out = tmp_path / "out"
    master, slave = pty.openpty()  # a terminal: the dashboard reads keys from it
    proc = spawn(
        "run",
        str(path),
        "--stack-dir",
        str(stack.stack_dir),
        "--out",
        str(out),
        stdin=slave,
        stdout=slave,
        stderr=slave,
    )
    os.close(slave)
    screen: list[bytes] = []
    reader = threading.Thread(target=_drain, args=(master, screen), daemon=True)
    reader.start()
    try:
        wait_for(out, 1)
        time.sleep(0.5)  # the dashboard is up and reading keys
        os.write(master, b"h")
        proc.wait(timeout=60)
    finally:
        proc.kill()
        reader.join(5)
        os.close(master)
    text = b"".join(screen).decode(errors="replace")
    assert proc.returncode == 130, text[-2000:]
    assert "press h to halt" in text and "halted by the operator (h)" in text
    assert {s["policy"] for s in stack.admin.state()} == {"normal"}


def _drain(fd: int, into: list[bytes]) -> None:
    while True:
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            return
        if not chunk:
            return
        into.append(chunk)


def test_after_sigkill_of_the_controller_rollback_restores_every_target(
    stack: ReferenceStack, tmp_path: Path
) -> None:
    path = write(
        tmp_path,
        """
        name: killed-mid-fault
        faults:
          - {name: policy, type: wallet.policy, at: 300ms, duration: 1m}
          - {name: slow-client, type: network.latency, target: client-wallet-1, latency: 300ms,
             at: 600ms, duration: 1m}
          - {name: db-down-link, type: network.down, target: wallet-2-postgres, at: 600ms,
             duration: 1m}
          - {name: slow-writes, type: postgres.slow-queries, at: 600ms, duration: 1m}
          - {name: hang-2, type: process.hang, target: wallet-2, at: 900ms, duration: 1m}
          - {name: crash-1, type: process.crash, target: wallet-1, at: 900ms, duration: 1m}
          - {name: held, type: postgres.connections, connections: 20, at: 900ms, duration: 1m}
        """,
    )
    out = tmp_path / "out"
    proc = spawn(
        "run",
        str(path),
        "--stack-dir",
        str(stack.stack_dir),
        "--out",
        str(out),
        "--no-dashboard",
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        run_dir = wait_for(out, 7)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    # the faults outlive their controller
    now = ReferenceStack.attach(stack.stack_dir)
    assert not now.wallet("wallet-1").alive()
    hung = now.wallet("wallet-2").process
    assert hung is not None and hung.stopped()
    assert now.toxiproxy.toxics("client-wallet-1")
    assert run_sql(now.dsn, "SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'loadkit%'")[0][0]

    done = chaos("rollback", str(run_dir))
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("reverted ") == 7
    after = ReferenceStack.attach(stack.stack_dir)
    assert all(w.ready() for w in after.wallets)
    assert {s["policy"] for s in after.admin.state()} == {"normal"}
    assert after.toxiproxy.toxics("client-wallet-1") == []
    assert after.toxiproxy.proxies()["wallet-2-postgres"].enabled
    assert httpx.get(f"{after.wallet('wallet-2').info.client_url}/readyz", timeout=5).is_success
    events = read_events(run_dir / "events.jsonl")
    assert events[-1]["event"] == "rollback.end"
    kinds = {
        e["fault"]: e["type"].split(".")[0] for e in events if e.get("event") == "inject.begin"
    }
    order = [kinds[e["fault"]] for e in events if e.get("event") == "revert.begin"]
    # links and the database first, then processes, the wallets' admin state once they run
    assert order == ["network"] * 2 + ["postgres"] * 2 + ["process"] * 2 + ["wallet"]
    again = chaos("rollback", str(run_dir))
    assert again.returncode == 0 and "nothing to roll back" in again.stdout


def test_a_fault_left_in_place_prints_the_exact_rollback_command(tmp_path: Path) -> None:
    """A revert that fails (a command fault whose revert needs a fix first) leaves the fault in
    place: ``loadkit run --chaos`` and ``loadkit chaos run`` both exit 3 and print the exact
    command; once fixed, that command puts it back."""
    system = tmp_path / "shop.yaml"
    system.write_text(
        textwrap.dedent(
            """
            name: left-in-place
            services:
              shop: {url: "http://127.0.0.1:9"}
            commands:
              maintenance:
                inject: [touch, flag]
                revert: [sh, -c, "test -e fixed && rm -f flag"]
                check: [test, "!", -e, flag]
                timeout: 5s
            """
        )
    )
    scenario = write(
        tmp_path,
        """
        name: left
        steady_state: {before: false, after: false}
        faults:
          - {name: maintenance, type: command.run, target: maintenance, at: 200ms, duration: 1s}
        """,
    )
    profile = tmp_path / "profile.yaml"
    profile.write_text(
        "stages:\n  - {name: steady, duration: 3s, rate: 2/s}\n"
        "journeys:\n  - {name: home, http: [{name: home, path: /}]}\nclient: {timeout: 1s}\n"
    )
    env = {"LOADKIT_LOCK_DIR": str(tmp_path)}
    flag = tmp_path / "flag"
    commands = {
        "run": (
            ["run", str(profile), "--system", str(system), "--chaos", str(scenario)],
            "warning: faults still in place: maintenance (command.run on maintenance) — put "
            "them back with: loadkit chaos rollback {}",
        ),
        "chaos": (
            ["chaos", "run", str(scenario), "--system", str(system), "--no-dashboard"],
            "retry with: loadkit chaos rollback {}",
        ),
    }
    for out, (argv, line) in commands.items():
        done = loadkit(*argv, "--out", str(tmp_path / out), env=env, columns=400)
        (run_dir,) = list((tmp_path / out).iterdir())
        assert done.returncode == 3, done.stdout + done.stderr  # the system is not as it was
        assert line.format(run_dir) in done.stderr.splitlines(), done.stderr
        assert flag.exists()
        # no controller starts on a system with another run's fault still in place
        refused = loadkit(
            *commands["chaos"][0], "--out", str(tmp_path / "refused"), env=env, columns=400
        )
        assert refused.returncode == 4 and f"rollback {run_dir}" in refused.stderr, refused.stderr
        (tmp_path / "fixed").touch()  # what the operator fixes, then the command printed
        rollback = loadkit("chaos", "rollback", str(run_dir), env=env)
        assert rollback.returncode == 0, rollback.stdout + rollback.stderr
        assert "reverted maintenance" in rollback.stdout and not flag.exists()
        (tmp_path / "fixed").unlink()
