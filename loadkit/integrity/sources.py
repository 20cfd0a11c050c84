"""Where the integrity check reads the applied movements from: one class per kind of ledger.

- :class:`ReferenceLedger` — the reference wallet's database (transactions grouped by
  idempotency key, and ``wallet_invariants()`` for conservation and negative balances);
- :class:`SqlLedger` — the user's query against their own database, returning ``(key, count)``
  rows (or one ``key`` column, one row per application);
- :class:`HttpLedger` — the user's endpoint returning the applied ids or keys as JSON.

Each has ``name`` and ``fetch(since) -> LedgerView``; ``since`` is the run's start (Unix seconds),
for sources that can restrict themselves to one run (``$1`` in a query, ``?since=`` on a URL)::

    view = ReferenceLedger(stack).fetch(since=run_started_at)
    view.applied[:1], view.money_conserved       # [Applied('lk-…-0-1', 1)], True
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import ssl
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import httpx
import orjson

from loadkit.errors import ConfigError, EnvironmentProblem
from loadkit.integrity.core import Applied, Source
from loadkit.safety import Allowlist

if TYPE_CHECKING:
    from loadkit.profile.model import HttpIntegrityCheck, SqlIntegrityCheck
    from loadkit.stack.reference import ReferenceStack

#: how long a source waits for a database or service that is coming back after a fault
RECOVER_TIMEOUT_S = 30.0


@dataclass
class LedgerView:
    """What a ledger says was applied, and what it can tell about its balances."""

    applied: list[Applied]
    money_conserved: bool | None = None
    negative_balances: int | None = None
    facts: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)


class LedgerSource(Protocol):
    name: str

    def fetch(self, since: float) -> LedgerView: ...


def _retry(what: str, fn: Any, timeout: float) -> Any:
    """``fn()``, retried for up to ``timeout`` s while the component recovers from a fault."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return fn()
        except (ConfigError, EnvironmentProblem):
            raise
        except Exception as exc:
            if time.monotonic() >= deadline:
                raise EnvironmentProblem(f"{what}: {type(exc).__name__}: {exc}") from exc
            time.sleep(0.5)


# -- the reference wallet ---------------------------------------------------------------------

_REFERENCE_SQL = """
SELECT idempotency_key AS key, count(*) AS count
FROM transactions
WHERE created_at >= to_timestamp($1) AND idempotency_key NOT LIKE 'seed:%'
GROUP BY account_id, idempotency_key
"""

#: the invariants that together mean "money is conserved"
_CONSERVATION = (
    "accounts_mismatched",
    "unbalanced_transactions",
    "transactions_without_entries",
    "entries_mismatched",
    "orphan_entries",
)


class ReferenceLedger:
    """The reference stack's wallet database, read directly (not through Toxiproxy)."""

    name = Source.REFERENCE.value

    def __init__(self, stack: ReferenceStack, timeout: float = RECOVER_TIMEOUT_S) -> None:
        self.stack = stack
        self.timeout = timeout

    def settle(self) -> list[str]:
        """Wait (up to the timeout) until every instance is ready and has nothing acknowledged
        but unwritten (the ``ack-before-commit`` mode's queue), so that the check is fair."""
        notes: list[str] = []
        deadline = time.monotonic() + self.timeout
        admin = self.stack.admin
        while True:
            pending: int | None = None
            with contextlib.suppress(Exception):
                if all(w.ready() for w in self.stack.wallets):
                    pending = sum(
                        int((s.get("write_behind") or {}).get("pending", 0)) for s in admin.state()
                    )
            if pending == 0:
                return notes
            if time.monotonic() >= deadline:
                notes.append(
                    "the wallet instances were not all ready with nothing pending after "
                    f"{self.timeout:g}s; the ledger was read as it was"
                )
                return notes
            time.sleep(0.25)

    def fetch(self, since: float) -> LedgerView:
        notes = self.settle()
        dsn = self.stack.dsn

        async def read() -> tuple[list[Any], dict[str, Any]]:
            import asyncpg

            conn = await asyncpg.connect(dsn, timeout=5)
            try:
                async with conn.transaction(isolation="repeatable_read", readonly=True):
                    rows = await conn.fetch(_REFERENCE_SQL, since)
                    facts = await conn.fetchval("SELECT wallet_invariants()::text")
            finally:
                await conn.close()
            return list(rows), orjson.loads(facts)

        rows, facts = _retry(
            "cannot read the wallet database", lambda: asyncio.run(read()), self.timeout
        )
        conserved = facts.get("total_balance") == 0 and all(
            facts.get(k) == 0 for k in _CONSERVATION
        )
        return LedgerView(
            applied=[Applied(str(r["key"]), int(r["count"])) for r in rows],
            money_conserved=conserved,
            negative_balances=int(facts.get("negative_balances", 0)),
            facts=facts,
            notes=notes,
        )


# -- the user's own service --------------------------------------------------------------------


def _rows_to_applied(rows: list[Any], what: str) -> list[Applied]:
    """``(key, count)`` or ``(key,)`` rows (or bare keys) → applied movements."""
    out: list[Applied] = []
    for row in rows:
        if isinstance(row, str | int):
            out.append(Applied(str(row)))
            continue
        values = list(row.values()) if isinstance(row, dict) else list(row)
        if isinstance(row, dict) and ("key" in row or "id" in row):
            key = row.get("key", row.get("id"))
            count = row.get("count", 1)
        elif values:
            key, count = values[0], values[1] if len(values) > 1 else 1
        else:
            continue
        if key is None:
            continue
        try:
            n = int(count)
        except (TypeError, ValueError):
            raise EnvironmentProblem(
                f"{what}: expected a count after the key, got {count!r}"
            ) from None
        out.append(Applied(str(key), n))
    return out


class SqlLedger:
    """The user's query against their database (``integrity.sql`` in the profile)."""

    name = Source.SQL.value

    def __init__(
        self,
        check: SqlIntegrityCheck,
        timeout: float = RECOVER_TIMEOUT_S,
        *,
        allow: Allowlist | None = None,
    ) -> None:
        self.check = check
        self.timeout = timeout
        self.allow = allow or Allowlist()
        if check.dsn:  # a DSN from the environment is checked when it is read
            self.allow.check_dsn(check.dsn, what="integrity.sql.dsn")

    def dsn(self) -> str:
        if self.check.dsn:
            return self.check.dsn
        env = self.check.dsn_env or ""
        value = os.environ.get(env)
        if not value:
            raise ConfigError(f"integrity.sql.dsn_env: environment variable {env} is not set")
        self.allow.check_dsn(value, what=f"integrity.sql.dsn_env ({env})")
        return value

    def fetch(self, since: float) -> LedgerView:
        dsn = self.dsn()
        query = self.check.query
        args = (since,) if "$1" in query else ()

        async def read() -> list[Any]:
            import asyncpg

            conn = await asyncpg.connect(dsn, timeout=5)
            try:
                async with conn.transaction(isolation="repeatable_read", readonly=True):
                    return list(await conn.fetch(query, *args))
            finally:
                await conn.close()

        rows = _retry("integrity.sql: the query failed", lambda: asyncio.run(read()), self.timeout)
        return LedgerView(applied=_rows_to_applied([tuple(r) for r in rows], "integrity.sql"))


class HttpLedger:
    """The user's endpoint (``integrity.http`` in the profile): ``GET url?since=<unix s>``
    answering a JSON list of ids/keys (a repeated id was applied twice), of
    ``{"key": …, "count": n}`` objects, or an object with such a list under ``items``."""

    name = Source.HTTP.value

    def __init__(
        self,
        check: HttpIntegrityCheck,
        timeout: float = RECOVER_TIMEOUT_S,
        *,
        allow: Allowlist | None = None,
        verify: ssl.SSLContext | bool = True,
    ) -> None:
        (allow or Allowlist()).check_url(check.url, what="integrity.http.url")
        #: how to check the endpoint's certificate (the service's own TLS settings)
        self.verify = verify
        self.check = check
        self.timeout = timeout

    def fetch(self, since: float) -> LedgerView:
        url = self.check.url
        headers = {k: os.path.expandvars(v) for k, v in self.check.headers.items()}

        def get() -> Any:
            r = httpx.get(
                url,
                params={"since": f"{since:.3f}"},
                headers=headers,
                timeout=30,
                verify=self.verify,
            )
            if r.status_code >= 500:
                raise RuntimeError(f"answered {r.status_code}")
            if r.status_code >= 400:
                raise EnvironmentProblem(
                    f"integrity.http: {url} answered {r.status_code}: {r.text[:200]}"
                )
            return r.json()

        data = _retry(f"integrity.http: {url}", get, self.timeout)
        if isinstance(data, dict):
            data = data.get("items", data.get("applied"))
        if not isinstance(data, list):
            raise EnvironmentProblem(
                f"integrity.http: {url} must answer a JSON list of applied ids (or "
                '{"items": [...]})'
            )
        return LedgerView(applied=_rows_to_applied(data, "integrity.http"))
