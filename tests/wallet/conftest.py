"""Fixtures for the reference wallet: real PostgreSQL, real wallet processes, real HTTP.

``wallet`` is one ``python -m loadkit.wallet serve`` process for the whole session on a migrated
and seeded database; tests that change its admin state put it back (``admin_reset``). Tests that
need special settings or break the database start their own with ``start_wallet``. Each test
takes fresh seeded users from ``users`` so that balances never leak between tests.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import ssl
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from loadkit.stack.ports import free_port
from loadkit.stack.postgres import Postgres
from loadkit.wallet import schema
from loadkit.wallet.config import DEFAULT_PASSWORD

SECRET = "test-token-secret"
ADMIN_TOKEN = "test-admin-token"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
#: the test "SMS" outbox's token (the instances started here have the outbox on)
OUTBOX_TOKEN = "test-outbox-token"
OUTBOX = {"Authorization": f"Bearer {OUTBOX_TOKEN}"}
SEED_USERS = 400
SEED_MERCHANTS = 5
SEED_BALANCE = 1_000_000

_db_names = itertools.count()


@dataclass
class WalletProcess:
    """One wallet instance started with the real command line."""

    url: str
    dsn: str
    proc: subprocess.Popen[bytes]
    log_path: Path
    port: int

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout: float = 10.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return self.proc.returncode


def spawn_wallet(
    dsn: str,
    log_dir: Path,
    *args: str,
    name: str = "wallet-test",
    port: int | None = None,
    env: dict[str, str] | None = None,
    verify: ssl.SSLContext | bool = True,
) -> WalletProcess:
    """Start ``python -m loadkit.wallet serve`` and wait for /healthz (over HTTPS, checked with
    ``verify``, when ``args`` name a certificate)."""
    port = port or free_port()
    log_path = log_dir / f"{name}-{port}.log"
    env = {
        **os.environ,
        "LOADKIT_WALLET_SECRET": SECRET,
        "LOADKIT_WALLET_ADMIN_TOKEN": ADMIN_TOKEN,
        "LOADKIT_WALLET_OTP_OUTBOX_TOKEN": OUTBOX_TOKEN,
        **(env or {}),
    }
    argv = [sys.executable, "-m", "loadkit.wallet", "serve", "--port", str(port)]
    argv += ["--dsn", dsn, "--name", name, *args]
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env)
    scheme = "https" if "--tls-cert" in args else "http"
    wallet = WalletProcess(f"{scheme}://127.0.0.1:{port}", dsn, proc, log_path, port)
    deadline = time.monotonic() + 20
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"wallet exited with {proc.returncode}:\n{wallet.log()}")
            try:
                if httpx.get(f"{wallet.url}/healthz", timeout=1, verify=verify).status_code == 200:
                    return wallet
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"wallet not healthy after 20s:\n{wallet.log()}")
            time.sleep(0.05)
    except BaseException:
        wallet.stop()
        raise


def make_wallet_db(pg: Postgres, users: int = SEED_USERS) -> str:
    """A new database, migrated and seeded; its DSN."""
    dsn = pg.create_database(f"wallet_{os.getpid()}_{next(_db_names)}", drop_existing=True)
    schema.migrate(dsn)
    schema.seed(dsn, users, SEED_MERCHANTS, SEED_BALANCE)
    return dsn


def sql(pg: Postgres, dsn: str, query: str) -> str:
    """Run ``query`` on the database of ``dsn`` through psql; unaligned output."""
    return pg.psql(query, database=dsn.rsplit("/", 1)[1]).strip()


@dataclass
class User:
    """A seeded user, logged in."""

    index: int
    name: str
    account_id: int
    token: str
    headers: dict[str, str] = field(default_factory=dict)

    def with_key(self, key: str | None = None) -> dict[str, str]:
        return {**self.headers, "Idempotency-Key": key or uuid.uuid4().hex}


class UserPool:
    """Hands out seeded users no other test has used (per wallet database)."""

    def __init__(self, url: str, limit: int = SEED_USERS) -> None:
        self.url = url
        self._next = itertools.count(1)
        self.limit = limit

    def take(self, client: httpx.Client | None = None) -> User:
        index = next(self._next)
        assert index <= self.limit, "out of seeded users: raise SEED_USERS"
        return login(self.url, index, client)


def login(url: str, index: int, client: httpx.Client | None = None) -> User:
    name = schema.user_name(index)
    body = {"username": name, "password": DEFAULT_PASSWORD}
    r = (client or httpx).post(f"{url}/v1/login", json=body, timeout=10)
    assert r.status_code == 200, r.text
    data = r.json()
    return User(
        index, name, data["account_id"], data["token"], {"Authorization": f"Bearer {data['token']}"}
    )


@pytest.fixture(scope="session")
def wallet_logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Wallet logs, kept after the session (pytest keeps its last few base temp dirs)."""
    return tmp_path_factory.mktemp("wallet-logs")


@pytest.fixture(scope="session")
def wallet_dsn(pg: Postgres) -> str:
    return make_wallet_db(pg)


@pytest.fixture(scope="session")
def wallet(wallet_dsn: str, wallet_logs: Path) -> Iterator[WalletProcess]:
    """The shared wallet instance (default settings)."""
    w = spawn_wallet(wallet_dsn, wallet_logs, name="wallet-shared")
    yield w
    w.stop()


@pytest.fixture(scope="session")
def user_pool(wallet: WalletProcess) -> UserPool:
    return UserPool(wallet.url)


@pytest.fixture
def client(wallet: WalletProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=wallet.url, timeout=10) as c:
        yield c


@pytest.fixture
def users(user_pool: UserPool, client: httpx.Client) -> Callable[[], User]:
    """``users()`` -> a fresh seeded user with SEED_BALANCE, logged in."""
    return lambda: user_pool.take(client)


@pytest.fixture
def merchant_id(wallet: WalletProcess, client: httpx.Client, users: Callable[[], User]) -> int:
    me = users()
    r = client.get(f"/v1/directory/{schema.merchant_name(1)}", headers=me.headers)
    assert r.status_code == 200, r.text
    return int(r.json()["account_id"])


@pytest.fixture
def admin_reset(client: httpx.Client) -> Iterator[None]:
    """Put the shared wallet's admin state back after the test."""
    yield
    for path, body in (
        ("/admin/maintenance", {"enabled": False}),
        ("/admin/policy", {"policy": "normal"}),
        (
            "/admin/limits",
            {"max_inflight": 256, "rate_limit": None, "per_user_rate": None},
        ),
    ):
        r = client.post(path, json=body, headers=ADMIN)
        assert r.status_code == 200, r.text


@pytest.fixture
def start_wallet(
    wallet_logs: Path,
) -> Iterator[Callable[..., WalletProcess]]:
    """``start_wallet(dsn, *serve_args)`` -> a dedicated instance, stopped after the test."""
    started: list[WalletProcess] = []

    def start(
        dsn: str, *args: str, name: str = "wallet-dedicated", env: dict[str, str] | None = None
    ) -> WalletProcess:
        w = spawn_wallet(dsn, wallet_logs, *args, name=name, env=env)
        started.append(w)
        return w

    yield start
    for w in started:
        w.stop()


def problem(r: httpx.Response) -> dict[str, Any]:
    """The problem+json body of an error answer (asserting its media type)."""
    assert r.headers["content-type"] == "application/problem+json", r.text
    body: dict[str, Any] = r.json()
    assert body["status"] == r.status_code
    assert body["type"].startswith("urn:loadkit:wallet:problem:")
    assert body["title"] and body["detail"]
    return body


def assert_busy(r: httpx.Response, status: int, cause: str) -> dict[str, Any]:
    """A WALLET_BUSY answer with ``cause`` and a Retry-After header."""
    assert r.status_code == status, r.text
    body = problem(r)
    assert body["code"] == "WALLET_BUSY"
    assert body["cause"] == cause
    assert int(r.headers["retry-after"]) >= 0
    return body


def balance(client: httpx.Client, user: User) -> int:
    r = client.get("/v1/balance", headers=user.headers)
    assert r.status_code == 200, r.text
    return int(r.json()["balance"])


def otp_code(client: httpx.Client, challenge: str) -> str:
    """The code the test "SMS" outbox holds for ``challenge``."""
    r = client.get(f"/admin/otp-outbox/{challenge}", headers=OUTBOX)
    assert r.status_code == 200, r.text
    code: str = r.json()["code"]
    return code


def invariants(client: httpx.Client) -> dict[str, Any]:
    r = client.get("/admin/invariants", headers=ADMIN)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


@contextlib.contextmanager
def row_locked(pg: Postgres, dsn: str, account_id: int, seconds: float = 30) -> Iterator[None]:
    """Hold ``FOR UPDATE`` on one account row from another session (psql), so that money
    movements of that account wait inside the database; released on exit."""
    app = f"lock-holder-{uuid.uuid4().hex[:8]}"
    database = dsn.rsplit("/", 1)[1]
    script = (
        f"BEGIN; SELECT 1 FROM accounts WHERE id = {account_id} FOR UPDATE; "
        f"SELECT pg_sleep({seconds}); COMMIT;"
    )
    argv = [str(pg.bin_dir / "psql"), "-X", "-q", "-h", "127.0.0.1", "-p", str(pg.port)]
    argv += ["-U", "loadkit", "-d", database, "-c", script]
    holder = subprocess.Popen(
        argv,
        env={**pg.client_env(), "PGAPPNAME": app},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    activity = f"FROM pg_stat_activity WHERE application_name = '{app}'"
    try:
        deadline = time.monotonic() + 10
        while sql(pg, dsn, f"SELECT count(*) {activity} AND wait_event = 'PgSleep'") != "1":
            assert time.monotonic() < deadline, "the lock holder did not start"
            time.sleep(0.02)
        yield
    finally:
        sql(pg, dsn, f"SELECT pg_terminate_backend(pid) {activity}")
        holder.wait(10)
