"""``python -m loadkit.wallet``: migrate, seed, serve (secrets, signals) in real subprocesses."""

from __future__ import annotations

import json
import os
import signal
import ssl
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


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """``(ca.pem, server.pem, server.key)`` for 127.0.0.1 from a throwaway CA."""
    import trustme

    root = tmp_path_factory.mktemp("tls")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    ca.cert_pem.write_to_path(str(root / "ca.pem"))
    cert.private_key_pem.write_to_path(str(root / "server.key"))
    cert.cert_chain_pems[0].write_to_path(str(root / "server.pem"))
    for pem in cert.cert_chain_pems[1:]:
        pem.write_to_path(str(root / "server.pem"), append=True)
    return root / "ca.pem", root / "server.pem", root / "server.key"


def test_serve_over_tls(
    wallet: WalletProcess, wallet_logs: Path, tls_files: tuple[Path, Path, Path]
) -> None:
    ca, cert, key = tls_files
    w = spawn_wallet(
        wallet.dsn,
        wallet_logs,
        "--tls-cert",
        str(cert),
        "--tls-key",
        str(key),
        name="w-tls",
        verify=ssl.create_default_context(cafile=str(ca)),
    )
    try:
        assert w.url.startswith("https://")
        trust = ssl.create_default_context(cafile=str(ca))
        with httpx.Client(base_url=w.url, verify=trust, timeout=10) as client:
            assert client.get("/readyz").status_code == 200
            r = client.post("/v1/login", json={"username": "user00399", "password": "wallet-pass"})
            assert r.status_code == 200 and r.json()["token"]
        # plain HTTP on the TLS port is not served, and an unknown CA is not trusted
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"http://127.0.0.1:{w.port}/healthz", timeout=3)
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            httpx.get(f"{w.url}/healthz", timeout=3)
    finally:
        assert w.stop() == 0
    assert "Traceback" not in w.log()


@pytest.mark.parametrize(
    "which", ["cert-only", "key-only", "missing-file", "key-of-another-cert", "not-pem"]
)
def test_serve_refuses_unusable_tls_files(
    which: str, tls_files: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    import trustme

    _, cert, key = tls_files
    other = trustme.CA().issue_cert("127.0.0.1")
    other_key = tmp_path / "other.key"
    other.private_key_pem.write_to_path(str(other_key))
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    args = {
        "cert-only": ["--tls-cert", str(cert)],
        "key-only": ["--tls-key", str(key)],
        "missing-file": ["--tls-cert", str(tmp_path / "nope.pem"), "--tls-key", str(key)],
        "key-of-another-cert": ["--tls-cert", str(cert), "--tls-key", str(other_key)],
        "not-pem": ["--tls-cert", str(garbage), "--tls-key", str(key)],
    }[which]
    env = {**os.environ, "LOADKIT_WALLET_SECRET": "s", "LOADKIT_WALLET_ADMIN_TOKEN": "a"}
    done = _cli("serve", "--dsn", "postgresql://x@127.0.0.1:1/x", *args, env=env)
    assert done.returncode == 2, done.stderr
    assert "--tls" in done.stderr or "TLS" in done.stderr
    assert "Traceback" not in done.stderr
