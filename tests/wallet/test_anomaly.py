"""Anomaly monitoring: OTP and login failures, users over the policy's rate and refusals by code,
counted on the admin API and in /metrics, with the recent events."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry

from loadkit.wallet.anomaly import AnomalyMonitor, SecurityEvent
from tests.wallet.conftest import ADMIN, User, otp_code, problem


def _anomalies(client: httpx.Client, limit: int = 200) -> dict[str, Any]:
    r = client.get(f"/admin/anomalies?limit={limit}", headers=ADMIN)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def _metric(client: httpx.Client, name: str, label: str, value: str) -> float:
    text = client.get("/metrics").text
    found = re.search(rf'^{name}\{{{label}="{value}"\}} ([0-9.e+]+)$', text, re.M)
    return float(found[1]) if found else 0.0


def test_the_monitor_counts_and_keeps_recent_events() -> None:
    monitor = AnomalyMonitor(CollectorRegistry(), recent=3)
    for i in range(5):
        monitor.record(SecurityEvent.LOGIN_FAILED, account_id=i)
    for _ in range(3):  # a user hammering: counted each time, listed once per 10 s
        monitor.record(SecurityEvent.VELOCITY, account_id=9)
    monitor.refusal("INSUFFICIENT_FUNDS")
    snap = monitor.snapshot()
    assert snap["events"]["login_failed"] == 5 and snap["events"]["velocity"] == 3
    assert snap["refusals"] == {"INSUFFICIENT_FUNDS": 1}
    assert [(e["event"], e["account_id"]) for e in snap["recent"]] == [
        ("velocity", 9),
        ("login_failed", 4),
        ("login_failed", 3),
    ]
    assert monitor.snapshot(limit=1)["recent"][0]["event"] == "velocity"


@pytest.mark.usefixtures("admin_reset")
def test_security_events_and_refusals_show_on_the_admin_api_and_in_metrics(
    client: httpx.Client, users: Callable[[], User]
) -> None:
    alice, bob = users(), users()
    before = _anomalies(client)
    metric_before = _metric(client, "wallet_security_events_total", "event", "otp_failed")

    # a wrong OTP, a failed login, a refusal, a user over the policy's rate
    key = uuid.uuid4().hex
    body = {"to_account": bob.account_id, "amount": 600_000}
    challenge = problem(client.post("/v1/transfers", json=body, headers=alice.with_key(key)))[
        "otp_challenge"
    ]
    wrong = f"{(int(otp_code(client, challenge)) + 1) % 1_000_000:06d}"
    headers = {**alice.with_key(key), "X-OTP": wrong}
    assert client.post("/v1/transfers", json=body, headers=headers).status_code == 403
    assert (
        client.post("/v1/login", json={"username": bob.name, "password": "no"}).status_code == 401
    )
    r = client.post("/v1/topup", json={"amount": 0}, headers=alice.with_key())
    assert r.status_code == 422
    limits = {"per_user_rate": 1, "per_user_burst": 1}
    assert client.post("/admin/limits", json=limits, headers=ADMIN).status_code == 200
    statuses = [client.get("/v1/balance", headers=bob.headers).status_code for _ in range(3)]
    assert 429 in statuses

    after = _anomalies(client)
    delta = {k: after["events"][k] - before["events"].get(k, 0) for k in after["events"]}
    assert delta["otp_failed"] == 1 and delta["login_failed"] == 1
    assert delta["velocity"] >= 1 and delta["otp_locked"] == delta["login_locked"] == 0
    refusals = after["refusals"]
    assert refusals["OTP_REQUIRED"] >= 1 and refusals["OTP_INVALID"] >= 1
    assert refusals["INVALID_AMOUNT"] >= 1 and refusals["INVALID_CREDENTIALS"] >= 1
    recent = {(e["event"], e["account_id"]) for e in after["recent"][:10]}
    assert {
        ("otp_failed", alice.account_id),
        ("login_failed", bob.account_id),
        ("velocity", bob.account_id),
    } <= recent
    assert _metric(client, "wallet_security_events_total", "event", "otp_failed") == (
        metric_before + 1
    )
    assert _metric(client, "wallet_refusals_total", "code", "INVALID_AMOUNT") >= 1
    assert client.get("/admin/anomalies?limit=500", headers=ADMIN).status_code == 422
