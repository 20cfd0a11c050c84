"""Test data for journeys: CSV files a profile names under ``data:``, and which row an action uses.

A data source is a CSV file whose first line names the columns; templates use its values as
``{data.SOURCE.COLUMN}``. Its *mode* says which row a user action takes:

- ``per-user`` (the default): virtual user ``i`` always uses row ``i`` (the file needs a row per
  user, ``users.accounts``): accounts and passwords, one identity per user;
- ``per-user-random``: each user keeps one row too, but the rows are dealt out in a shuffled order
  (the same for the same ``seed``), so a big file is sampled rather than read from the top;
- ``shared-sequential``: every action takes the next row, whoever runs it, wrapping round at the
  end (load processes interleave: process ``s`` of ``n`` takes rows ``s``, ``s + n``…);
- ``shared-random``: every action takes a row at random (from the seeded generator).

All the steps of one action see the same row of a source::

    source = read_csv("number,cvv\\n4111,123\\n", "cards.csv", name="cards")
    source.columns, source.rows  # ('number', 'cvv'), (('4111', '123'),)
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from loadkit.spec.errors import Problem, SpecError

#: the largest data file loadkit reads: every load process (remote workers too) gets a copy
MAX_DATA_BYTES = 64 * 1024 * 1024
NAME_PATTERN = r"[A-Za-z0-9_-]+"
#: where the data files come from: read from disk (``True``), not read at all (``False``: the
#: profile's structure only, e.g. for a report), or given as text by the file name the profile
#: wrote (what a remote load worker is sent)
DataFiles = bool | Mapping[str, str]
_NUMBER = re.compile(r"\s*[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?\s*\Z")


class DataMode(StrEnum):
    """Which row of a data source a user action takes (see the module notes)."""

    PER_USER = "per-user"
    PER_USER_RANDOM = "per-user-random"
    SHARED_SEQUENTIAL = "shared-sequential"
    SHARED_RANDOM = "shared-random"

    @property
    def per_user(self) -> bool:
        return self in (DataMode.PER_USER, DataMode.PER_USER_RANDOM)


@dataclass(frozen=True, slots=True)
class DataSource:
    """One ``data:`` entry: ``file`` as the profile wrote it, ``columns`` from its header and
    ``rows`` of values (text; a number for the columns listed in ``numbers``). ``rows`` is empty
    when the profile was read without its data (``load_profile(path, data=False)``)."""

    name: str
    file: str
    mode: DataMode = DataMode.PER_USER
    columns: tuple[str, ...] = ()
    rows: tuple[tuple[object, ...], ...] = field(default=(), repr=False)
    numbers: tuple[str, ...] = ()

    def row_dict(self, index: int) -> dict[str, object]:
        """Row ``index`` as ``{column: value}``."""
        return dict(zip(self.columns, self.rows[index], strict=True))


def read_csv(text: str, file: str, *, name: str, numbers: tuple[str, ...] = ()) -> DataSource:
    """The columns and rows of CSV ``text`` (``file`` names it in messages). An empty file gives
    no columns, a header alone no rows (the caller says where the file was named). Raises
    :class:`SpecError` at ``file:line`` for a header with an empty or repeated name, a row with
    the wrong number of values, a ``numbers`` column the header lacks, or a value of one that is
    not a number. Blank lines are skipped."""
    problems: list[Problem] = []
    reader = csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline=""))
    try:
        header = next((row for row in reader if any(row)), None)
    except csv.Error as exc:
        raise SpecError([Problem(file, reader.line_num, 1, "", f"not CSV: {exc}")]) from None
    if header is None:
        return DataSource(name, file)
    header_line = reader.line_num

    def problem(line: int, message: str) -> None:
        problems.append(Problem(file, line, 1, "", message))

    columns = tuple(column.strip() for column in header)
    seen: set[str] = set()
    for position, column in enumerate(columns, 1):
        if not column:
            problem(header_line, f"column {position} of the header has no name")
        elif column in seen:
            problem(header_line, f"column '{column}' is named twice in the header")
        seen.add(column)
    for column in numbers:
        if column not in columns:
            problem(header_line, f"'numbers' names column '{column}', which the header lacks")
    wanted = {columns.index(c) for c in numbers if c in columns}
    rows: list[tuple[object, ...]] = []
    try:
        for row in reader:
            if not any(row):
                continue
            line = reader.line_num
            if len(row) != len(columns):
                problem(line, f"{len(row)} values, but the header names {len(columns)} columns")
            elif wanted:
                rows.append(
                    tuple(
                        _number(v, columns[i], line, problem) if i in wanted else v
                        for i, v in enumerate(row)
                    )
                )
            else:
                rows.append(tuple(row))
            if len(problems) >= 20:
                break  # a file in the wrong format: twenty lines say so well enough
    except csv.Error as exc:
        problem(reader.line_num, f"not CSV: {exc}")
    if problems:
        raise SpecError(problems)
    return DataSource(name, file, columns=columns, rows=tuple(rows), numbers=numbers)


def _number(text: str, column: str, line: int, problem: Callable[[int, str], None]) -> object:
    """A ``numbers`` column's value: an int when it is whole, else a float."""
    if not _NUMBER.match(text) or not math.isfinite(float(text)):
        problem(line, f"column '{column}' is listed under 'numbers', but {text!r} is not a number")
        return text
    if re.fullmatch(r"\s*[+-]?\d+\s*", text):
        return int(text)
    return float(text)
