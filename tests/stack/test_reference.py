"""The reference stack end to end: real PostgreSQL, Toxiproxy and wallet processes."""

from __future__ import annotations

import concurrent.futures
import statistics
import time
import uuid
from pathlib import Path

import httpx
import pytest

from loadkit.stack.reference import ReferenceStack, StackOptions


def _login(base: str, stack: ReferenceStack, n: int) -> tuple[dict[str, str], int]:
    r = httpx.post(
        f"{base}/v1/login", json={"username": f"user{n:05d}", "password": stack.password}
    )
    assert r.status_code == 200, r.text
    body = r.json()
    return {"Authorization": f"Bearer {body['token']}"}, int(body["account_id"])


def _transfer(
    base: str, auth: dict[str, str], to: int, amount: int = 1, timeout: float = 10.0
) -> httpx.Response:
    return httpx.post(
        f"{base}/v1/transfers",
        json={"to_account": to, "amount": amount},
        headers={**auth, "Idempotency-Key": uuid.uuid4().hex},
        timeout=timeout,
    )


def test_status_reports_every_component_ready(stack: ReferenceStack) -> None:
    status = stack.status()
    assert status["healthy"]
    assert stack.backend.name == "process" and "backend" not in status
    names = [c["name"] for c in status["components"]]
    assert names == ["postgres", "toxiproxy", "wallet-1", "wallet-2"]
    assert all(c["ready"] and c["pid"] for c in status["components"])
    links = {p["link"] for p in status["proxies"]}
    assert links == {
        "wallet-1 -> postgres",
        "wallet-2 -> postgres",
        "client -> wallet-1",
        "client -> wallet-2",
    }
    assert set(stack.toxiproxy.proxies()) == {p["name"] for p in status["proxies"]}


def test_transfer_through_each_client_proxy(stack: ReferenceStack) -> None:
    for w in stack.manifest.wallets:
        auth, _ = _login(w.client_url, stack, 1)
        _, bob = _login(w.client_url, stack, 2)
        r = _transfer(w.client_url, auth, bob, amount=100)
        assert r.status_code == 201, r.text
    assert stack.admin.invariants()["ok"]


def test_latency_toxic_on_the_database_link_slows_transfers_by_its_amount(
    stack: ReferenceStack,
) -> None:
    w = stack.manifest.wallets[0]
    senders = [_login(w.url, stack, n)[0] for n in range(30, 40)]  # stay under per-user limits
    _, bob = _login(w.url, stack, 4)

    def median_ms(http: httpx.Client, n: int = 20) -> float:
        samples = []
        for i in range(n):
            t0 = time.perf_counter()
            r = http.post(
                "/v1/transfers",
                json={"to_account": bob, "amount": 1},
                headers={**senders[i % len(senders)], "Idempotency-Key": uuid.uuid4().hex},
            )
            samples.append((time.perf_counter() - t0) * 1000)
            assert r.status_code == 201, r.text
        return statistics.median(samples)

    with httpx.Client(base_url=w.url, timeout=10) as http:
        base = median_ms(http)
        with stack.toxiproxy.toxic(w.db_proxy, "latency", attributes={"latency": 200}):
            slowed = median_ms(http)
        restored = median_ms(http)
    # one database round trip per transfer: +200 ms (a little more for scheduling, never 2x)
    assert 190 <= slowed - base <= 260, (base, slowed)
    assert abs(restored - base) < 20, (base, restored)


def test_kill_and_restart_a_wallet_instance(stack: ReferenceStack) -> None:
    handle = stack.wallet("wallet-2")
    old_pid = handle.info.process.pid if handle.info.process else 0
    assert handle.kill()
    assert not handle.alive()
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{handle.info.client_url}/healthz", timeout=2)
    handle.start()
    assert handle.alive() and handle.ready()
    assert handle.info.process and handle.info.process.pid != old_pid
    again = ReferenceStack.attach(stack.stack_dir).wallet("wallet-2")
    assert again.info.process and again.info.process.pid == handle.info.process.pid, (
        "manifest updated"
    )


def test_paused_wallet_hangs_then_serves_again(stack: ReferenceStack) -> None:
    handle = stack.wallet("wallet-1")
    assert handle.pause()
    try:
        with pytest.raises(httpx.TimeoutException):
            httpx.get(f"{handle.info.client_url}/healthz", timeout=0.5)
    finally:
        assert handle.resume()
    assert httpx.get(f"{handle.info.client_url}/healthz", timeout=5).status_code == 200


def test_maintenance_is_broadcast_to_every_instance(stack: ReferenceStack) -> None:
    # a token minted by one instance works on every instance: tokens are stateless
    auth, _ = _login(stack.manifest.wallets[0].url, stack, 5)
    stack.admin.maintenance(True, retry_after=7)
    try:
        for w in stack.manifest.wallets:
            r = httpx.get(f"{w.client_url}/v1/balance", headers=auth)
            assert r.status_code == 503
            assert r.json()["cause"] == "maintenance"
            assert r.headers["Retry-After"] == "7"
    finally:
        stack.admin.maintenance(False)
    for w in stack.manifest.wallets:
        assert httpx.get(f"{w.client_url}/v1/balance", headers=auth).status_code == 200


def test_database_crash_under_load_busy_then_recovery_nothing_lost(stack: ReferenceStack) -> None:
    """PostgreSQL is SIGKILLed while transfers run through both instances and their proxies."""
    pg = stack.postgres
    assert pg is not None
    clients = []
    for i, w in enumerate(stack.manifest.wallets):
        auth, _ = _login(w.client_url, stack, 10 + i)
        _, to = _login(w.client_url, stack, 20 + i)
        clients.append((w.client_url, auth, to))
    before = stack.admin.invariants()
    acknowledged: list[str] = []
    answers: list[tuple[float, float, int, str]] = []  # (sent, took, status, cause)
    stop_at = time.monotonic() + 9

    def worker(base: str, auth: dict[str, str], to: int) -> None:
        with httpx.Client(timeout=10) as http:
            while time.monotonic() < stop_at:
                key = uuid.uuid4().hex
                t0 = time.monotonic()
                try:
                    r = http.post(
                        f"{base}/v1/transfers",
                        json={"to_account": to, "amount": 1},
                        headers={**auth, "Idempotency-Key": key},
                    )
                except httpx.TransportError:
                    answers.append((t0, time.monotonic() - t0, 0, "transport"))
                    time.sleep(0.02)
                    continue
                took = time.monotonic() - t0
                cause = r.json().get("cause", "") if r.status_code in (429, 503) else ""
                answers.append((t0, took, r.status_code, cause))
                if r.status_code == 201:
                    acknowledged.append(r.json()["transaction_id"])
                else:
                    time.sleep(0.05)  # a client backs off a little on busy

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(worker, *clients[i % 2]) for i in range(4)]
        time.sleep(2)
        crash_at = time.monotonic()
        pg.crash()
        time.sleep(2)
        pg.start()
        back_at = time.monotonic()
        for f in futures:
            f.result()

    during = [a for a in answers if crash_at + 0.2 < a[0] < back_at - 0.2]
    # busy, and busy because of the database (a client retrying hard may also meet its rate limit)
    assert during and all(a[2] in (429, 503) for a in during), {a[2:] for a in during}
    causes = {a[3] for a in during}
    assert "db_unavailable" in causes, causes
    assert causes <= {
        "db_unavailable",
        "db_timeout",
        "db_pool_timeout",
        "deadline",
        "user_rate_limited",
    }
    assert max(a[1] for a in answers) < 4.0, "no request hangs past the wallet's deadline"
    ok_after = [a for a in answers if a[0] > back_at and a[2] == 201]
    assert ok_after, "the wallet serves again after PostgreSQL is back"
    first_ok = min(a[0] for a in ok_after)
    assert first_ok - back_at < 3.0, "recovered within seconds of the database coming back"

    recorded = ReferenceStack.attach(stack.stack_dir).postgres
    assert recorded is not None and recorded.process is not None and pg.process is not None
    assert recorded.process.pid == pg.process.pid, "the restarted postmaster is in the manifest"

    after = stack.admin.invariants()
    assert after["ok"], after
    assert after["transactions"] >= before["transactions"] + len(acknowledged)
    missing = _missing_in_ledger(stack, [int(t) for t in acknowledged])
    assert missing == [], f"acknowledged transfers missing from the ledger: {missing[:10]}"


def _missing_in_ledger(stack: ReferenceStack, ids: list[int]) -> list[int]:
    pg = stack.postgres
    assert pg is not None
    if not ids:
        return []
    found = pg.psql(
        f"SELECT id FROM transactions WHERE id IN ({','.join(map(str, ids))})",
        stack.manifest.database,
    )
    have = {int(x) for x in found.split()}
    return [i for i in ids if i not in have]


def test_down_stops_a_wallet_another_process_restarted(scratch_root: Path) -> None:
    """A run's chaos controller restarts wallets through a stack of its own (attached from the
    manifest); the object that started the stack sees the new process (the manifest on disk is
    the truth), and ``down`` on it stops the new process."""
    started = ReferenceStack.up(
        scratch_root / "restarted-stack", StackOptions(instances=1, users=10, merchants=2)
    )
    try:
        elsewhere = ReferenceStack.attach(started.stack_dir).wallet("wallet-1")
        elsewhere.kill()
        elsewhere.start()
        new = elsewhere.process
        assert new is not None and new.alive()
        seen = started.wallet("wallet-1").info.process
        assert seen is not None and seen.pid == new.pid
        assert started.status()["healthy"]
    finally:
        stopped = started.down()
    assert "wallet-1" in stopped
    assert not new.alive(), f"wallet-1 (pid {new.pid}) left running after down()"


def test_wallets_connect_as_a_least_privilege_role_and_secrets_stay_off_argv(
    stack: ReferenceStack,
) -> None:
    """loadkit's own connections are the superuser's; the wallets' are ``wallet_app``'s, whose
    password reaches them through their environment, never a command line."""
    import os
    import stat

    import psutil

    m = stack.manifest
    pg = stack.postgres
    assert pg is not None and pg.password and m.wallet_db_user == "wallet_app"
    assert m.wallet_db_password and m.otp_outbox_token
    assert stat.S_IMODE(os.stat(m.path).st_mode) == 0o600
    sessions = pg.psql(
        "SELECT DISTINCT a.usename, r.rolsuper FROM pg_stat_activity a "
        "JOIN pg_roles r ON r.rolname = a.usename WHERE a.application_name LIKE 'wallet-%'",
        database=m.database,
    ).split()
    assert sessions == ["wallet_app|f"]
    secrets = (pg.password, m.wallet_db_password, m.admin_token, m.token_secret)
    for w in m.wallets:
        assert w.process is not None
        argv = " ".join(psutil.Process(w.process.pid).cmdline())
        assert "wallet_app@" in argv and not any(s in argv for s in secrets)
    # the OTP outbox is on for load tests, and answers to its own token only
    auth, _ = _login(m.wallets[0].client_url, stack, 3)
    _, bob = _login(m.wallets[0].client_url, stack, 4)
    r = _transfer(m.wallets[0].client_url, auth, bob, amount=600_000)
    challenge = r.json()["otp_challenge"]
    outbox = f"{m.wallets[1].url}/admin/otp-outbox/{challenge}"
    assert httpx.get(outbox, headers=auth).status_code == 403
    found = httpx.get(outbox, headers={"Authorization": f"Bearer {m.otp_outbox_token}"})
    assert found.status_code == 200 and len(found.json()["code"]) == 6
