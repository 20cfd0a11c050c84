"""Wallet faults through the real admin API: maintenance, the peak policy, limits; each restores
exactly the state it found."""

from __future__ import annotations

import httpx

from loadkit.chaos import make_fault
from loadkit.chaos.faults.base import ChaosEnv
from tests.chaos.conftest import login


def test_maintenance_is_busy_with_cause_maintenance_then_restored(env: ChaosEnv) -> None:
    user = login(env.stack, 21)
    with make_fault(env, "wallet.maintenance", retry_after="12s", message="back soon"):
        for w in env.stack.manifest.wallets:  # tokens are stateless: any instance takes them
            r = httpx.get(f"{w.client_url}/v1/balance", headers=user.auth, timeout=5)
            assert r.status_code == 503
            assert r.json()["cause"] == "maintenance"
            assert r.headers["Retry-After"] == "12"
    assert user.get("/v1/balance").status_code == 200
    for state in env.stack.admin.state():
        assert state["maintenance"]["enabled"] is False
        assert state["maintenance"]["retry_after"] == 60, "the previous Retry-After, restored"


def test_peak_policy_asks_for_otp_on_smaller_amounts_then_normal_again(env: ChaosEnv) -> None:
    user, other = login(env.stack, 23), login(env.stack, 24)
    body = {"to_account": other.account_id, "amount": 300_000}  # 3,000 CNY
    with make_fault(env, "wallet.policy", "wallet-1", policy="peak"):
        states = {s["instance"]: s["policy"] for s in env.stack.admin.state()}
        assert states == {"wallet-1": "peak", "wallet-2": "normal"}
        r = user.post("/v1/transfers", body)
        assert r.status_code == 403 and r.json()["code"] == "OTP_REQUIRED", r.text
    assert {s["policy"] for s in env.stack.admin.state()} == {"normal"}
    assert user.post("/v1/transfers", body).status_code == 201


def test_limits_throttle_then_the_previous_limits_come_back(env: ChaosEnv) -> None:
    user = login(env.stack, 25)
    before = [s["limits"] for s in env.stack.admin.state()]
    with make_fault(env, "wallet.limits", "wallet-1", rate_limit="2/s", rate_burst=2):
        answers = [user.get("/v1/balance") for _ in range(8)]
        throttled = [r for r in answers if r.status_code == 429]
        assert throttled and throttled[0].json()["cause"] == "rate_limited"
    assert [s["limits"] for s in env.stack.admin.state()] == before
    assert user.get("/v1/balance").status_code == 200
