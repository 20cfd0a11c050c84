"""Anomaly monitoring: what an attacker or a bad client does shows up as counters and recent events.

Four kinds of security event are counted and kept: wrong one-time passwords (and challenges
locked by them), failed logins (and accounts locked by them), and users going faster than the
risk policy allows (the per-user rate limit, "velocity"). Every refusal the public API gives is
counted by its code as well. Counters are exported in ``/metrics``
(``wallet_security_events_total{event}``, ``wallet_refusals_total{code}``); the admin API shows
them with the most recent events (``GET /admin/anomalies``)::

    monitor = AnomalyMonitor(metrics.registry)
    monitor.record(SecurityEvent.LOGIN_FAILED, account_id=7, detail="wrong password")
    monitor.refusal("INSUFFICIENT_FUNDS")
    monitor.snapshot()   # {"events": {...}, "refusals": {...}, "recent": [...]}
"""

from __future__ import annotations

import time
from collections import deque
from enum import StrEnum
from typing import Any

from prometheus_client import CollectorRegistry, Counter

#: events kept for the recent view (per instance)
RECENT = 200
#: a user over the rate limit is one event per this many seconds, not one per refused request
_VELOCITY_QUIET = 10.0


class SecurityEvent(StrEnum):
    """What the monitor counts."""

    OTP_FAILED = "otp_failed"  # a wrong code for an open challenge
    OTP_LOCKED = "otp_locked"  # a challenge's last allowed failure: the movement is refused
    LOGIN_FAILED = "login_failed"  # unknown user or wrong password
    LOGIN_LOCKED = "login_locked"  # an account locked after too many failures, or tried while so
    VELOCITY = "velocity"  # a user over the per-user request rate of the policy


class AnomalyMonitor:
    """Counters and a bounded list of recent security events of one instance."""

    def __init__(self, registry: CollectorRegistry, *, recent: int = RECENT) -> None:
        self.events = Counter(
            "wallet_security_events",
            "Security events: failed and locked OTPs and logins, users over the policy's rate",
            ["event"],
            registry=registry,
        )
        for event in SecurityEvent:
            self.events.labels(event.value)
        self.refusals = Counter(
            "wallet_refusals",
            "Refusals (4xx other than 429) of the public API, by problem code",
            ["code"],
            registry=registry,
        )
        self._counts: dict[str, int] = {event.value: 0 for event in SecurityEvent}
        self._refusals: dict[str, int] = {}
        self._refusal_children: dict[str, Counter] = {}
        self._recent: deque[dict[str, Any]] = deque(maxlen=recent)
        self._last_velocity: dict[int, float] = {}

    def record(
        self, event: SecurityEvent, *, account_id: int | None = None, detail: str = ""
    ) -> None:
        """Count ``event``; keep it in the recent view (velocity at most every 10 s per user)."""
        self.events.labels(event.value).inc()
        self._counts[event.value] += 1
        now = time.time()
        if event is SecurityEvent.VELOCITY and account_id is not None:
            last = self._last_velocity.get(account_id)
            if last is not None and now - last < _VELOCITY_QUIET:
                return
            if len(self._last_velocity) > 10_000:
                self._last_velocity.clear()
            self._last_velocity[account_id] = now
        self._recent.append(
            {"at": round(now, 3), "event": event.value, "account_id": account_id, "detail": detail}
        )

    def refusal(self, code: str) -> None:
        """Count one refusal with problem code ``code``."""
        child = self._refusal_children.get(code)
        if child is None:
            if len(self._refusal_children) >= 200:  # codes are ours, but bound the labels
                code = "OTHER"
            child = self._refusal_children.setdefault(code, self.refusals.labels(code))
        child.inc()
        self._refusals[code] = self._refusals.get(code, 0) + 1

    def snapshot(self, limit: int = RECENT) -> dict[str, Any]:
        """Counts since the instance started and the ``limit`` most recent events, newest first."""
        recent = list(self._recent)[-limit:] if limit else []
        return {
            "events": dict(self._counts),
            "refusals": dict(sorted(self._refusals.items())),
            "recent": recent[::-1],
        }
