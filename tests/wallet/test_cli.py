"""``python -m loadkit.wallet``: migrate, seed, serve (secrets, signals) in real subprocesses."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from loadkit.stack.postgres import Postgres
from tests.wallet.conftest import WalletProcess, spawn_wallet, sql


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "loadkit.wallet", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )


def test_migrate_and_seed_are_idempotent(pg_dsn: str, pg: Postgres) -> None:
    for _ in range(2):
        done = _cli("migrate", "--dsn", pg_dsn)
        assert done.returncode == 0, done.stderr
    args = ["seed", "--dsn", pg_dsn, "--users", "12", "--merchants", "2", "--balance", "300"]
    first = _cli(*args)
    assert first.returncode == 0, first.stderr
    counts = json.loads(first.stdout)
    assert counts["created_users"] == 12 and counts["created_merchants"] == 2
    assert counts["funded"] == 12
    second = json.loads(_cli(*args).stdout)
    assert second["created_users"] == 0 and second["funded"] == 0
    assert sql(pg, pg_dsn, "SELECT sum(balance) FROM accounts") == "0"
    assert sql(pg, pg_dsn, "SELECT balance FROM accounts WHERE name = 'user00012'") == "300"


def test_migrate_against_no_database_fails_cleanly() -> None:
    from loadkit.stack.ports import free_port

    done = _cli("migrate", "--dsn", f"postgresql://loadkit@127.0.0.1:{free_port()}/x")
    assert done.returncode == 3
    assert "cannot reach the database" in done.stderr and "Traceback" not in done.stderr


def test_seed_rejects_negative_counts(pg_dsn: str) -> None:
    assert _cli("migrate", "--dsn", pg_dsn).returncode == 0
    done = _cli("seed", "--dsn", pg_dsn, "--users", "-1")
    assert done.returncode == 2 and "users" in done.stderr


def test_serve_without_secrets_exits_2() -> None:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("LOADKIT_WALLET_SECRET", "LOADKIT_WALLET_ADMIN_TOKEN")
    }
    done = _cli("serve", "--dsn", "postgresql://loadkit@127.0.0.1:1/x", env=env)
    assert done.returncode == 2
    assert "LOADKIT_WALLET_SECRET" in done.stderr and "LOADKIT_WALLET_ADMIN_TOKEN" in done.stderr


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_serve_exits_cleanly_on_signals(
    sig: signal.Signals, pg_dsn: str, wallet_logs: Path
) -> None:
    assert _cli("migrate", "--dsn", pg_dsn).returncode == 0
    w = spawn_wallet(pg_dsn, wallet_logs, name=f"w-{sig.name}")
    assert httpx.get(f"{w.url}/readyz", timeout=5).status_code == 200
    t0 = time.monotonic()
    w.proc.send_signal(sig)
    assert w.proc.wait(10) == 0, w.log()
    assert time.monotonic() - t0 < 5
    assert "Traceback" not in w.log()


def test_serve_binds_loopback_by_default(wallet: WalletProcess) -> None:
    import psutil

    ports = [
        c.laddr
        for c in psutil.Process(wallet.proc.pid).net_connections(kind="tcp")
        if c.status == psutil.CONN_LISTEN
    ]
    assert ports and all(addr.ip == "127.0.0.1" for addr in ports)
