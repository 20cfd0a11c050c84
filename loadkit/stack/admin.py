"""The reference wallet's admin API, broadcast to every instance (admin state is per instance),
and its readiness probe. Over HTTPS (``stack up --tls``) both verify the wallets' certificates
against the stack's CA (``verify``: an ``ssl.SSLContext``, :attr:`WalletInfo.verify`)::

    admin = WalletAdmin(["http://127.0.0.1:8001", "http://127.0.0.1:8002"], token)
    admin.maintenance(True, retry_after=30)
    assert admin.invariants()["ok"]
    wallet_ready(stack.manifest.wallets[0])     # GET /readyz answered 200
"""

from __future__ import annotations

import ssl
from typing import Any

import httpx

from loadkit.errors import EnvironmentProblem
from loadkit.stack.manifest import WalletInfo
from loadkit.wallet.contract import Endpoint


def wallet_ready(info: WalletInfo, timeout: float = 1.0) -> bool:
    """Whether the instance answers ``/readyz`` with 200 (its database reachable, not in
    maintenance), directly rather than through its client-side proxy."""
    url = f"{info.url}{Endpoint.READYZ}"
    try:
        return httpx.get(url, timeout=timeout, verify=info.verify).status_code == 200
    except httpx.HTTPError:
        return False


class WalletAdmin:
    """Calls every instance's admin API (or the first, for database-wide reads)."""

    def __init__(
        self,
        urls: list[str],
        token: str,
        timeout: float = 5.0,
        client: httpx.Client | None = None,
        verify: ssl.SSLContext | bool = True,
    ) -> None:
        self.urls = urls
        self._headers = {"Authorization": f"Bearer {token}"}
        self._timeout = timeout
        self._verify = verify
        #: a long-lived client saves the ~60 ms httpx spends building one per call (the chaos
        #: controller changes policies on the run clock)
        self._client = client

    def _call(self, method: str, path: str, body: Any = None, *, one: bool = False) -> list[Any]:
        results = []
        for url in self.urls[:1] if one else self.urls:
            try:
                if self._client is not None:  # built with its own verify
                    r = self._client.request(
                        method,
                        f"{url}{path}",
                        json=body,
                        headers=self._headers,
                        timeout=self._timeout,
                    )
                else:
                    r = httpx.request(
                        method,
                        f"{url}{path}",
                        json=body,
                        headers=self._headers,
                        timeout=self._timeout,
                        verify=self._verify,
                    )
            except httpx.HTTPError as exc:
                raise EnvironmentProblem(f"{url}: admin API did not answer: {exc}") from exc
            if r.status_code >= 400:
                raise EnvironmentProblem(f"{url}: admin {path} answered {r.status_code}: {r.text}")
            results.append(r.json())
        return results

    def maintenance(self, enabled: bool, retry_after: int = 30, message: str | None = None) -> None:
        """Maintenance mode on or off: 503 with a maintenance marker and ``Retry-After``."""
        body: dict[str, Any] = {"enabled": enabled, "retry_after": retry_after}
        if message:
            body["message"] = message
        self._call("POST", Endpoint.ADMIN_MAINTENANCE, body)

    def policy(self, name: str) -> None:
        """Risk policy ``normal`` or ``peak``."""
        self._call("POST", Endpoint.ADMIN_POLICY, {"policy": name})

    def limits(self, **limits: Any) -> None:
        """``max_inflight``, ``rate_limit`` (+``rate_burst``), ``per_user_rate`` (+burst)."""
        self._call("POST", Endpoint.ADMIN_LIMITS, limits)

    def state(self) -> list[Any]:
        return self._call("GET", Endpoint.ADMIN_STATE)

    def anomalies(self, limit: int = 0) -> list[Any]:
        """Each instance's security counters and refusals since it started (and its ``limit``
        most recent events): ``GET /admin/anomalies``."""
        return self._call("GET", f"{Endpoint.ADMIN_ANOMALIES}?limit={limit}")

    def invariants(self) -> dict[str, Any]:
        """Ledger invariants (one database, so one instance answers)."""
        result: dict[str, Any] = self._call("GET", Endpoint.ADMIN_INVARIANTS, one=True)[0]
        return result
