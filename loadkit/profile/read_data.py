"""Validation of a profile's ``data:`` block: CSV files journeys take values from.

Each entry names a source and its file, relative to the profile's folder, either as a path or as
a mapping with the mode (see :mod:`loadkit.profile.data`) and the columns to send as numbers::

    data:
      accounts: data/accounts.csv                  # per-user: user i logs in with row i
      cards: {file: data/cards.csv, mode: shared-random, numbers: [limit]}

The files are read while the profile is validated: a missing, empty or unreadable file, a row
with the wrong number of values, or a file with fewer rows than users in a per-user mode is a
problem at ``file:line`` like any other::

    sources, columns = read_data(ctx, node, base=Path("profiles"), accounts=1000)
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from loadkit.profile.data import (
    MAX_DATA_BYTES,
    NAME_PATTERN,
    DataFiles,
    DataMode,
    DataSource,
    read_csv,
)
from loadkit.spec.errors import Invalid, SpecError
from loadkit.spec.loader import Map, Node, Scalar
from loadkit.spec.schema import Context, Fields, Keys
from loadkit.spec.template import DataColumns
from loadkit.spec.values import describe, parse_choice, parse_text

SOURCE_KEYS = Keys(required=("file",), optional=("mode", "numbers"))


def read_data(
    ctx: Context, node: Node, *, base: Path, accounts: int, files: DataFiles = True
) -> tuple[tuple[DataSource, ...], DataColumns]:
    """The data sources, and the columns templates may name per source (``None`` where the file
    could not be read: its problem is recorded, and templates are not checked against it)."""
    if not isinstance(node, Map):
        ctx.error(
            node,
            "expected a mapping of data source names to CSV files, like "
            f"{{accounts: data/accounts.csv}}, got {describe(node.plain())}",
        )
        return (), {}
    sources: list[DataSource] = []
    columns: dict[str, tuple[str, ...] | None] = {}
    for name, value in node.items.items():
        if not _is_name(name):
            message = f"'{name}' is not a data source name (letters, digits, '_' or '-')"
            ctx.error_at(node.key_marks[name], value.path, message)
        source = _source(ctx, name, value, base=base, accounts=accounts, files=files)
        columns[name] = source.columns if source is not None and source.columns else None
        if source is not None:
            sources.append(source)
    return tuple(sources), columns


def _is_name(name: str) -> bool:
    return re.fullmatch(NAME_PATTERN, name) is not None


def _source(
    ctx: Context, name: str, node: Node, *, base: Path, accounts: int, files: DataFiles
) -> DataSource | None:
    file_node: Node = node
    mode: DataMode | None = DataMode.PER_USER
    numbers: tuple[str, ...] = ()
    if isinstance(node, Map):
        fields = Fields(ctx, node, SOURCE_KEYS, "data source")
        mode = fields.get("mode", lambda v: parse_choice(v, DataMode, "data mode"), None)
        if not fields.has("mode"):
            mode = DataMode.PER_USER
        numbers = fields.get("numbers", _columns, ())
        file_node = fields.child("file") or node
        if "file" not in node.items:
            return None
    elif not isinstance(node, Scalar):
        ctx.error(node, f"expected a CSV file like data/{name}.csv, or {{file: …, mode: …}}")
        return None
    file = ctx.read(file_node, _file, "")
    if not file:
        return None
    if mode is None:
        return None  # a bad mode, reported
    if files is False:
        return DataSource(name, file, mode, numbers=numbers)
    if isinstance(files, Mapping):
        text = files.get(file)
        if text is None:
            ctx.error(file_node, f"{file} was not sent with the profile")
            return None
        shown = file
    else:
        path = base / file
        shown = str(path)
        text = _read(ctx, file_node, path, file)
        if text is None:
            return None
    try:
        source = read_csv(text, shown, name=name, numbers=numbers)
    except SpecError as exc:
        ctx.problems.extend(exc.problems)
        return None
    if not source.columns:
        ctx.error(
            file_node, f"{file} is empty: expected a header line naming the columns, then rows"
        )
        return None
    if not source.rows:
        ctx.error(file_node, f"{file} has a header but no rows: add at least one line of values")
        return None
    if mode.per_user and len(source.rows) < accounts:
        ctx.error(
            file_node,
            f"{file} has {len(source.rows)} row{'s' if len(source.rows) != 1 else ''}, but mode "
            f"'{mode}' gives each of the {accounts} virtual users (users.accounts) a row of its "
            "own: add rows, lower users.accounts, or share the rows "
            "(mode: shared-sequential or shared-random)",
        )
        return None
    return DataSource(name, file, mode, source.columns, source.rows, numbers)


def _file(value: object) -> str:
    text = parse_text(value, hint="a CSV file like data/accounts.csv")
    if not text.lower().endswith(".csv"):
        raise Invalid(f"expected a CSV file (*.csv), got {describe(value)}")
    return text


def _columns(value: object) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise Invalid(f"expected a list of column names like [amount], got {describe(value)}")
    return tuple(dict.fromkeys(value))


def _read(ctx: Context, node: Node, path: Path, file: str) -> str | None:
    """The text of ``path``, or ``None`` after recording why it cannot be read."""
    where = "" if path.is_absolute() and Path(file).is_absolute() else f" (looked for {path})"
    try:
        size = path.stat().st_size
        if size > MAX_DATA_BYTES:
            ctx.error(
                node,
                f"{file} is {size / 2**20:.0f} MiB; data files are read into every load process, "
                f"up to {MAX_DATA_BYTES // 2**20} MiB",
            )
            return None
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        ctx.error(node, f"no such file: {file}{where}; paths start at the profile's folder")
    except IsADirectoryError:
        ctx.error(node, f"{file} is a folder, not a CSV file")
    except UnicodeDecodeError as exc:
        ctx.error(node, f"{file} is not UTF-8 text ({exc.reason})")
    except OSError as exc:
        ctx.error(node, f"cannot read {file}: {exc.strerror}")
    return None
