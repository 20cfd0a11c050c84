"""PostgreSQL faults against the real server behind the real wallet: busy while injected
(with the wallet's own cause), then recovery."""

from __future__ import annotations

import time

import httpx
import pytest

from loadkit.chaos import make_fault
from loadkit.chaos.faults.base import ChaosEnv
from loadkit.chaos.faults.postgres import run_sql
from loadkit.errors import EnvironmentProblem
from tests.chaos.conftest import login


def _wait_ok(fetch: object, within: float = 15.0) -> float:
    """Seconds until ``fetch()`` answers 200."""
    assert callable(fetch)
    started = time.monotonic()
    while time.monotonic() - started < within:
        try:
            if fetch().status_code == 200:
                return time.monotonic() - started
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"not serving again within {within}s")


@pytest.mark.parametrize("mode", ["immediate", "kill"])
def test_crash_makes_the_wallet_busy_then_it_recovers(env: ChaosEnv, mode: str) -> None:
    user = login(env.stack, 11)
    assert user.get("/v1/balance").status_code == 200
    pg = env.postgres()
    with make_fault(env, "postgres.crash", mode=mode):
        assert not pg.alive()
        r = user.get("/v1/balance")
        assert r.status_code == 503, r.text
        assert r.json()["cause"] == "db_unavailable"
    assert env.postgres().ready()
    assert _wait_ok(lambda: user.get("/v1/balance")) < 5.0


def test_killed_backend_forces_recovery_and_the_wallet_comes_back(env: ChaosEnv) -> None:
    user = login(env.stack, 12)
    assert user.get("/v1/balance").status_code == 200
    postmaster = env.postgres().process
    assert postmaster is not None
    with make_fault(env, "postgres.kill-backend") as fault:
        assert fault.state["killed_pid"] != postmaster.pid
    pg = env.postgres()
    assert pg.process is not None and pg.process.pid == postmaster.pid, "postmaster kept running"
    assert pg.ready()
    assert _wait_ok(lambda: user.get("/v1/balance")) < 5.0


def test_connection_exhaustion_refuses_new_connections(env: ChaosEnv) -> None:
    user = login(env.stack, 13)
    with make_fault(env, "postgres.connections") as fault:
        assert fault.state["held"] > 100
        with pytest.raises(
            EnvironmentProblem, match=r"too many clients|remaining connection slots"
        ):
            run_sql(env.dsn, "SELECT 1")
        assert user.get("/v1/balance").status_code == 200, "pooled connections still work"
    assert run_sql(env.dsn, "SELECT 1")[0][0] == 1
    assert user.get("/v1/balance").status_code == 200


def test_locked_hot_account_times_out_payments_to_it(env: ChaosEnv) -> None:
    user = login(env.stack, 14)
    merchant = user.get("/v1/directory/merchant00001").json()["account_id"]
    with make_fault(env, "postgres.locks", accounts=["merchant00001"]) as fault:
        assert fault.state["locked"] == ["merchant00001"]
        r = user.post("/v1/payments", {"merchant_account": merchant, "amount": 100})
        assert r.status_code == 503, r.text
        assert r.json()["cause"] in ("db_timeout", "deadline")
    r = user.post("/v1/payments", {"merchant_account": merchant, "amount": 100})
    assert r.status_code == 201, r.text


def test_slow_queries_add_their_delay_to_money_movements(env: ChaosEnv) -> None:
    user, other = login(env.stack, 15), login(env.stack, 16)

    def transfer_s() -> float:
        started = time.perf_counter()
        r = user.post("/v1/transfers", {"to_account": other.account_id, "amount": 1})
        assert r.status_code == 201, r.text
        return time.perf_counter() - started

    base = min(transfer_s() for _ in range(3))
    with make_fault(env, "postgres.slow-queries", delay="600ms") as fault:
        slowed = min(transfer_s() for _ in range(2))
        assert user.get("/v1/balance").status_code == 200, "reads are not slowed"
        trigger = fault.state["trigger"]
    assert 0.55 <= slowed - base <= 0.9, (base, slowed)
    assert not run_sql(env.dsn, "SELECT 1 FROM pg_trigger WHERE tgname = $1", trigger)
    assert transfer_s() < base + 0.2
