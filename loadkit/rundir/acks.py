"""Acknowledgement logs (``acks.bin``, and each load process's ``acks.d/*.bin``): one compact,
fixed-width record per money movement (schema ``loadkit.acks/v2``, docs/run-directory.md).

A record is made by :func:`ack_record` (a tuple, msgpack-friendly: it also travels in worker
reports) and written by :class:`AckLog`. A movement's ``sent`` record is appended (and handed
to the operating system) before its request leaves; its final view later *overwrites* that
record in place, so a finished movement costs one 36-byte slot, not two JSON lines::

    log = AckLog(run_dir / "acks.d" / "worker-1-4711.bin")
    log.write([ack_record({"t": 4.2, "key": "lk-9f-1-17", "view": SENT, "amount": 500, ...})])
    log.write([ack_record({..., "key": "lk-9f-1-17", "view": "acknowledged", "status": 201})])
    [r["view"] for r in read_records(log.path)]          # ['acknowledged']

The file is a sequence of 36-byte slots (little-endian): a header slot (magic ``LKACKS``,
version, slot width), then records. A *record* slot holds the view, the (journey, kind) pair as
an index into a string table, the run-clock time in ms, the idempotency key (a string-table
prefix + a number, as in ``lk-3f2a9c1b-0-17``; a UUID's 16 bytes, or a short string, in the
next slot), the account, payer, payee and amount as 32-bit ints, the HTTP status and the
transaction id. String-table entries are *definition* slots written before their first use.
Anything that does not fit (a float amount, a string transaction id, a long key) is an
*extension*: the record as JSON over as many slots as it needs. Every slot starts with its tag,
so a reader decodes millions of records at once with numpy, and a file cut anywhere (a killed
process) reads up to its last whole record.

Why not Parquet: the log is appended one record at a time and must be readable after a
SIGKILL at any byte; Parquet writes row groups and a footer (a killed writer leaves nothing
readable), and pyarrow would add ~100 MB to every load process. Fixed-width slots give the
same columnar read (``numpy.frombuffer``) with a 20-line writer.

Logs of the former JSON lines format (``acks.jsonl``, ``loadkit.acks/v1``) read the same way.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import operator
import os
import struct
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import orjson

SCHEMA: Final = "loadkit.acks/v2"
JSONL_SCHEMA: Final = "loadkit.acks/v1"
MAGIC: Final = b"LKACKS"
VERSION: Final = 2
WIDTH: Final = 36

log = logging.getLogger("loadkit")


@contextlib.contextmanager
def disk_full_dropped(path: Path, records: int) -> Iterator[None]:
    """A full disk (ENOSPC, EDQUOT) loses these records with one log line, not a traceback that
    kills the writer: the run's disk guard stops the run (docs/design.md, "Disk guard")."""
    try:
        yield
    except OSError as exc:
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        log.error("loadkit: disk full: %d record(s) not written to %s (%s)", records, path, exc)


#: the view of a movement whose request is about to leave: no answer recorded yet. A key
#: that never gets a later view was in flight when its load process died (an ``unknown``)
SENT: Final = "sent"
VIEWS: Final = ("sent", "acknowledged", "refused", "unknown")
_VIEW_CODE: Final = {v: i for i, v in enumerate(VIEWS)}

#: the fields of a record, in the order of :data:`AckRecord`
FIELDS: Final = (
    "t",
    "journey",
    "kind",
    "key",
    "account",
    "from",
    "to",
    "amount",
    "view",
    "status",
    "transaction_id",
)
#: one acknowledgement record: the values of :data:`FIELDS` in that order
AckRecord = tuple[Any, ...]
_ALL_FIELDS = operator.itemgetter(*FIELDS)

# slot tags
_HEADER, _REC, _DEF, _EXT, _CONT = 0x4C, 1, 2, 3, 4  # the header's tag is the "L" of LKACKS
# record flags: which optional fields are present, and the key's kind (bits 6-7)
_ACCOUNT, _FROM, _TO, _AMOUNT, _STATUS, _TXID = 1, 2, 4, 8, 16, 32
_NUMBERED, _UUID, _SHORT = 0, 1, 2
_KEY_SHIFT: Final = 6
# string tables
_SERIES, _PREFIX = 0, 1
_MAX_SERIES, _MAX_PREFIX = 0xFF, 0xFFFF
_MAX_SHORT: Final = WIDTH - 2

#: tag, view, flags, series, t (ms), key prefix, key number, account, from, to, amount,
#: status, transaction id
_RECORD = struct.Struct("<BBBBiHIiiiiHi")
_TAIL = struct.Struct("<Hi")  # status, transaction id: the record's last 6 bytes
_TAIL_AT: Final = WIDTH - _TAIL.size
_DEF_HEAD = struct.Struct("<BBHH")  # tag, table, index, length (then the UTF-8 JSON)
_EXT_HEAD = struct.Struct("<BI")  # tag, length (then the record as JSON)
_HEADER_SLOT = (MAGIC + bytes([VERSION, WIDTH]) + SCHEMA.encode()).ljust(WIDTH, b"\0")
assert _RECORD.size == WIDTH and len(_HEADER_SLOT) == WIDTH


def ack_record(fields: dict[str, Any]) -> AckRecord:
    """One acknowledgement record from its fields (:data:`FIELDS`; a missing one is None)::

    ack_record({"t": 42.137, "key": "lk-3f-0-17", "view": "sent", "amount": 8800})
    """
    try:
        return _ALL_FIELDS(fields)  # type: ignore[no-any-return]
    except KeyError:
        return tuple(fields.get(name) for name in FIELDS)


def as_dict(record: Sequence[Any]) -> dict[str, Any]:
    """A record as the JSON object ``loadkit export`` writes (:data:`FIELDS` as keys)."""
    return dict(zip(FIELDS, record, strict=True))


def _slots(head: bytes, payload: bytes) -> bytes:
    """A head and a payload spread over whole slots (continuation slots start with their tag)."""
    first = WIDTH - len(head)
    out = [head + payload[:first]]
    for i in range(first, len(payload), WIDTH - 1):
        out.append(bytes([_CONT]) + payload[i : i + WIDTH - 1])
    out[-1] = out[-1].ljust(WIDTH, b"\0")
    return b"".join(out)


def _split_key(key: str) -> tuple[int, str, int]:
    """(kind, prefix, number) of a key: a canonical lowercase UUID, a prefix + a decimal number
    (no leading zero), else a short string (the prefix is then the key itself)."""
    if len(key) == 36 and key[8] == key[13] == key[18] == key[23] == "-":
        hexa = key.replace("-", "")
        try:
            if bytes.fromhex(hexa).hex() == hexa:
                return _UUID, hexa, 0
        except ValueError:
            pass
    head = key.rstrip("0123456789")
    digits = len(key) - len(head)
    if 0 < digits <= 9 and (digits == 1 or key[len(head)] != "0"):
        return _NUMBERED, head, int(key[len(head) :])
    return _SHORT, key, 0


class AckLog:
    """An append-only acknowledgement log. Each :meth:`write` reaches the operating system
    before it returns (one ``pwrite``): a process SIGKILLed right after loses nothing it wrote
    (a machine that crashes may: no fsync). A final view overwrites its key's ``sent`` record
    when this log wrote it; otherwise it is appended (a reader takes each key's strongest view).

    Opening an existing log appends to it (its string tables are read back; a torn last
    record is cut off first)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._series: dict[tuple[Any, Any], int] = {}
        self._prefixes: dict[str, int] = {}
        #: keys whose ``sent`` record this log wrote and no final view yet: (offset, length,
        #: first slot)
        self._open: dict[str, tuple[int, int, bytes]] = {}
        self._fd: int | None = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        size = os.fstat(self._fd).st_size
        if size == 0:
            os.pwrite(self._fd, _HEADER_SLOT, 0)
            self._end = WIDTH
        else:
            scan = _Scan(path.read_bytes())
            self._series = {tuple(v): i for i, v in scan.tables[_SERIES].items()}
            self._prefixes = {str(v): i for i, v in scan.tables[_PREFIX].items()}
            self._end = scan.end * WIDTH
            if self._end != size:
                os.ftruncate(self._fd, self._end)

    def write(self, records: Iterable[Sequence[Any]]) -> None:
        """Append (or settle in place) ``records`` (:func:`ack_record`'s tuples, or lists).
        A full disk loses them with one log line, never a traceback (see
        :func:`disk_full_dropped`): the run's disk guard stops the run."""
        try:
            self._write(records)
        except OSError as exc:
            if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
                raise
            log.error("loadkit: disk full: records not written to %s (%s)", self.path, exc)

    def _write(self, records: Iterable[Sequence[Any]]) -> None:
        fd = self._fd
        if fd is None:
            return
        if type(records) is tuple and len(records) == 1:  # a load process: one at a time
            self._write_one(fd, records[0])
            return
        chunk: list[bytes] = []
        end = at = self._end
        counted = 0  # how many of chunk's pieces ``at`` (the next offset) counts
        here: dict[int, int] = {}  # offset → index in chunk, for records not yet written
        for record in records:
            data, key, settles = self._encode(record, chunk)
            found = self._open.pop(key, None) if settles else None
            if found is not None and data is not None and len(data) == found[1]:
                if found[0] in here:  # its ``sent`` is in this very write: replace it there
                    chunk[here[found[0]]] = data
                else:  # the final view over its own ``sent`` record
                    os.pwrite(fd, data, found[0])
                continue
            if data is None:  # an extension: the record as JSON
                payload = orjson.dumps(as_dict(record))
                data = _slots(_EXT_HEAD.pack(_EXT, len(payload)), payload)
            for piece in chunk[counted:]:  # the table definitions this record needs
                at += len(piece)
            if not settles and key:
                self._open[key] = (at, len(data), data[:WIDTH])
                here[at] = len(chunk)
            chunk.append(data)
            counted = len(chunk)
            at += len(data)
        if chunk:
            blob = b"".join(chunk)
            os.pwrite(fd, blob, end)
            self._end = end + len(blob)

    def _write_one(self, fd: int, record: Sequence[Any]) -> None:
        """:meth:`write` of one record (what a load process does before each request)."""
        view, key = record[8], record[3]
        if view != SENT and key in self._open and self._settle(fd, key, view, record):
            return
        defs: list[bytes] = []
        data, key, settles = self._encode(record, defs)
        if settles:
            found = self._open.pop(key, None)
            if found is not None and data is not None and len(data) == found[1]:
                os.pwrite(fd, data, found[0])  # the final view over its own ``sent`` record
                return
        if data is None:  # an extension: the record as JSON
            payload = orjson.dumps(as_dict(record))
            data = _slots(_EXT_HEAD.pack(_EXT, len(payload)), payload)
        head = b"".join(defs)
        if not settles and key:
            self._open[key] = (self._end + len(head), len(data), data[:WIDTH])
        blob = head + data if head else data
        os.pwrite(fd, blob, self._end)
        self._end += len(blob)

    def _settle(self, fd: int, key: str, view: Any, record: Sequence[Any]) -> bool:
        """Overwrite the view, status and transaction id of ``key``'s own ``sent`` record (its
        other fields are the movement's, already on disk); False when they do not fit."""
        at, _length, head = self._open[key]
        status, txid = record[9], record[10]
        code = _VIEW_CODE.get(view)
        if code is None or head[0] != _REC:
            return False
        flags = 0
        if status is None:
            status = 0
        elif type(status) is int and 0 <= status <= 0xFFFF:
            flags = _STATUS
        else:
            return False
        if txid is None:
            txid = 0
        elif type(txid) is int and -(2**31) <= txid < 2**31:
            flags |= _TXID
        else:
            return False
        del self._open[key]
        slot = bytearray(head)
        slot[1] = code
        slot[2] = (slot[2] & ~(_STATUS | _TXID)) | flags
        _TAIL.pack_into(slot, _TAIL_AT, status, txid)
        os.pwrite(fd, slot, at)  # one write of one slot: never half a settlement
        return True

    def _encode(self, record: Sequence[Any], defs: list[bytes]) -> tuple[bytes | None, str, bool]:
        """(the record's slot(s), or None for an extension; its key; whether it is a final
        view). Table definitions it needs go to ``defs`` first."""
        t, journey, kind, key, account, frm, to, amount, view, status, txid = record
        settles = view != SENT
        if type(key) is not str:
            return None, "", settles
        code = _VIEW_CODE.get(view)
        if code is None or type(t) not in (float, int):
            return None, key, settles
        ms = round(t * 1000)
        if ms / 1000 != t:
            return None, key, settles
        # straight-line on purpose: this runs before every money request leaves
        flags = 0
        if account is None:
            account = 0
        elif type(account) is int:
            flags = _ACCOUNT
        else:
            return None, key, settles
        if frm is None:
            frm = 0
        elif type(frm) is int:
            flags |= _FROM
        else:
            return None, key, settles
        if to is None:
            to = 0
        elif type(to) is int:
            flags |= _TO
        else:
            return None, key, settles
        if amount is None:
            amount = 0
        elif type(amount) is int:
            flags |= _AMOUNT
        else:
            return None, key, settles
        if status is None:
            status = 0
        elif type(status) is int:
            flags |= _STATUS
        else:
            return None, key, settles
        if txid is None:
            txid = 0
        elif type(txid) is int:
            flags |= _TXID
        else:
            return None, key, settles
        series = self._series.get((journey, kind))
        if series is None:
            if len(self._series) > _MAX_SERIES or not all(
                v is None or type(v) is str for v in (journey, kind)
            ):
                return None, key, settles
            series = self._define(_SERIES, self._series, (journey, kind), [journey, kind], defs)
        key_kind, prefix_text, number = _split_key(key)
        prefix = 0
        extra = b""
        if key_kind == _NUMBERED:
            found = self._prefixes.get(prefix_text)
            if found is None:
                if len(self._prefixes) > _MAX_PREFIX:
                    return None, key, settles
                found = self._define(_PREFIX, self._prefixes, prefix_text, prefix_text, defs)
            prefix = found
        elif key_kind == _UUID:
            extra = (bytes([_CONT]) + bytes.fromhex(prefix_text)).ljust(WIDTH, b"\0")
        else:
            raw = key.encode()
            if len(raw) > _MAX_SHORT:
                return None, key, settles
            extra = (bytes([_CONT, len(raw)]) + raw).ljust(WIDTH, b"\0")
        try:
            head = _RECORD.pack(
                _REC,
                code,
                flags | key_kind << _KEY_SHIFT,
                series,
                ms,
                prefix,
                number,
                account,
                frm,
                to,
                amount,
                status,
                txid,
            )
        except struct.error:  # a value outside 32 bits
            return None, key, settles
        return head + extra, key, settles

    def _define(
        self, table: int, known: dict[Any, int], name: Any, value: Any, defs: list[bytes]
    ) -> int:
        index = known[name] = len(known)
        payload = orjson.dumps(value)
        defs.append(_slots(_DEF_HEAD.pack(_DEF, table, index, len(payload)), payload))
        return index

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


# -- reading ---------------------------------------------------------------------------------


class _Scan:
    """The tables, extension records and complete length (in slots) of a v2 log's bytes."""

    def __init__(self, raw: bytes) -> None:
        import numpy as np

        self.tables: dict[int, dict[int, Any]] = {_SERIES: {}, _PREFIX: {}}
        self.extensions: dict[int, dict[str, Any]] = {}
        count = len(raw) // WIDTH
        if count == 0 or raw[: len(MAGIC)] != MAGIC:
            self.end = 0
            self.tags = np.zeros(0, np.uint8)
            return
        tags = np.frombuffer(raw, np.uint8, count=count * WIDTH).reshape(count, WIDTH)[:, 0]
        self.end = count
        for i in np.flatnonzero((tags == _DEF) | (tags == _EXT)).tolist():
            if i >= self.end:
                break
            if tags[i] == _DEF:
                _tag, table, index, length = _DEF_HEAD.unpack_from(raw, i * WIDTH)
                head = _DEF_HEAD.size
            else:
                _tag, length = _EXT_HEAD.unpack_from(raw, i * WIDTH)
                head = _EXT_HEAD.size
            slots = 1 + max(0, -(-(length - (WIDTH - head)) // (WIDTH - 1)))
            if i + slots > count or not (tags[i + 1 : i + slots] == _CONT).all():
                self.end = i  # cut short by a killed writer: what follows is not whole
                break
            payload = bytearray(raw[i * WIDTH + head : (i + 1) * WIDTH])
            for j in range(i + 1, i + slots):
                payload += raw[j * WIDTH + 1 : (j + 1) * WIDTH]
            try:
                value = orjson.loads(bytes(payload[:length]))
            except orjson.JSONDecodeError:
                continue
            if tags[i] == _DEF:
                self.tables.setdefault(table, {})[index] = value
            elif isinstance(value, dict):
                self.extensions[i] = value
        # a record whose key is in the next slot needs that slot
        if self.end and tags[self.end - 1] == _REC:
            flags = raw[(self.end - 1) * WIDTH + 2]
            if flags >> _KEY_SHIFT != _NUMBERED:
                self.end -= 1
        self.tags = tags[: self.end]


@dataclass
class AckColumns:
    """A log's records as columns (numpy arrays, one entry per record; ``flags`` say which
    optional values are present), plus the records that did not fit a slot (``extra``, as
    dicts). ``keys`` and ``series`` are Python lists of str / (journey, kind); ``keys`` is
    empty when read with ``key_text=False``: a numbered key is then ``prefixes[key_prefix]``
    followed by ``key_number``, and ``other_keys`` maps each other record's index to its key."""

    keys: list[str]
    view: Any  # uint8 index into VIEWS
    t_ms: Any
    series: Any  # uint8 index into ``series_names``
    series_names: list[tuple[Any, Any]]
    account: Any
    payer: Any
    payee: Any
    amount: Any
    status: Any
    txid: Any
    flags: Any
    extra: list[dict[str, Any]]
    key_prefix: Any = None  # uint16 index into ``prefixes`` (numbered keys)
    key_number: Any = None  # uint32
    prefixes: list[str] | None = None
    other_keys: dict[int, str] | None = None  # record index → a key that is not numbered

    def __len__(self) -> int:
        return len(self.view)


_DTYPE: Any = None


def _dtype() -> Any:
    global _DTYPE
    if _DTYPE is None:
        import numpy as np

        _DTYPE = np.dtype(
            [
                ("tag", "u1"),
                ("view", "u1"),
                ("flags", "u1"),
                ("series", "u1"),
                ("t", "<i4"),
                ("prefix", "<u2"),
                ("number", "<u4"),
                ("account", "<i4"),
                ("from", "<i4"),
                ("to", "<i4"),
                ("amount", "<i4"),
                ("status", "<u2"),
                ("txid", "<i4"),
            ]
        )
        assert _DTYPE.itemsize == WIDTH
    return _DTYPE


def is_v2(path: Path) -> bool:
    """Whether ``path`` starts like a v2 (binary) log."""
    try:
        with path.open("rb") as fh:
            return fh.read(len(MAGIC)) == MAGIC
    except OSError:
        return False


def read_columns(path: Path, *, key_text: bool = True) -> AckColumns:
    """Every complete record of a v2 log, as columns (a torn tail is left out); without
    ``key_text`` the keys stay numbers (no string per record: see :class:`AckColumns`)."""
    import numpy as np

    raw = path.read_bytes()
    scan = _Scan(raw)
    arr = np.frombuffer(raw, _dtype(), count=scan.end)
    at = np.flatnonzero(scan.tags == _REC)
    recs = arr[at]
    kind = recs["flags"] >> _KEY_SHIFT
    prefixes = scan.tables[_PREFIX]
    names = [str(prefixes.get(i, "")) for i in range(max(prefixes, default=-1) + 1)]
    keys = _numbered_keys(names, recs["prefix"], recs["number"]) if key_text else []
    others: dict[int, str] = {}
    for i in np.flatnonzero(kind != _NUMBERED).tolist():
        slot = raw[(int(at[i]) + 1) * WIDTH : (int(at[i]) + 2) * WIDTH]
        if kind[i] == _UUID:
            h = slot[1:17].hex()
            others[i] = f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
        else:
            others[i] = slot[2 : 2 + slot[1]].decode(errors="replace")
        if key_text:
            keys[i] = others[i]
    series = scan.tables[_SERIES]
    return AckColumns(
        keys=keys,
        view=recs["view"],
        t_ms=recs["t"],
        series=recs["series"],
        series_names=[
            tuple(series.get(i, (None, None))) for i in range(max(series, default=-1) + 1)
        ],
        account=recs["account"],
        payer=recs["from"],
        payee=recs["to"],
        amount=recs["amount"],
        status=recs["status"],
        txid=recs["txid"],
        flags=recs["flags"],
        extra=[scan.extensions[i] for i in sorted(scan.extensions)],
        key_prefix=recs["prefix"],
        key_number=recs["number"],
        prefixes=names,
        other_keys=others,
    )


def _numbered_keys(prefixes: list[str], prefix: Any, number: Any) -> list[str]:
    """``prefix + str(number)`` for every record, grouped by prefix (a few list operations
    per prefix rather than one format per record)."""
    import numpy as np

    keys: list[str] = [""] * len(prefix)
    if not len(prefix):
        return keys
    for p in np.unique(prefix).tolist():
        where = np.flatnonzero(prefix == p)
        text = prefixes[p] if p < len(prefixes) else ""
        digits = number[where].astype(str).tolist()
        for i, d in zip(where.tolist(), digits, strict=True):
            keys[i] = text + d
    return keys


def _records_v2(path: Path) -> Iterator[dict[str, Any]]:
    cols = read_columns(path)
    views = [VIEWS[v] for v in cols.view.tolist()]
    flags = cols.flags.tolist()
    columns = [
        (name, bit, col.tolist())
        for name, bit, col in (
            ("account", _ACCOUNT, cols.account),
            ("from", _FROM, cols.payer),
            ("to", _TO, cols.payee),
            ("amount", _AMOUNT, cols.amount),
            ("status", _STATUS, cols.status),
            ("transaction_id", _TXID, cols.txid),
        )
    ]
    t = cols.t_ms.tolist()
    series = cols.series.tolist()
    for i, key in enumerate(cols.keys):
        journey, kind = cols.series_names[series[i]]
        out: dict[str, Any] = {"t": t[i] / 1000, "journey": journey, "kind": kind, "key": key}
        f = flags[i]
        for name, bit, values in columns:
            out[name] = values[i] if f & bit else None
        out["view"] = views[i]
        yield {name: out[name] for name in FIELDS}
    yield from cols.extra


def _records_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    with path.open("rb") as fh:
        for line in fh:
            try:
                d = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue  # a line cut short by a killed writer
            if isinstance(d, dict) and "schema" not in d:
                yield d


def read_records(path: Path) -> Iterator[dict[str, Any]]:
    """Every complete record of an acknowledgement log (either format) as a dict of
    :data:`FIELDS`; a missing file has none."""
    if not path.exists():
        return iter(())
    return _records_v2(path) if is_v2(path) else _records_jsonl(path)
