"""A tiny declarative reader for YAML mappings that records problems instead of raising.

A validator declares the keys a mapping may have, then reads each value through a parser; unknown
keys (with "did you mean"), missing required keys, wrong types and bad values all become
:class:`~loadkit.spec.errors.Problem` s in the shared :class:`Context`, and reading goes on so that
one run reports every mistake in the file::

    fields = Fields(ctx, node, Keys(required=("name", "duration"), optional=("curve",)))
    duration = fields.get("duration", parse_duration, default=0.0)
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from loadkit.spec.errors import Invalid, Problem, SpecError
from loadkit.spec.loader import Map, Mark, Node, Seq, child_path
from loadkit.spec.values import describe

T = TypeVar("T")


class Context:
    """The problems found so far in one file."""

    def __init__(self, file: str, problems: tuple[Problem, ...] = ()) -> None:
        self.file = file
        self.problems: list[Problem] = list(problems)

    def error(self, node: Node, message: str) -> None:
        """A problem with ``node``'s value, reported at the value."""
        self.error_at(node.mark, node.path, message)

    def error_at(self, mark: Mark, field: str, message: str) -> None:
        self.problems.append(Problem(self.file, mark.line, mark.column, field, message))

    def read(self, node: Node, parse: Callable[[object], T], default: T) -> T:
        """``parse(node's value)``, or ``default`` after recording what :class:`Invalid` said."""
        try:
            return parse(node.plain())
        except Invalid as exc:
            self.error(node, exc.message)
            return default

    def raise_if_any(self) -> None:
        if self.problems:
            raise SpecError(self.problems)


@dataclass(frozen=True)
class Keys:
    """The keys one kind of mapping accepts."""

    required: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()

    @property
    def all(self) -> tuple[str, ...]:
        return self.required + self.optional


class Fields:
    """Typed reads from one mapping node, checked against :class:`Keys` when it is created.

    ``ok`` is false when the node is not a mapping at all; every read then returns its default.
    """

    def __init__(self, ctx: Context, node: Node, keys: Keys, what: str = "mapping") -> None:
        self.ctx = ctx
        self.node = node
        self.items: dict[str, Node] = {}
        self.ok = isinstance(node, Map)
        if not isinstance(node, Map):
            ctx.error(
                node, f"expected a {what} of 'key: value' lines, got {describe(node.plain())}"
            )
            return
        self.items = node.items
        suggested = set()  # a misspelt required key is one mistake, not also a missing key
        for key, mark in node.key_marks.items():
            if key not in keys.all:
                close = difflib.get_close_matches(key, keys.all, n=1, cutoff=0.6)
                suggested.update(close)
                hint = (
                    f"; did you mean '{close[0]}'?"
                    if close
                    else f" (expected one of: {', '.join(keys.all)})"
                )
                ctx.error_at(mark, child_path(node.path, key), f"unknown key '{key}'{hint}")
        for key in keys.required:
            if key not in node.items and key not in suggested:
                field = child_path(node.path, key)
                ctx.error_at(node.mark, field, f"missing required key '{key}' in this {what}")

    def has(self, key: str) -> bool:
        return key in self.items

    def child(self, key: str) -> Node | None:
        return self.items.get(key)

    def get(self, key: str, parse: Callable[[object], T], default: T) -> T:
        """The parsed value of ``key``; ``default`` when absent or invalid (a problem recorded)."""
        node = self.items.get(key)
        return default if node is None else self.ctx.read(node, parse, default)

    def sub(self, key: str, parse: Callable[[Node], T]) -> T | None:
        """For structured values: ``parse(node)``, which records its own problems; ``None`` when
        ``key`` is absent."""
        node = self.items.get(key)
        return None if node is None else parse(node)

    def error(self, key: str, message: str) -> None:
        """A problem with the value of ``key`` (or with the mapping, when ``key`` is absent)."""
        node = self.items.get(key)
        if node is not None:
            self.ctx.error(node, message)
        else:
            self.ctx.error(self.node, message)


def items_of(ctx: Context, node: Node, what: str, one: str) -> tuple[Node, ...]:
    """The items of a list of ``what`` (``one`` of them: its singular); a problem, and no items,
    when the node is not a list or the list is empty."""
    if not isinstance(node, Seq):
        ctx.error(node, f"expected a list of {what} ('- ' lines), got {describe(node.plain())}")
        return ()
    if not node.items:
        ctx.error(node, f"expected at least one {one}, got an empty list")
    return node.items
