"""Where the integrity check reads the applied movements from: one class per kind of ledger.

- :class:`ReferenceLedger` — the reference wallet's database (each transaction's idempotency
  key, amount, payer and payee, and ``wallet_invariants()`` for conservation and negative
  balances);
- :class:`SqlLedger` — the user's query against their own database, returning ``(key, count)``
  rows (or one ``key`` column, one row per application), optionally with named ``amount``,
  ``payer`` and ``payee`` columns;
- :class:`HttpLedger` — the user's endpoint returning the applied ids or keys as JSON (objects
  may name ``amount``, ``payer`` and ``payee`` too).

Amounts, payers and payees are compared with what the client sent (docs/integrity.md): give them
in the client's terms (the same unit as the request's amount, the same account ids).

Each has ``name`` and ``fetch(since) -> LedgerView``; ``since`` is the run's start (Unix seconds),
for sources that can restrict themselves to one run (``$1`` in a query, ``?since=`` on a URL)::

    view = ReferenceLedger(stack).fetch(since=run_started_at)
    len(view.applied), view.money_conserved       # 3600000, True

The reference ledger comes back as an :class:`~loadkit.integrity.columns.AppliedTable` (its
millions of rows read as a few byte strings, see :func:`read_reference`); the user's sources as
lists of :class:`Applied`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import ssl
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol

import httpx
import numpy as np
import orjson

from loadkit.errors import ConfigError, EnvironmentProblem
from loadkit.integrity.columns import AppliedTable, Detail, Interner
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

    applied: list[Applied] | AppliedTable
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

#: the applied movements, one row per key prefix: a key that ends in a number (as
#: :func:`~loadkit.integrity.columns.split_key` splits it) is grouped under its prefix, any
#: other key under itself. ``rows`` packs each movement's number, amount, payer and payee as
#: four big-endian int8 (32 bytes): 3.6 M movements cross the wire as ~115 MB of bytea that
#: numpy reads in place, not as 3.6 M records
_REFERENCE_SQL = """
SELECT name, numbered,
       string_agg(int8send(number) || int8send(amount) || int8send(from_account)
                  || int8send(to_account), ''::bytea) AS rows
FROM (
    SELECT CASE WHEN numbered THEN head ELSE key END AS name, numbered,
           CASE WHEN numbered THEN digits::int8 ELSE 0 END AS number,
           amount, from_account, to_account
    FROM (
        SELECT *, length(digits) BETWEEN 1 AND 9
                  AND (length(digits) = 1 OR left(digits, 1) <> '0') AS numbered
        FROM (
            SELECT *, substr(key, length(head) + 1) AS digits
            FROM (
                SELECT idempotency_key AS key, rtrim(idempotency_key, '0123456789') AS head,
                       amount, from_account, to_account
                FROM transactions
                WHERE created_at >= to_timestamp($1) AND idempotency_key NOT LIKE 'seed:%'
                OFFSET 0
            ) a OFFSET 0
        ) b OFFSET 0
    ) c
) d
GROUP BY 1, 2
"""
#: (``OFFSET 0`` keeps each level a level of its own: flattened, PostgreSQL would compute
#: ``rtrim`` and ``substr`` once per use, ~19 s instead of ~11 s for 3.6 M rows)
_ROW = np.dtype([("number", ">i8"), ("amount", ">i8"), ("payer", ">i8"), ("payee", ">i8")])


def applied_table(groups: Iterable[tuple[str, bool, bytes]]) -> AppliedTable:
    """The table of :data:`_REFERENCE_SQL`'s rows: ``(name, numbered, rows)``."""
    interner = Interner()
    keys, rows = [], []
    for name, numbered, packed in groups:
        part = np.frombuffer(packed, _ROW)
        if numbered:
            keys.append(interner.numbered([name], np.zeros(len(part), np.int64), part["number"]))
        else:
            keys.append(np.full(len(part), interner.key(name), np.int64))
        rows.append(part)
    table = np.concatenate(rows) if rows else np.zeros(0, _ROW)
    key = np.concatenate(keys) if keys else np.zeros(0, np.int64)
    return AppliedTable(
        key,
        np.ones(len(key), np.int64),
        (Detail.ints(table["amount"]), Detail.ints(table["payer"]), Detail.ints(table["payee"])),
        interner,
    )


async def read_reference(conn: Any, since: float) -> tuple[AppliedTable, dict[str, Any]]:
    """The movements the reference wallet applied since ``since`` (Unix s) and its
    ``wallet_invariants()``, in one repeatable-read snapshot of ``conn`` (asyncpg)."""
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        groups = await conn.fetch(_REFERENCE_SQL, since)
        facts = await conn.fetchval("SELECT wallet_invariants()::text")
    table = applied_table((str(g["name"]), bool(g["numbered"]), bytes(g["rows"])) for g in groups)
    return table, orjson.loads(facts)


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

        async def read() -> tuple[AppliedTable, dict[str, Any]]:
            import asyncpg

            conn = await asyncpg.connect(dsn, timeout=5)
            try:
                return await read_reference(conn, since)
            finally:
                await conn.close()

        table, facts = _retry(
            "cannot read the wallet database", lambda: asyncio.run(read()), self.timeout
        )
        conserved = facts.get("total_balance") == 0 and all(
            facts.get(k) == 0 for k in _CONSERVATION
        )
        return LedgerView(
            applied=table,
            money_conserved=conserved,
            negative_balances=int(facts.get("negative_balances", 0)),
            facts=facts,
            notes=notes,
        )


# -- the user's own service --------------------------------------------------------------------


#: the names a row may give the applied amount, payer and payee under
_DETAIL_NAMES = {
    "amount": ("amount",),
    "payer": ("payer", "from_account", "from"),
    "payee": ("payee", "to_account", "to"),
}
_DETAIL_COLUMNS = frozenset(c for names in _DETAIL_NAMES.values() for c in names)


def _rows_to_applied(rows: list[Any], what: str) -> list[Applied]:
    """``(key, count)`` or ``(key,)`` rows (or bare keys) → applied movements; rows with
    names (a dict, or a query's columns) may name ``key`` (or ``id``), ``count``, ``amount``,
    ``payer`` and ``payee``."""
    out: list[Applied] = []
    for row in rows:
        if isinstance(row, str | int):
            out.append(Applied(str(row)))
            continue
        named = row if isinstance(row, dict) else {}
        columns = list(named)
        values = list(row.values()) if isinstance(row, dict) else list(row)
        if "key" in named or "id" in named:
            key = named.get("key", named.get("id"))
            count = named.get("count", 1)
        elif values:
            key = values[0]
            if "count" in named:
                count = named["count"]
            elif len(values) > 1 and (not columns or columns[1] not in _DETAIL_COLUMNS):
                count = values[1]  # (key, count) by position
            else:
                count = 1
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
        detail = {
            field: next((named[c] for c in names if named.get(c) is not None), None)
            for field, names in _DETAIL_NAMES.items()
        }
        out.append(
            Applied(
                str(key),
                n,
                _amount(detail["amount"], what),
                _account(detail["payer"]),
                _account(detail["payee"]),
            )
        )
    return out


def _amount(value: Any, what: str) -> int | None:
    """An applied amount as an integer (a whole ``numeric`` too); EnvironmentProblem for a
    fraction or text: amounts are compared in the client's unit."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = Decimal(str(value))
    except ArithmeticError:
        raise EnvironmentProblem(f"{what}: amount {value!r} is not a number") from None
    if number != number.to_integral_value():
        raise EnvironmentProblem(
            f"{what}: amount {value!r} is not a whole number: give amounts in the unit the "
            "client sent them in (e.g. fen, not yuan)"
        )
    return int(number)


def _account(value: Any) -> int | str | None:
    if value is None or isinstance(value, bool):
        return None
    return value if isinstance(value, int | str) else str(value)


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
        # by name: a column called amount, payer or payee is compared with what was sent
        return LedgerView(applied=_rows_to_applied([dict(r) for r in rows], "integrity.sql"))


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
        headers = {k: _expand_env(v) for k, v in self.check.headers.items()}

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


_ENV_TEMPLATE = re.compile(r"\{env\.([A-Za-z_][A-Za-z0-9_]*)\}")


def _expand_env(value: str) -> str:
    """A header value with ``{env.NAME}`` (as service headers write it) and ``$NAME`` /
    ``${NAME}`` filled in from the environment; an unset variable stays as written."""
    value = _ENV_TEMPLATE.sub(lambda m: os.environ.get(m[1], m[0]), value)
    return os.path.expandvars(value)
