"""The live state of one wallet instance and the guard every request passes through.

:class:`WalletRuntime` holds what the admin API changes at run time (policy, limits,
maintenance) next to the ledger, the token signer and the metrics. Its :meth:`~WalletRuntime.guard`
wraps each endpoint: maintenance and admission gates first, then the handler under the request's
deadline, then every way a handler can fail turned into exactly one answer — a refusal, a
``WALLET_BUSY`` with its cause, or (never expected) a counted 500::

    runtime = WalletRuntime(config)
    endpoint = runtime.guard("transfers", api.transfer, movement="transfer")
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from loadkit.wallet.admission import Admission, UserRateLimiter, db_busy
from loadkit.wallet.anomaly import AnomalyMonitor, SecurityEvent
from loadkit.wallet.auth import PasswordVerifier, TokenSigner, bearer, check_admin
from loadkit.wallet.config import RiskPolicy, WalletConfig
from loadkit.wallet.contract import MAINTENANCE_HEADER, BusyCause, PolicyName, UnsafeMode
from loadkit.wallet.ledger import Ledger
from loadkit.wallet.metrics import WalletMetrics
from loadkit.wallet.problems import Busy, Problem
from loadkit.wallet.risk import Risk
from loadkit.wallet.unsafe import WriteBehind

log = logging.getLogger("loadkit.wallet")

Handler = Callable[[Request], Awaitable[Response]]

#: busy causes after which a money movement may or may not have been applied
_UNKNOWN_OUTCOME = frozenset(
    {BusyCause.DB_UNAVAILABLE, BusyCause.DB_TIMEOUT, BusyCause.DB_ERROR, BusyCause.DEADLINE}
)


@dataclass
class Maintenance:
    """Maintenance mode as the admin API set it."""

    enabled: bool = False
    retry_after: int = 60
    message: str = "the wallet is under maintenance"
    since: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "enabled": self.enabled,
            "retry_after": self.retry_after,
            "message": self.message,
            "since": self.since,
        }


class WalletRuntime:
    """Everything one instance knows while it runs."""

    def __init__(self, config: WalletConfig) -> None:
        self.config = config
        self.metrics = WalletMetrics()
        self.ledger = Ledger(config, self.metrics)
        self.admission = Admission(config.max_inflight, config.rate_limit)
        self.risk = Risk(
            config.policies,
            config.policy,
            secret=config.secret.encode(),
            otp_ttl=config.otp_ttl,
            otp_max_failures=config.otp_max_failures,
        )
        self.anomalies = AnomalyMonitor(self.metrics.registry)
        self.user_limits = UserRateLimiter(
            self.risk.policy.per_user_rate, self.risk.policy.per_user_burst
        )
        #: per-user rate and burst set through the admin API, overriding the policy's
        self.user_limit_override: tuple[float, int] | None = None
        self.signer = TokenSigner(config.secret.encode(), ttl=config.token_ttl)
        self.passwords = PasswordVerifier()
        self.maintenance = Maintenance()
        self.started = time.time()
        self.metrics.track_inflight(lambda: float(self.admission.inflight))
        self._publish_policy()
        #: the ``ack-before-commit`` unsafe mode's background writer (None when safe)
        self.write_behind = (
            WriteBehind(self.ledger, config.write_behind_interval)
            if config.unsafe is UnsafeMode.ACK_BEFORE_COMMIT
            else None
        )

    # -- state changes (admin API) --------------------------------------------------------------

    def set_policy(self, name: PolicyName) -> RiskPolicy:
        policy = self.risk.switch(name)
        if self.user_limit_override is None:
            self.user_limits.configure(policy.per_user_rate, policy.per_user_burst)
        self._publish_policy()
        log.warning("risk policy is now %s", name.value)
        return policy

    def set_user_limit(self, rate: float | None, burst: int | None) -> None:
        """Override the policy's per-user limit (``rate=None``: back to the policy's)."""
        policy = self.risk.policy
        if rate is None:
            self.user_limit_override = None
            self.user_limits.configure(policy.per_user_rate, policy.per_user_burst)
            return
        burst = burst if burst is not None else max(1, int(rate * 2))
        self.user_limit_override = (rate, burst)
        self.user_limits.configure(rate, burst)

    def set_maintenance(self, enabled: bool, retry_after: int, message: str | None) -> None:
        self.maintenance = Maintenance(
            enabled=enabled,
            retry_after=retry_after,
            message=message or Maintenance.message,
            since=time.time() if enabled else None,
        )
        self.metrics.maintenance.set(1 if enabled else 0)
        log.warning("maintenance %s", "on" if enabled else "off")

    def limits(self) -> dict[str, Any]:
        rate, burst = self.user_limit_override or (
            self.risk.policy.per_user_rate,
            self.risk.policy.per_user_burst,
        )
        return {
            "max_inflight": self.admission.max_inflight,
            "rate_limit": self.admission.rate_limit,
            "rate_burst": self.admission.rate_burst,
            "per_user_rate": rate,
            "per_user_burst": burst,
            "per_user_overridden": self.user_limit_override is not None,
            "pool_size": self.config.pool_size,
            "pool_timeout": self.config.pool_timeout,
            "query_timeout": self.config.query_timeout,
            "request_deadline": self.config.request_deadline,
        }

    def _publish_policy(self) -> None:
        for name in PolicyName:
            self.metrics.policy.labels(name.value).set(1 if self.risk.policy.name == name else 0)

    # -- per request ----------------------------------------------------------------------------

    def authenticate(self, request: Request) -> int:
        """The caller's account id from its bearer token, after its per-user rate limit."""
        account_id = self.signer.verify(bearer(request.headers.get("authorization")))
        try:
            self.user_limits.check(account_id)
        except Busy:
            self.anomalies.record(
                SecurityEvent.VELOCITY,
                account_id=account_id,
                detail=f"over {self.user_limits.rate:g} requests/s",
            )
            raise
        return account_id

    def maintenance_busy(self) -> Busy:
        m = self.maintenance
        return Busy(
            BusyCause.MAINTENANCE,
            m.message,
            retry_after=m.retry_after,
            extra={"maintenance": True},
            headers={MAINTENANCE_HEADER: "true"},
        )

    def guard(
        self,
        route: str,
        handler: Handler,
        *,
        public: bool = True,
        admin: bool = False,
        tokens: tuple[str, ...] = (),
        movement: str | None = None,
    ) -> Handler:
        """Wrap ``handler`` as the endpoint of ``route`` (its metrics label).

        ``public``: maintenance, admission and the request deadline apply; refusals are counted
        by code. ``admin``: the admin token (or one of ``tokens``) is required and the (longer)
        admin deadline applies. ``movement``: the kind of money movement the route makes; its
        database failure answers say the outcome is unknown (retry with the same
        Idempotency-Key).
        """
        metrics = self.metrics
        admission = self.admission
        config = self.config
        deadline = config.request_deadline if public else config.admin_deadline
        accepted = (config.admin_token, *tokens)

        async def endpoint(request: Request) -> Response:
            start = time.perf_counter()
            if public:
                if self.maintenance.enabled:
                    response = self._busy(self.maintenance_busy())
                else:
                    try:
                        admission.enter()
                    except Busy as busy:
                        response = self._busy(busy)
                    else:
                        try:
                            response = await self._run(
                                handler, request, deadline, movement, count_refusals=True
                            )
                        finally:
                            admission.leave()
            elif admin:
                try:
                    check_admin(request.headers.get("authorization"), *accepted)
                except Problem as problem:
                    response = problem.response()
                else:
                    response = await self._run(handler, request, deadline, movement)
            else:
                response = await self._run(handler, request, deadline, movement)
            metrics.observe(
                route, request.method, response.status_code, time.perf_counter() - start
            )
            return response

        endpoint.__name__ = endpoint.__qualname__ = f"{route}_endpoint"
        return endpoint

    async def _run(
        self,
        handler: Handler,
        request: Request,
        deadline: float,
        movement: str | None,
        *,
        count_refusals: bool = False,
    ) -> Response:
        timeout = asyncio.timeout(deadline)
        try:
            async with timeout:
                return await handler(request)
        except Busy as busy:
            if movement and busy.cause in _UNKNOWN_OUTCOME:
                self._unknown_outcome(busy, movement)
            return self._busy(busy)
        except Problem as problem:
            if count_refusals:
                self.anomalies.refusal(problem.code)
            return problem.response()
        except Exception as exc:
            answer = (
                Busy(
                    BusyCause.DEADLINE,
                    f"the request did not finish within its {deadline:g}s deadline",
                )
                if timeout.expired()
                else db_busy(exc)
            )
            if answer is None:
                self.metrics.unhandled.inc()
                log.exception("unexpected error in %s %s", request.method, request.url.path)
                return Problem(
                    500, "INTERNAL_ERROR", "an unexpected error occurred; it has been logged"
                ).response()
            if movement and answer.cause in _UNKNOWN_OUTCOME:
                self._unknown_outcome(answer, movement)
            return self._busy(answer)

    def _unknown_outcome(self, busy: Busy, kind: str) -> None:
        busy.extra["outcome"] = "unknown"
        busy.detail += "; the movement may or may not have been applied: retry with the same "
        busy.detail += "Idempotency-Key to find out"
        self.metrics.movements.labels(kind, "unknown").inc()

    def _busy(self, busy: Busy) -> Response:
        self.metrics.busy_answer(busy.cause.value)
        return busy.response()

    def state(self) -> dict[str, Any]:
        policy = self.risk.policy
        return {
            "instance": self.config.name,
            "pid": os.getpid(),
            "uptime": round(time.time() - self.started, 3),
            "policy": policy.name.value,
            "risk": {
                "otp_threshold": policy.otp_threshold,
                "max_amount": policy.max_amount,
                "per_user_rate": policy.per_user_rate,
                "per_user_burst": policy.per_user_burst,
            },
            "maintenance": self.maintenance.to_dict(),
            "limits": self.limits(),
            "inflight": self.admission.inflight,
            "pool": self.ledger.pool_stats(),
            "unsafe": self.config.unsafe.value if self.config.unsafe else None,
            "otp_outbox": self.config.otp_outbox_token is not None,
            "write_behind": None
            if self.write_behind is None
            else {
                "pending": self.write_behind.pending,
                "applied": self.write_behind.applied,
                "dropped": self.write_behind.dropped,
            },
        }
