"""The admin API (``/admin/...``) and the probes (``/healthz``, ``/readyz``, ``/metrics``).

Admin state is per instance and in memory; the stack broadcasts each call to every instance.
These routes keep working in maintenance mode and are not subject to admission control, so an
operator can always reach an overloaded instance::

    POST /admin/policy {"policy": "peak"}        Authorization: Bearer <admin token>
    POST /admin/maintenance {"enabled": true, "retry_after": 120}
    GET  /admin/invariants   -> {"ok": true, "total_balance": 0, ...}
    GET  /admin/anomalies    -> {"events": {"otp_failed": 3, ...}, "refusals": {...},
                                 "recent": [...]}
    GET  /admin/otp-outbox/{challenge}   -> {"code": "493021", ...}   (the test "SMS" channel)

The OTP outbox is off unless the instance was given an outbox token (the stack gives one for load
tests); it answers to that token or the admin token, never to a user's.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from loadkit.wallet.anomaly import RECENT
from loadkit.wallet.config import BIGINT_MAX
from loadkit.wallet.contract import PolicyName
from loadkit.wallet.metrics import CONTENT_TYPE_LATEST
from loadkit.wallet.openapi import served_bytes
from loadkit.wallet.problems import JSONResponse, Problem
from loadkit.wallet.risk import CHALLENGE_RE
from loadkit.wallet.runtime import WalletRuntime
from loadkit.wallet.schema import MAX_SEED_ACCOUNTS
from loadkit.wallet.validation import query_int, read_json

_MAX_RETRY_AFTER = 86_400
_LIMIT_FIELDS = {"max_inflight", "rate_limit", "rate_burst", "per_user_rate", "per_user_burst"}


def _int_field(
    body: dict[str, Any], field: str, low: int, high: int, default: int | None = None
) -> int:
    value = body.get(field, default)
    if type(value) is not int or not low <= value <= high:
        raise Problem(
            422,
            "INVALID_FIELD",
            f"{field} must be an integer from {low} to {high}",
            extra={"field": field},
        )
    return value


def _query_float(request: Request, name: str, default: float) -> float:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not 0 <= value < 1e11:
        raise Problem(422, "INVALID_FIELD", f"{name} must be a Unix time in seconds")
    return value


def _rate_field(body: dict[str, Any], field: str) -> float | None:
    value = body.get(field)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 1e6:
        raise Problem(
            422,
            "INVALID_FIELD",
            f"{field} must be a number above 0 (per second), or null for no limit",
            extra={"field": field},
        )
    return float(value)


class AdminApi:
    """Handlers of ``/admin`` routes and of the probes, bound to one runtime."""

    def __init__(self, runtime: WalletRuntime) -> None:
        self.rt = runtime
        self.max_body = runtime.config.max_body

    async def maintenance(self, request: Request) -> Response:
        body = await read_json(request, self.max_body)
        enabled = body.get("enabled")
        if not isinstance(enabled, bool):
            raise Problem(422, "INVALID_FIELD", "enabled must be true or false")
        retry_after = _int_field(body, "retry_after", 0, _MAX_RETRY_AFTER, default=60)
        message = body.get("message")
        if message is not None and (not isinstance(message, str) or len(message) > 500):
            raise Problem(422, "INVALID_FIELD", "message must be a string of at most 500 chars")
        self.rt.set_maintenance(enabled, retry_after, message)
        return JSONResponse({"instance": self.rt.config.name, **self.rt.maintenance.to_dict()})

    async def policy(self, request: Request) -> Response:
        body = await read_json(request, self.max_body)
        try:
            name = PolicyName(str(body.get("policy")))
        except ValueError:
            accepted = ", ".join(p.value for p in PolicyName)
            raise Problem(422, "INVALID_POLICY", f"policy must be one of: {accepted}") from None
        self.rt.set_policy(name)
        return JSONResponse(
            {"instance": self.rt.config.name, **self.rt.state()["risk"], "policy": name.value}
        )

    async def limits(self, request: Request) -> Response:
        """Change any of max_inflight, rate_limit (+rate_burst), per_user_rate (+per_user_burst).
        A null rate_limit turns the instance limit off; a null per_user_rate restores the
        policy's."""
        body = await read_json(request, self.max_body)
        unknown = sorted(set(body) - _LIMIT_FIELDS)
        if unknown:
            raise Problem(
                422,
                "INVALID_FIELD",
                f"unknown field(s) {', '.join(unknown)}; "
                f"accepted: {', '.join(sorted(_LIMIT_FIELDS))}",
            )
        # validate everything before changing anything
        max_inflight = (
            _int_field(body, "max_inflight", 1, 1_000_000) if "max_inflight" in body else None
        )
        rate, burst = _rate_field(body, "rate_limit"), _rate_field(body, "rate_burst")
        user_rate = _rate_field(body, "per_user_rate")
        user_burst = (
            _int_field(body, "per_user_burst", 1, 1_000_000)
            if body.get("per_user_burst") is not None
            else None
        )
        admission = self.rt.admission
        if max_inflight is not None:
            admission.max_inflight = max_inflight
        if "rate_limit" in body:
            admission.set_rate(rate, burst)
        elif "rate_burst" in body and admission.rate_limit is not None:
            admission.set_rate(admission.rate_limit, burst)
        if "per_user_rate" in body:
            self.rt.set_user_limit(user_rate, user_burst)
        elif user_burst is not None:
            self.rt.set_user_limit(self.rt.limits()["per_user_rate"], user_burst)
        return JSONResponse({"instance": self.rt.config.name, **self.rt.limits()})

    async def state(self, request: Request) -> Response:
        return JSONResponse(self.rt.state())

    async def seed(self, request: Request) -> Response:
        body = await read_json(request, self.max_body)
        users = _int_field(body, "users", 0, MAX_SEED_ACCOUNTS, default=0)
        merchants = _int_field(body, "merchants", 0, MAX_SEED_ACCOUNTS, default=0)
        balance = _int_field(body, "balance", 0, self.rt.config.max_amount, default=0)
        counts = await self.rt.ledger.seed(users, merchants, balance, self.rt.config.seed_password)
        return JSONResponse(counts)

    async def invariants(self, request: Request) -> Response:
        report = await self.rt.ledger.invariants()
        report["ok"] = (
            report["total_balance"] == 0
            and report["negative_balances"] == 0
            and report["accounts_mismatched"] == 0
            and report["unbalanced_transactions"] == 0
            and report["transactions_without_entries"] == 0
            and report["entries_mismatched"] == 0
            and report["orphan_entries"] == 0
            and report["duplicate_applications"] == 0
        )
        return JSONResponse(report)

    async def movements(self, request: Request) -> Response:
        """Applied money movements by idempotency key (for the integrity check)::

        GET /admin/movements?since=1795000000.0&after=0&limit=10000
        -> {"items": [{"key": "lk-…", "account_id": 17, "count": 1, "first_id": 9,
                       "last_id": 9, "first_at": 1795000001.2}], "next_after": 9 | null}
        """
        since = _query_float(request, "since", 0.0)
        after = query_int(request, "after", 0, 0, 2**63 - 1)
        limit = query_int(request, "limit", 10_000, 1, 100_000)
        assert after is not None and limit is not None
        items = await self.rt.ledger.movements(since, after, limit)
        next_after = items[-1]["first_id"] if len(items) == limit else None
        return JSONResponse({"items": items, "next_after": next_after})

    async def account(self, request: Request) -> Response:
        account_id: int = request.path_params["account_id"]
        # the route's int convertor takes any number of digits; ids are bigint
        found = await self.rt.ledger.account(account_id) if account_id <= BIGINT_MAX else None
        if found is None:
            raise Problem(404, "ACCOUNT_NOT_FOUND", f"account {account_id} does not exist")
        return JSONResponse(found)

    async def anomalies(self, request: Request) -> Response:
        """Security events and refusals counted since the instance started, and recent events."""
        limit = query_int(request, "limit", 50, 0, RECENT)
        assert limit is not None
        return JSONResponse({"instance": self.rt.config.name, **self.rt.anomalies.snapshot(limit)})

    async def otp_outbox(self, request: Request) -> Response:
        """The test "SMS" channel: the code sent for an open challenge (404 when the outbox is
        off, or the challenge is unknown, expired or locked)."""
        if self.rt.config.otp_outbox_token is None:
            raise Problem(
                404,
                "OTP_OUTBOX_OFF",
                "this instance has no OTP outbox (codes go to the user's phone only)",
            )
        challenge: str = request.path_params["challenge"]
        otp = self.rt.risk.otp
        found = (
            await self.rt.ledger.otp_outbox(challenge, otp.max_failures)
            if CHALLENGE_RE.fullmatch(challenge)
            else None
        )
        if found is None:
            raise Problem(404, "OTP_CHALLENGE_NOT_FOUND", "no open OTP challenge with this id")
        account_id, expires_in = found
        return JSONResponse(
            {
                "challenge": challenge,
                "account_id": account_id,
                "code": otp.code(challenge),
                "expires_in": expires_in,
            }
        )

    # -- probes ---------------------------------------------------------------------------------

    async def healthz(self, request: Request) -> Response:
        return JSONResponse({"status": "ok", "instance": self.rt.config.name})

    async def readyz(self, request: Request) -> Response:
        name = self.rt.config.name
        if self.rt.maintenance.enabled:
            return JSONResponse(
                {"status": "not_ready", "reason": "maintenance", "instance": name},
                status_code=503,
                headers={"Retry-After": str(self.rt.maintenance.retry_after)},
            )
        try:
            await self.rt.ledger.ping()
        except Exception as exc:
            reason = "db_timeout" if isinstance(exc, TimeoutError) else "db_unavailable"
            return JSONResponse(
                {
                    "status": "not_ready",
                    "reason": reason,
                    "detail": f"{type(exc).__name__}: {exc}"[:300],
                    "instance": name,
                },
                status_code=503,
                headers={"Retry-After": "1"},
            )
        return JSONResponse({"status": "ready", "instance": name})

    async def openapi(self, request: Request) -> Response:
        return Response(served_bytes(), media_type="application/json")

    async def metrics(self, request: Request) -> Response:
        pool = self.rt.ledger.pool_stats()
        gauge = self.rt.metrics.pool_connections
        gauge.labels("open").set(pool["size"])
        gauge.labels("idle").set(pool["idle"])
        gauge.labels("max").set(pool["max"])
        return Response(self.rt.metrics.render(), media_type=CONTENT_TYPE_LATEST)
