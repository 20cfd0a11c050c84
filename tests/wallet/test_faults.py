"""Database faults against a real wallet: PostgreSQL crashed, hung (SIGSTOP), or not there.

The wallet must answer busy fast, never hang past its deadline, never report an unknown outcome
as success, and recover by itself once the database is back.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import httpx
import psutil
import pytest

from loadkit.stack.ports import free_port
from loadkit.stack.postgres import Postgres
from tests.wallet.conftest import (
    ADMIN,
    SEED_BALANCE,
    User,
    WalletProcess,
    assert_busy,
    login,
    make_wallet_db,
    sql,
)

DEADLINE = 2.0
SLACK = 0.5  # HTTP, scheduling and a loaded CI machine


@dataclass
class Attempt:
    key: str
    sender: int
    receiver: int
    amount: int
    started: float
    elapsed: float
    status: int
    body: dict[str, object]


class TransferLoad:
    """Client threads sending transfers with unique keys until stopped, recording each answer."""

    def __init__(self, url: str, accounts: list[User], threads: int = 6) -> None:
        self.url = url
        self.accounts = accounts
        self.attempts: list[Attempt] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, args=(i,)) for i in range(threads)]

    def _run(self, n: int) -> None:
        count = itertools.count()
        with httpx.Client(base_url=self.url, timeout=DEADLINE + 5) as client:
            while not self._stop.is_set():
                i = next(count)
                sender = self.accounts[(n + i) % len(self.accounts)]
                receiver = self.accounts[(n + i + 1) % len(self.accounts)]
                key = f"load-{n}-{i}-{uuid.uuid4().hex[:8]}"
                started = time.monotonic()
                try:
                    r = client.post(
                        "/v1/transfers",
                        json={"to_account": receiver.account_id, "amount": 1 + i % 7},
                        headers=sender.with_key(key),
                    )
                    status, body = r.status_code, r.json()
                except httpx.HTTPError as exc:
                    status, body = 0, {"error": repr(exc)}
                attempt = Attempt(
                    key,
                    sender.account_id,
                    receiver.account_id,
                    1 + i % 7,
                    started,
                    time.monotonic() - started,
                    status,
                    body,
                )
                with self._lock:
                    self.attempts.append(attempt)
                if status != 201:
                    time.sleep(0.02)  # a client backing off a little, not a tight loop

    def __enter__(self) -> TransferLoad:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(30)

    def since(self, t: float) -> list[Attempt]:
        with self._lock:
            return [a for a in self.attempts if a.started >= t]

    def wait_for(self, predicate: Callable[[Attempt], bool], after: float, timeout: float) -> float:
        """Seconds from ``after`` until an attempt started after it satisfies ``predicate``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for a in self.since(after):
                if predicate(a):
                    return a.started + a.elapsed - after
            time.sleep(0.05)
        raise AssertionError(f"nothing matched within {timeout}s after {after}")


@pytest.fixture
def fault_wallet(
    pg: Postgres, start_wallet: Callable[..., WalletProcess]
) -> tuple[WalletProcess, str, list[User]]:
    dsn = make_wallet_db(pg, users=8)
    w = start_wallet(
        dsn,
        "--request-deadline",
        str(DEADLINE),
        "--query-timeout",
        "1",
        "--pool-timeout",
        "0.3",
        "--pool-size",
        "6",
        name="w-faults",
    )
    with httpx.Client() as client:
        accounts = [login(w.url, i, client) for i in range(1, 9)]
        # the client threads retry hard; per-user throttling is tested elsewhere
        r = client.post(f"{w.url}/admin/limits", json={"per_user_rate": 10_000}, headers=ADMIN)
        assert r.status_code == 200
    return w, dsn, accounts


def _check_ledger(pg: Postgres, dsn: str, load: TransferLoad, w: WalletProcess) -> None:
    """Every acknowledged transfer is in the ledger exactly once; the ledger is consistent."""
    acked = [a for a in load.attempts if a.status == 201]
    assert acked
    ids = ",".join(str(a.body["transaction_id"]) for a in acked)
    rows = sql(pg, dsn, f"SELECT id, idempotency_key, amount FROM transactions WHERE id IN ({ids})")
    found = {int(i): (k, int(amt)) for i, k, amt in (line.split("|") for line in rows.splitlines())}
    for a in acked:
        assert found[int(str(a.body["transaction_id"]))] == (a.key, a.amount)
    dupes = sql(
        pg,
        dsn,
        "SELECT count(*) FROM (SELECT 1 FROM transactions GROUP BY account_id, idempotency_key "
        "HAVING count(*) > 1) d",
    )
    assert dupes == "0"
    report = httpx.get(f"{w.url}/admin/invariants", headers=ADMIN, timeout=10).json()
    assert report["ok"], report
    total = sql(pg, dsn, "SELECT sum(balance) FROM accounts WHERE kind = 'user'")
    assert int(total) == 8 * SEED_BALANCE


def test_postgres_crash_while_transfers_run(
    pg: Postgres, fault_wallet: tuple[WalletProcess, str, list[User]]
) -> None:
    w, dsn, accounts = fault_wallet
    with TransferLoad(w.url, accounts) as load:
        load.wait_for(lambda a: a.status == 201, after=time.monotonic(), timeout=10)
        time.sleep(0.5)
        crashed = time.monotonic()
        try:
            pg.crash()
            load.wait_for(
                lambda a: a.status == 503 and a.body.get("cause") == "db_unavailable",
                after=crashed,
                timeout=5,
            )
            time.sleep(0.5)  # a while of answering busy with the database down
        finally:
            pg.start()
        back = time.monotonic()
        recovery = load.wait_for(lambda a: a.status == 201, after=back, timeout=10)
        time.sleep(0.3)

    assert recovery < 3.0, f"took {recovery:.1f}s to serve transfers again"
    down = [a for a in load.attempts if crashed <= a.started < back]
    assert down and all(a.status in (201, 503) for a in down), {a.status for a in down}
    causes = {a.body.get("cause") for a in down if a.status == 503}
    assert "db_unavailable" in causes
    for a in load.attempts:
        assert a.status != 0, a.body  # never a dropped connection
        assert a.elapsed < DEADLINE + SLACK, a
        if a.status == 503:
            assert a.body["code"] == "WALLET_BUSY"
    _check_ledger(pg, dsn, load, w)
    with httpx.Client(base_url=w.url) as client:
        assert client.get("/readyz").status_code == 200
        # unknown outcomes settle by retrying with the same key: at most one application each
        unknown = [a for a in load.attempts if a.body.get("outcome") == "unknown"][:5]
        for a in unknown:
            sender = next(u for u in accounts if u.account_id == a.sender)
            r = client.post(
                "/v1/transfers",
                json={"to_account": a.receiver, "amount": a.amount},
                headers=sender.with_key(a.key),
            )
            assert r.status_code == 201, r.text
    assert (
        sql(
            pg,
            dsn,
            "SELECT count(*) FROM (SELECT 1 FROM transactions GROUP BY account_id, "
            "idempotency_key HAVING count(*) > 1) d",
        )
        == "0"
    )


@contextlib.contextmanager
def _frozen(pg: Postgres) -> Iterator[None]:
    """SIGSTOP the postmaster and every backend (a hung database host); SIGCONT on exit."""
    assert pg.process is not None
    procs = [psutil.Process(pg.process.pid), *pg.process.children()]
    stopped = []
    try:
        for p in procs:
            with contextlib.suppress(psutil.NoSuchProcess):
                p.suspend()
                stopped.append(p)
        yield
    finally:
        for p in reversed(stopped):
            with contextlib.suppress(psutil.NoSuchProcess):
                p.resume()


def test_postgres_hung_by_sigstop_answers_within_the_deadline(
    pg: Postgres, fault_wallet: tuple[WalletProcess, str, list[User]]
) -> None:
    w, dsn, accounts = fault_wallet
    with TransferLoad(w.url, accounts, threads=4) as load:
        load.wait_for(lambda a: a.status == 201, after=time.monotonic(), timeout=10)
        frozen_at = time.monotonic()
        with _frozen(pg):
            with httpx.Client(base_url=w.url, timeout=10) as client:
                t0 = time.monotonic()
                r = client.get("/readyz")
                assert r.status_code == 503 and time.monotonic() - t0 < 2.0
                t0 = time.monotonic()
                r = client.post(
                    "/v1/login", json={"username": accounts[0].name, "password": "wallet-pass"}
                )
                assert time.monotonic() - t0 < DEADLINE + SLACK
                assert r.status_code == 503 and r.json()["code"] == "WALLET_BUSY"
            load.wait_for(lambda a: a.status == 503, after=frozen_at, timeout=5)
            time.sleep(DEADLINE + 0.5)  # every request that started while frozen has answered
        thawed = time.monotonic()
        recovery = load.wait_for(lambda a: a.status == 201, after=thawed, timeout=10)
        time.sleep(0.2)
    assert recovery < 3.0
    frozen = [a for a in load.attempts if frozen_at <= a.started < thawed]
    assert frozen and {a.status for a in frozen} <= {201, 503}
    assert {a.body.get("cause") for a in frozen if a.status == 503} <= {
        "db_timeout",
        "db_pool_timeout",
        "db_unavailable",
        "deadline",
    }
    for a in load.attempts:
        assert a.status != 0, a.body
        assert a.elapsed < DEADLINE + SLACK, a
    _check_ledger(pg, dsn, load, w)


def test_starts_without_postgres_and_reports_not_ready(
    start_wallet: Callable[..., WalletProcess],
) -> None:
    w = start_wallet(f"postgresql://loadkit@127.0.0.1:{free_port()}/wallet", name="w-nodb")
    with httpx.Client(base_url=w.url, timeout=10) as client:
        assert client.get("/healthz").status_code == 200
        r = client.get("/readyz")
        assert r.status_code == 503 and r.json()["reason"] == "db_unavailable"
        t0 = time.monotonic()
        r = client.post("/v1/login", json={"username": "user00001", "password": "wallet-pass"})
        assert time.monotonic() - t0 < 1.0
        assert_busy(r, 503, "db_unavailable")
        assert client.get("/admin/state", headers=ADMIN).status_code == 200


def test_an_unexpected_error_is_a_counted_500_problem(
    pg: Postgres, start_wallet: Callable[..., WalletProcess]
) -> None:
    """A broken deployment (the money function is missing) is no busy answer: it is a 500
    problem+json, logged and counted — and moves no money."""
    dsn = make_wallet_db(pg, users=2)
    w = start_wallet(dsn, name="w-broken")
    with httpx.Client(base_url=w.url, timeout=10) as client:
        alice, bob = login(w.url, 1, client), login(w.url, 2, client)
        sql(pg, dsn, "DROP FUNCTION wallet_move")
        r = client.post(
            "/v1/transfers",
            json={"to_account": bob.account_id, "amount": 1},
            headers=alice.with_key(),
        )
        assert r.status_code == 500 and r.headers["content-type"] == "application/problem+json"
        assert r.json()["code"] == "INTERNAL_ERROR"
        assert "wallet_unhandled_exceptions_total 1.0" in client.get("/metrics").text
        assert client.get("/v1/balance", headers=alice.headers).json()["balance"] == SEED_BALANCE
    assert "UndefinedFunctionError" in w.log()
