"""Problems found in a spec file, and the one error that carries all of them.

Validation never stops at the first mistake: every one becomes a :class:`Problem` naming the place
(``file:line:column``), the field path and what was expected, and the whole list is raised as one
:class:`SpecError` (a :class:`~loadkit.errors.ConfigError`, so the CLI exits with code 2)::

    raise SpecError([Problem("p.yaml", 3, 5, "stages[0].duration", "expected a duration")])
    # str(error) == "p.yaml:3:5: stages[0].duration: expected a duration"
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from loadkit.errors import ConfigError


@dataclass(frozen=True, slots=True)
class Problem:
    """One mistake in one file; ``line`` and ``column`` count from 1 (``None``: the whole file)."""

    file: str
    line: int | None
    column: int | None
    field: str
    message: str

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}:{self.column}"
        return (
            f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"
        )


class SpecError(ConfigError):
    """Every problem found in one or more files, sorted by file, line and column.

    The message is one ``file:line:col: field: message`` line per problem, the form editors and
    terminals turn into links::

        except SpecError as exc:
            for problem in exc.problems: print(problem)
    """

    def __init__(self, problems: Iterable[Problem]) -> None:
        ordered = tuple(sorted(problems, key=_position))
        if not ordered:
            raise ValueError("a SpecError needs at least one problem")
        super().__init__("\n".join(str(p) for p in ordered))
        self.problems = ordered


class Problems:
    """Collects the problems of one file (up to ``limit``), then raises them as one
    :class:`SpecError`; for readers of files that are not YAML (CSV traffic, data feeders)::

        problems = Problems("traffic.csv")
        problems.add(3, 1, "count", "expected a whole number")
        problems.raise_if_any()
    """

    def __init__(self, file: str, *, limit: int | None = None) -> None:
        self.file = file
        self.limit = limit
        self.items: list[Problem] = []

    def __len__(self) -> int:
        return len(self.items)

    def add(self, line: int | None, column: int | None, field: str, message: str) -> None:
        self.items.append(Problem(self.file, line, column, field, message))

    @property
    def full(self) -> bool:
        """True once ``limit`` problems were found: a reader may stop looking."""
        return self.limit is not None and len(self.items) >= self.limit

    def raise_if_any(self) -> None:
        if self.items:
            items = list(self.items)
            if self.full:
                items.append(
                    Problem(self.file, None, None, "", f"stopped after {self.limit} problems")
                )
            raise SpecError(items)


def _position(problem: Problem) -> tuple[str, int, int]:
    return (problem.file, problem.line or 0, problem.column or 0)


class Invalid(Exception):
    """What a value parser raises: one thing wrong with one value, without its place.

    The validator that called the parser adds the file, line, column and field::

        raise Invalid("expected a duration like '90s', got 'soon'")
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
