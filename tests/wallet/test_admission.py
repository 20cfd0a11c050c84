"""Admission control on a real instance: busy answers are fast, typed and carry Retry-After."""

from __future__ import annotations

import concurrent.futures
import re
import time
from collections.abc import Callable

import httpx
import pytest

from loadkit.stack.postgres import Postgres
from loadkit.wallet.admission import Admission, TokenBucket, UserRateLimiter
from loadkit.wallet.problems import Busy
from tests.wallet.conftest import (
    ADMIN,
    SEED_BALANCE,
    User,
    WalletProcess,
    assert_busy,
    balance,
    login,
    make_wallet_db,
    problem,
    row_locked,
)

# -- units ------------------------------------------------------------------------------------


def test_token_bucket_allows_the_burst_then_the_rate() -> None:
    bucket = TokenBucket(rate=10, burst=3)
    now = bucket.stamp
    assert [bucket.take(now) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.take(now) == pytest.approx(0.1)
    assert bucket.take(now + 0.1) == 0.0


def test_user_rate_limiter_is_per_account() -> None:
    limiter = UserRateLimiter(rate=1, burst=2)
    limiter.check(1)
    limiter.check(1)
    with pytest.raises(Busy) as caught:
        limiter.check(1)
    assert caught.value.status == 429 and caught.value.retry_after >= 1
    limiter.check(2)  # another account has its own bucket


def test_admission_counts_inflight_and_refuses_beyond_the_limit() -> None:
    admission = Admission(max_inflight=1)
    admission.enter()
    with pytest.raises(Busy) as caught:
        admission.enter()
    assert caught.value.cause.value == "overloaded" and caught.value.status == 503
    admission.leave()
    admission.enter()


# -- the shared instance ----------------------------------------------------------------------


def _metric(text: str, name: str, **labels: str) -> float:
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    pattern = re.escape(name) + (r"\{" + re.escape(want) + r"\}" if want else "") + r" (\S+)"
    found = re.search(pattern, text)
    return float(found.group(1)) if found else 0.0


@pytest.mark.usefixtures("admin_reset")
def test_inflight_limit_answers_503_overloaded_at_once(
    client: httpx.Client,
    wallet: WalletProcess,
    wallet_dsn: str,
    pg: Postgres,
    users: Callable[[], User],
) -> None:
    blocked, other = users(), users()
    r = client.post("/admin/limits", json={"max_inflight": 2}, headers=ADMIN)
    assert r.json()["max_inflight"] == 2
    with (
        concurrent.futures.ThreadPoolExecutor(2) as pool,
        row_locked(pg, wallet_dsn, blocked.account_id),
    ):
        stuck = [
            pool.submit(
                httpx.post,
                f"{wallet.url}/v1/transfers",
                json={"to_account": other.account_id, "amount": 1},
                headers=blocked.with_key(),
                timeout=10,
            )
            for _ in range(2)
        ]
        deadline = time.monotonic() + 5
        while client.get("/admin/state", headers=ADMIN).json()["inflight"] < 2:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        t0 = time.monotonic()
        r = client.get("/v1/balance", headers=other.headers)
        assert time.monotonic() - t0 < 0.5
        body = assert_busy(r, 503, "overloaded")
        assert r.headers["retry-after"] == "1" and body["retry_after"] == 1
        assert client.get("/healthz").status_code == 200  # probes are not admitted work
    # the lock is gone: the two that waited for it went through
    for future in stuck:
        answer = future.result()
        assert answer.status_code == 201, answer.text
    assert client.get("/v1/balance", headers=other.headers).status_code == 200


@pytest.mark.usefixtures("admin_reset")
def test_instance_rate_limit_answers_429_and_counts_the_cause(
    client: httpx.Client, users: Callable[[], User]
) -> None:
    me = users()
    before = _metric(
        client.get("/metrics").text, "wallet_busy_responses_total", cause="rate_limited"
    )
    r = client.post("/admin/limits", json={"rate_limit": 5}, headers=ADMIN)
    assert r.json()["rate_limit"] == 5
    answers = [client.get("/v1/balance", headers=me.headers) for _ in range(8)]
    limited = [a for a in answers if a.status_code == 429]
    assert limited and answers[0].status_code == 200
    for a in limited:
        assert_busy(a, 429, "rate_limited")
        assert int(a.headers["retry-after"]) >= 1
    text = client.get("/metrics").text
    after = _metric(text, "wallet_busy_responses_total", cause="rate_limited")
    assert after - before == len(limited)
    assert _metric(text, "wallet_http_requests_total", route="balance", method="GET", status="429")

    client.post("/admin/limits", json={"rate_limit": None}, headers=ADMIN)
    assert all(client.get("/v1/balance", headers=me.headers).status_code == 200 for _ in range(8))


@pytest.mark.usefixtures("admin_reset")
def test_per_user_rate_limit_answers_429_for_that_user_only(
    client: httpx.Client, users: Callable[[], User]
) -> None:
    busy_user, calm_user = users(), users()
    r = client.post("/admin/limits", json={"per_user_rate": 1, "per_user_burst": 2}, headers=ADMIN)
    assert r.json()["per_user_rate"] == 1 and r.json()["per_user_overridden"]
    statuses = [client.get("/v1/balance", headers=busy_user.headers).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    r = client.post(
        "/v1/transfers",
        json={"to_account": calm_user.account_id, "amount": 1},
        headers=busy_user.with_key(),
    )
    assert_busy(r, 429, "user_rate_limited")
    assert client.get("/v1/balance", headers=calm_user.headers).status_code == 200
    assert balance(client, calm_user) == SEED_BALANCE  # the refused transfer moved nothing


@pytest.mark.usefixtures("admin_reset")
def test_maintenance_mode_answers_503_but_keeps_probes_and_admin(
    client: httpx.Client, users: Callable[[], User]
) -> None:
    me = users()
    r = client.post(
        "/admin/maintenance",
        json={"enabled": True, "retry_after": 120, "message": "upgrading the ledger"},
        headers=ADMIN,
    )
    assert r.status_code == 200 and r.json()["enabled"] is True
    for r in (
        client.get("/v1/balance", headers=me.headers),
        client.post("/v1/login", json={"username": me.name, "password": "wallet-pass"}),
        client.post("/v1/topup", json={"amount": 1}, headers=me.with_key()),
    ):
        body = assert_busy(r, 503, "maintenance")
        assert body["maintenance"] is True and body["detail"] == "upgrading the ledger"
        assert r.headers["x-wallet-maintenance"] == "true"
        assert r.headers["retry-after"] == "120"
    assert client.get("/healthz").status_code == 200
    ready = client.get("/readyz")
    assert ready.status_code == 503 and ready.json()["reason"] == "maintenance"
    assert client.get("/metrics").status_code == 200
    assert client.get("/admin/state", headers=ADMIN).json()["maintenance"]["enabled"] is True
    assert "wallet_maintenance 1.0" in client.get("/metrics").text

    client.post("/admin/maintenance", json={"enabled": False}, headers=ADMIN)
    assert client.get("/v1/balance", headers=me.headers).status_code == 200
    assert client.get("/readyz").status_code == 200
    assert balance(client, me) == SEED_BALANCE


def test_probes_and_metrics(client: httpx.Client, users: Callable[[], User]) -> None:
    me = users()
    assert client.get("/healthz").json()["status"] == "ok"
    assert client.get("/readyz").json()["status"] == "ready"
    client.get("/v1/balance", headers=me.headers)
    r = client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    text = r.text
    assert _metric(text, "wallet_http_requests_total", route="balance", method="GET", status="200")
    for name in (
        "wallet_http_inflight_requests",
        "wallet_http_request_duration_seconds_bucket",
        "wallet_db_pool_wait_seconds_count",
        'wallet_db_pool_connections{state="open"}',
        'wallet_busy_responses_total{cause="db_unavailable"}',
        'wallet_risk_policy{policy="normal"} 1.0',
    ):
        assert name in text, name


# -- dedicated instances: database waits ------------------------------------------------------


def test_database_waits_become_busy_answers_and_unknown_outcomes_resolve(
    pg: Postgres, start_wallet: Callable[..., WalletProcess]
) -> None:
    dsn = make_wallet_db(pg, users=6)
    w = start_wallet(
        dsn, "--pool-size", "2", "--pool-timeout", "0.3", "--query-timeout", "1", name="w-waits"
    )
    with httpx.Client(base_url=w.url, timeout=10) as client:
        alice, bob = login(w.url, 1, client), login(w.url, 2, client)
        key = "unknown-outcome-1"
        with row_locked(pg, dsn, alice.account_id), concurrent.futures.ThreadPoolExecutor(2) as ex:
            # two transfers wait on the lock and hold both pool connections ...
            stuck = [
                ex.submit(
                    httpx.post,
                    f"{w.url}/v1/transfers",
                    json={"to_account": bob.account_id, "amount": 100},
                    headers=alice.with_key(key),
                    timeout=10,
                )
                for _ in range(2)
            ]
            time.sleep(0.2)
            # ... so a third request cannot get a connection
            t0 = time.monotonic()
            r = client.get("/v1/balance", headers=bob.headers)
            assert time.monotonic() - t0 < 0.8
            assert_busy(r, 503, "db_pool_timeout")
            # the waiting transfers give up at the query timeout, outcome unknown
            for future in stuck:
                answer = future.result()
                body = assert_busy(answer, 503, "db_timeout")
                assert body["outcome"] == "unknown"
                assert answer.elapsed.total_seconds() < 1.8
        # retrying with the same key settles it: applied exactly once
        r = client.post(
            "/v1/transfers",
            json={"to_account": bob.account_id, "amount": 100},
            headers=alice.with_key(key),
        )
        assert r.status_code == 201, r.text
        assert balance(client, alice) == SEED_BALANCE - 100
        assert balance(client, bob) == SEED_BALANCE + 100
        assert client.get("/admin/invariants", headers=ADMIN).json()["ok"]
        assert "db_pool_timeout" in client.get("/metrics").text


def test_request_deadline_bounds_every_answer(
    pg: Postgres, start_wallet: Callable[..., WalletProcess]
) -> None:
    dsn = make_wallet_db(pg, users=3)
    w = start_wallet(dsn, "--request-deadline", "0.8", "--query-timeout", "5", name="w-deadline")
    with httpx.Client(base_url=w.url, timeout=10) as client:
        alice, bob = login(w.url, 1, client), login(w.url, 2, client)
        with row_locked(pg, dsn, alice.account_id):
            r = client.post(
                "/v1/transfers",
                json={"to_account": bob.account_id, "amount": 1},
                headers=alice.with_key(),
            )
        assert r.elapsed.total_seconds() < 1.3
        body = assert_busy(r, 503, "deadline")
        assert body["outcome"] == "unknown"
        assert problem(client.get("/v1/nope"))["code"] == "NOT_FOUND"
