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
millions of rows parsed with numpy as ``COPY`` sends them, see :func:`read_reference`); the
user's sources as lists of :class:`Applied`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import ssl
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol

import httpx
import numpy as np
import numpy.typing as npt
import orjson

from loadkit.errors import ConfigError, EnvironmentProblem
from loadkit.integrity.columns import I64, U8, AppliedTable, Detail, Interner
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

#: the applied movements, sent by ``COPY … TO STDOUT`` (text: a line per row, tab-separated,
#: backslash escapes) and parsed with numpy a block at a time (:class:`CopyRows`): 3.6 M rows
#: cross the wire in ~1.5 s and no Python object is made per row. (Splitting the keys in SQL
#: and packing the rows as bytea cost ~11 s of the database's time: the sort of its GROUP BY.)
_REFERENCE_ROWS = (
    "SELECT idempotency_key, amount, from_account, to_account FROM transactions"
    " WHERE created_at >= to_timestamp($1) AND idempotency_key NOT LIKE 'seed:%'"
)
#: COPY's text escapes (it emits no octal or hex ones)
_UNESCAPE = {b"b": b"\b", b"f": b"\f", b"n": b"\n", b"r": b"\r", b"t": b"\t", b"v": b"\v"}
_ESCAPE = re.compile(rb"\\(.)", re.DOTALL)
_TAB, _NEWLINE, _BACKSLASH, _ZERO, _MINUS = 9, 10, 92, 48, 45
#: a prefix longer than this is interned row by row (a user's long keys; loadkit's are 14)
_PACKED_PREFIX = 32
#: bytes of padding around a block: every 8-byte word read at a field's edge is inside it
_PAD = 8
U64 = npt.NDArray[np.uint64]


def _u64(x: int) -> np.uint64:
    return np.uint64(x)


_ZEROS, _HIGH, _LOW, _SIX, _SEVEN = (
    _u64(0x3030303030303030),
    _u64(0xF0F0F0F0F0F0F0F0),
    _u64(0x0F0F0F0F0F0F0F0F),
    _u64(0x0606060606060606),
    _u64(0x7F7F7F7F7F7F7F7F),
)
_TOPS, _NOT_DIGIT = _u64(0x8080808080808080), _u64(0x7676767676767676)


def _unescape(raw: bytes) -> str:
    """A text field of COPY's text format as the text it stands for."""
    if b"\\" in raw:
        raw = _ESCAPE.sub(lambda m: _UNESCAPE.get(m.group(1), m.group(1)), raw)
    return raw.decode("utf-8", "surrogateescape")


def _words(block: bytes) -> U64:
    """``w[i]``: the 8 bytes of ``block`` from ``i`` on as one little-endian integer (a view,
    items overlapping: SWAR over text, eight characters per operation)."""
    return np.ndarray((len(block) - 7,), "<u8", buffer=block, strides=(1,))


def _low_mask(count: Any) -> U64:
    """Per item, a mask of the first ``count`` (0–8) bytes of a word."""
    shift = (8 * np.clip(count, 0, 7)).astype(np.uint64)
    return np.where(count >= 8, ~_u64(0), (_u64(1) << shift) - _u64(1))


def _eight_digits(word: U64) -> tuple[U64, npt.NDArray[np.bool_]]:
    """The number written by the 8 ASCII digits of each word (first byte most significant),
    and whether they all are digits."""
    ok = ((word & _HIGH) == _ZEROS) & ((((word & _LOW) + _SIX) & _HIGH) == 0)
    v = word - _ZEROS
    v = (v * _u64(10) + (v >> _u64(8))) & _u64(0x00FF00FF00FF00FF)
    v = (v * _u64(100) + (v >> _u64(16))) & _u64(0x0000FFFF0000FFFF)
    v = (v * _u64(10000) + (v >> _u64(32))) & _u64(0xFFFFFFFF)
    return v, ok


def _digits(words: U64, start: I64, end: I64) -> tuple[U64, npt.NDArray[np.bool_]]:
    """The unsigned numbers written in ``block[start[i]:end[i]]`` (1–19 digits), and which
    fields are not that: eight digits at a time, from the field's end."""
    length = end - start
    value = np.zeros(len(start), np.uint64)
    bad = (length <= 0) | (length > 19)
    for j in range(-(-min(int(length.max(initial=0)), 19) // 8)):
        # the word ending at this group's last digit; bytes before the field become "0"s
        lead = _low_mask(8 - np.clip(length - 8 * j, 0, 8))
        word = words[np.maximum(end - 8 * (j + 1), 0)]
        digits, ok = _eight_digits((word & ~lead) | (_ZEROS & lead))
        bad |= ~ok
        value += digits * _u64(10 ** (8 * j))
    return value, bad


def _trailing_digits(words: U64, a: U8, end: I64) -> I64:
    """How many ASCII digits end each field ending at ``end`` (0–10; 10: ten or more)."""
    x = words[end - 8] ^ _ZEROS  # a digit's byte is now 0–9
    not_digit = (((x & _SEVEN) + _NOT_DIGIT) | x) & _TOPS
    not_digit |= not_digit >> _u64(8)  # every byte below a non-digit counts as one
    not_digit |= not_digit >> _u64(16)
    not_digit |= not_digit >> _u64(32)
    count: I64 = np.bitwise_count(~not_digit & _TOPS).astype(np.int64)
    for back in (9, 10):  # the separator before a field is no digit: only 8 can go on
        more = (count == back - 1) & (a[end - back] - np.uint8(_ZERO) <= 9)
        count += more
    return count


def _ints(words: U64, a: U8, start: I64, end: I64) -> Detail:
    """The integer column of fields ``a[start[i]:end[i]]`` (``\\N``: absent)."""
    null = (end - start == 2) & (a[start] == _BACKSLASH) & (a[start + 1] == ord("N"))
    negative = (end > start) & (a[start] == _MINUS)
    value, bad = _digits(words, start + negative, end)
    if (bad & ~null).any():
        i = int(np.flatnonzero(bad & ~null)[0])
        field_text = bytes(a[start[i] : end[i]]).decode("utf-8", "replace")
        raise EnvironmentProblem(f"the wallet database sent {field_text!r} for a bigint column")
    signed = np.where(negative, ~value + _u64(1), value).view(np.int64)
    return Detail.ints(signed, ~null)


class CopyRows:
    """The rows ``(key, amount, payer, payee)`` of ``COPY (…) TO STDOUT`` in text format, fed
    as the chunks arrive and parsed a block at a time with numpy (keys split as
    :func:`~loadkit.integrity.columns.split_key` does)::

        rows = CopyRows()
        rows.feed(b"lk-3f-0-17\\t500\\t2\\t9\\nuser key\\t5\\t2\\t\\\\N\\n")
        table = rows.table()        # 2 rows: keys 'lk-3f-0-17' and 'user key', payee absent
    """

    #: bytes parsed at once (bounds the parse's temporaries)
    BLOCK = 1 << 23

    def __init__(self) -> None:
        self.interner = Interner()
        self._pending = bytearray()
        self._keys: list[I64] = []
        self._details: tuple[list[Detail], list[Detail], list[Detail]] = ([], [], [])

    def feed(self, chunk: bytes) -> None:
        self._pending += chunk
        if len(self._pending) >= self.BLOCK:
            self._parse_pending()

    def table(self) -> AppliedTable:
        """Every row fed so far (a last line without its newline is an error)."""
        self._parse_pending()
        if self._pending:
            raise EnvironmentProblem("the wallet database's COPY output ends mid-row")
        keys, self._keys = self._keys, []
        key = np.concatenate(keys) if keys else np.zeros(0, np.int64)
        del keys
        details = []
        for parts in self._details:
            details.append(Detail.concat(parts))
            parts.clear()
        return AppliedTable(
            key,
            np.broadcast_to(np.int64(1), key.shape),  # one application a row: no memory
            (details[0], details[1], details[2]),
            self.interner,
        )

    def _parse_pending(self) -> None:
        cut = self._pending.rfind(b"\n") + 1
        if not cut:
            return
        # spaces before (no digit, no separator), zeros after: every word read is inside
        block = b" " * _PAD + bytes(self._pending[:cut]) + b"\0" * _PAD
        del self._pending[:cut]
        self._parse(block)

    def _parse(self, block: bytes) -> None:
        a = np.frombuffer(block, np.uint8)
        words = _words(block)
        found = np.flatnonzero((a == _TAB) | (a == _NEWLINE))
        if len(found) % 4:
            raise EnvironmentProblem("the wallet database's COPY output is not 4 columns a row")
        sep = found.reshape(-1, 4)
        del found
        end = sep[:, 3]
        if not ((a[sep[:, :3]] == _TAB).all() and (a[end] == _NEWLINE).all()):
            raise EnvironmentProblem("the wallet database's COPY output is not 4 columns a row")
        start = np.empty(len(end), np.int64)
        start[:1] = _PAD
        start[1:] = end[:-1] + 1
        self._keys.append(self._split_keys(block, words, a, start, sep[:, 0], end))
        for parts, (lo, hi) in zip(self._details, ((0, 1), (1, 2), (2, 3)), strict=True):
            parts.append(_ints(words, a, sep[:, lo] + 1, sep[:, hi]))

    def _split_keys(
        self, block: bytes, words: U64, a: U8, start: I64, end: I64, line_end: I64
    ) -> I64:
        """The ids of the keys ``a[start[i]:end[i]]``: a numbered key's from its prefix's id
        and its number, vectorised; any other (or escaped, or long-prefixed) key's one by one."""
        count = np.minimum(_trailing_digits(words, a, end), end - start)
        numbered = (count >= 1) & (count <= 9)
        numbered &= (count == 1) | (a[end - count] != _ZERO)
        head = end - count - start
        numbered &= head <= _PACKED_PREFIX
        escaped = np.flatnonzero(a == _BACKSLASH)
        if len(escaped):
            row = np.searchsorted(line_end, escaped)
            numbered[row[escaped < end[row]]] = False
        key = np.zeros(len(start), np.int64)
        rows = np.flatnonzero(numbered)
        if len(rows):
            number, _ = _digits(words, end[rows] - count[rows], end[rows])
            prefix = self._prefix_ids(words, a, start[rows], head[rows])
            key[rows] = prefix << 32 | number.view(np.int64)
        for i in np.flatnonzero(~numbered).tolist():
            key[i] = self.interner.key(_unescape(block[start[i] : end[i]]))
        return key

    def _prefix_ids(self, words: U64, a: U8, start: I64, length: I64) -> I64:
        """The interned id of each prefix ``a[start[i]:start[i] + length[i]]`` (≤ 32 bytes),
        packed exactly into 64-bit words (text has no NUL byte to pad with)."""
        width = max(1, -(-int(length.max(initial=0)) // 8))
        packed = np.empty((len(start), width), np.uint64)
        mixed = np.zeros(len(start), np.uint64)
        for j in range(width):
            at = np.where(length > 8 * j, start + 8 * j, 0)  # shorter ones: nothing to read
            packed[:, j] = words[at] & _low_mask(length - 8 * j)
            mixed = mixed * _u64(0x9E3779B97F4A7C15) ^ packed[:, j]  # wraps: a hash
        _, first, inverse = np.unique(mixed, return_index=True, return_inverse=True)
        if not (packed == packed[first][inverse]).all():  # two prefixes with one hash
            _, first, inverse = np.unique(packed, axis=0, return_index=True, return_inverse=True)
        ids = np.array(
            [
                self.interner.prefix(bytes(a[start[i] : start[i] + length[i]]).decode())
                for i in first.tolist()
            ],
            np.int64,
        )
        return ids[inverse.reshape(-1)]


async def read_reference(
    conn: Any, since: float, invariants: Any = None
) -> tuple[AppliedTable, dict[str, Any]]:
    """The movements the reference wallet applied since ``since`` (Unix s) and its
    ``wallet_invariants()``, both of one repeatable-read snapshot of ``conn`` (asyncpg).

    Given a second connection ``invariants``, that one computes the invariants while ``conn``
    sends the rows: it imports ``conn``'s snapshot (``pg_export_snapshot()``, ``SET
    TRANSACTION SNAPSHOT``), so both describe the same moment."""
    rows = CopyRows()

    async def received(chunk: bytes) -> None:
        rows.feed(chunk)

    async with conn.transaction(isolation="repeatable_read", readonly=True):
        if invariants is None:
            await conn.copy_from_query(_REFERENCE_ROWS, since, output=received)
            facts = await conn.fetchval("SELECT wallet_invariants()::text")
        else:
            snapshot = await conn.fetchval("SELECT pg_export_snapshot()")
            async with invariants.transaction(isolation="repeatable_read", readonly=True):
                await invariants.execute(f"SET TRANSACTION SNAPSHOT '{snapshot}'")
                # the rows' reading and parsing keep a core busy: parallel workers here would
                # only take turns with them (measured: 5.6 s for both with, 4.8 s without)
                await invariants.execute("SET LOCAL max_parallel_workers_per_gather = 0")
                _, facts = await asyncio.gather(
                    conn.copy_from_query(_REFERENCE_ROWS, since, output=received),
                    invariants.fetchval("SELECT wallet_invariants()::text"),
                )
    return rows.table(), orjson.loads(facts)


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
                second = await asyncpg.connect(dsn, timeout=5)
                try:
                    return await read_reference(conn, since, second)
                finally:
                    await second.close()
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
