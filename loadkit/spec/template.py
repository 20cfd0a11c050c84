"""``{namespace.name}`` templates of declarative HTTP journeys: parsed once, rendered per request.

Deliberately tiny and safe: a placeholder names one variable (or one random function with its
arguments), nothing is evaluated, and every name is checked when the file is validated. ``{{`` and
``}}`` stand for literal braces::

    template = parse_template("/accounts/{user.id}/orders/{random.uuid}")
    template.render({"user.id": 7, "random.uuid": "5f0c…"})  # "/accounts/7/orders/5f0c…"

Variables:

- ``user.id`` (``users.first_id`` + index) and ``user.index`` (0-based) of the virtual user;
- ``random.uuid`` (a new UUID4 each time) and ``random.int`` (0 to 2**31 - 1);
- ``step.idempotency_key``: one UUID per step of one user action, the same on every retry when
  ``client.retries.reuse_idempotency_key`` is true;
- ``env.NAME``: the environment variable ``NAME`` of the loadkit process (checked when the run
  starts, not when the file is validated, since files move between machines);
- ``vars.NAME``: a value an earlier step of the same journey pulled from its JSON answer with
  ``extract``;
- ``data.SOURCE.COLUMN``: a column of the row the action took from the profile's data file
  ``SOURCE`` (``data:``; the file's header names the columns).

Random functions take their arguments after a space, and draw from the run's seeded generator:

- ``{random.int 1..500}``: a whole number from 1 to 500, both included;
- ``{random.number 0.01..99.99}``: a number in the range, with as many decimals as the bounds;
- ``{random.choice [card, wallet, "bank, CN"]}``: one item of the list (numbers stay numbers;
  quote an item that holds a comma or must stay text, like ``'007'``).

A string that is exactly one placeholder renders to the value itself (``"{user.id}"`` in a JSON
body stays a number); anything else renders to text.
"""

from __future__ import annotations

import random
import re
import uuid
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass

from loadkit.spec.errors import Invalid
from loadkit.spec.values import did_you_mean

#: variables every template may use, besides ``env.*``, the journey's own ``vars.*`` and ``data.*``
BUILTIN_VARIABLES = (
    "user.id",
    "user.index",
    "random.uuid",
    "random.int",
    "step.idempotency_key",
)
#: placeholders that take arguments: ``{random.int 1..500}``
FUNCTIONS = ("random.int", "random.number", "random.choice")
NAMESPACES = ("user", "random", "step", "env", "vars", "data")
#: the columns of each data source a template may name (``None``: the file could not be read,
#: so any column is accepted and the file's own problem is reported instead)
DataColumns = Mapping[str, Collection[str] | None]

_TOKEN = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\.[A-Za-z_][A-Za-z0-9_]*\Z")
_DATA_NAME = re.compile(r"data\.([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)\Z")
_CALL = re.compile(r"(\S+)\s+(.+)\Z", re.DOTALL)
_INT = re.compile(r"[+-]?\d+\Z")
_DECIMAL = re.compile(r"[+-]?(\d+)(?:\.(\d+))?\Z")
_RANGE = re.compile(r"\s*([+-]?[\d.]+)\s*\.\.\s*([+-]?[\d.]+)\s*\Z")


@dataclass(frozen=True, slots=True)
class Var:
    """One placeholder: the variable's full name (``user.id``), and for a random function its
    parsed arguments: ``(low, high)`` for ``random.int``, ``(low, high, decimals)`` for
    ``random.number``, the items for ``random.choice`` (``None`` for a plain variable)."""

    name: str
    args: tuple[object, ...] | None = None

    def draw(self, rng: random.Random) -> object:
        """A value of a ``random.*`` placeholder: ``Var("random.int", (1, 6)).draw(rng)`` → 4.
        ``random.uuid`` is never drawn from ``rng``: a key must not repeat between runs."""
        args = self.args
        if self.name == "random.uuid":
            return str(uuid.uuid4())
        if args is None:
            if self.name == "random.int":
                return rng.randrange(2**31)
            raise ValueError(f"{self.name} is a variable, not a random value")
        if self.name == "random.int":
            low, high = args
            assert isinstance(low, int) and isinstance(high, int)
            return rng.randint(low, high)
        if self.name == "random.number":
            low, high, decimals = args
            assert isinstance(low, float) and isinstance(high, float) and isinstance(decimals, int)
            value = round(rng.uniform(low, high), decimals)
            return value if decimals else int(value)
        return args[rng.randrange(len(args))]


#: gives the value of one function placeholder when a template renders
Draw = Callable[[Var], object]


@dataclass(frozen=True, slots=True)
class Template:
    """A parsed template: literal text and :class:`Var` parts, in order."""

    source: str
    parts: tuple[str | Var, ...]

    @property
    def variables(self) -> tuple[str, ...]:
        return tuple(part.name for part in self.parts if isinstance(part, Var))

    def render(self, values: Mapping[str, object], draw: Draw | None = None) -> object:
        """Fill in the placeholders: variables from ``values`` (a missing one raises ``KeyError``
        naming it), ``random.*`` ones from ``draw`` (without it: random functions from the
        module's own generator, ``random.uuid`` and ``random.int`` from ``values``)."""
        if len(self.parts) == 1 and isinstance(self.parts[0], Var):
            return value_of(self.parts[0], values, draw)
        return "".join(
            p if isinstance(p, str) else str(value_of(p, values, draw)) for p in self.parts
        )


def value_of(var: Var, values: Mapping[str, object], draw: Draw | None = None) -> object:
    """The value of one placeholder (see :meth:`Template.render`): every ``random.*`` one comes
    from ``draw`` when it is given."""
    if draw is not None and var.name.startswith("random."):
        return draw(var)
    if var.args is None:
        return values[var.name]
    return var.draw(_RNG)


#: draws of a template rendered without a generator of its own (tests, one-off renders)
_RNG = random.Random()


def parse_template(
    text: str, *, extracted: Collection[str] = (), data: DataColumns | None = None
) -> Template:
    """Parse ``text``; ``extracted`` names the ``vars.*`` that earlier steps provide, ``data`` the
    profile's data sources and their columns (``None``: ``data.*`` is not checked).

    Raises :class:`Invalid` for a lone brace, an unknown variable (with "did you mean") or a
    random function's bad arguments.
    """
    parts: list[str | Var] = []
    literal: list[str] = []
    pos = 0
    for match in _TOKEN.finditer(text):
        literal.append(text[pos : match.start()])
        pos = match.end()
        token = match[0]
        if token in ("{{", "}}"):
            literal.append(token[0])
        elif match[1] is None:
            raise Invalid(f"a lone '{token}' in {text!r}; write '{token * 2}' for a literal brace")
        else:
            var = _placeholder(match[1].strip(), text, extracted, data)
            if "".join(literal):
                parts.append("".join(literal))
            literal = []
            parts.append(var)
    literal.append(text[pos:])
    if "".join(literal):
        parts.append("".join(literal))
    return Template(text, tuple(parts))


def render_json(value: object, values: Mapping[str, object], draw: Draw | None = None) -> object:
    """Render every :class:`Template` inside a JSON body template (dicts, lists, scalars)."""
    if isinstance(value, Template):
        return value.render(values, draw)
    if isinstance(value, dict):
        return {key: render_json(item, values, draw) for key, item in value.items()}
    if isinstance(value, list):
        return [render_json(item, values, draw) for item in value]
    return value


def _placeholder(
    inner: str, text: str, extracted: Collection[str], data: DataColumns | None
) -> Var:
    call = _CALL.match(inner)
    if call is None:
        if inner in FUNCTIONS[1:]:  # random.int alone is the variable (0 to 2**31 - 1)
            raise Invalid(f"'{{{inner}}}' needs its arguments, like {_USAGE[inner]}")
        _check_name(inner, text, extracted, data)
        return Var(inner)
    name, argument = call[1], call[2].strip()
    if name not in FUNCTIONS:
        _check_name(name, text, extracted, data)  # an unknown name: say so first
        usage = "; ".join(_USAGE.values())
        raise Invalid(f"'{{{inner}}}' in {text!r}: {name} takes no arguments (functions: {usage})")
    return Var(name, _ARGUMENTS[name](argument, inner))


def _check_name(name: str, text: str, extracted: Collection[str], data: DataColumns | None) -> None:
    if name.startswith("data."):
        _check_data(name, data)
        return
    known = [*BUILTIN_VARIABLES, *(f"vars.{v}" for v in extracted)]
    hint = did_you_mean(f"{{{name}}}", [f"{{{k}}}" for k in known])
    if not _NAME.match(name):
        hint = hint or " (variables look like {user.id} or {env.NAME})"
        raise Invalid(f"'{{{name}}}' in {text!r} is not a variable{hint}")
    namespace = name.split(".", 1)[0]
    if namespace == "env" or name in known:
        return
    if namespace == "vars":
        available = ", ".join(sorted(extracted)) or "none"
        raise Invalid(
            f"unknown variable '{{{name}}}'{hint} (an earlier step must 'extract' it; "
            f"extracted so far: {available})"
        )
    listing = ", ".join(BUILTIN_VARIABLES)
    raise Invalid(
        f"unknown variable '{{{name}}}'{hint} (expected one of: {listing}, env.*, vars.*, "
        "data.SOURCE.COLUMN, or a function like {random.int 1..500})"
    )


def _check_data(name: str, data: DataColumns | None) -> None:
    """``data.SOURCE.COLUMN``: the source must be declared under ``data:``, the column must be
    in its file's header (only the form is checked when ``data`` is ``None``)."""
    match = _DATA_NAME.match(name)
    if match is None:
        raise Invalid(
            f"'{{{name}}}' is not a data column; write {{data.SOURCE.COLUMN}}, like "
            "{data.cards.number}"
        )
    source, column = match[1], match[2]
    if data is None:
        return
    if source not in data:
        declared = ", ".join(data) or "none: declare files under 'data:'"
        raise Invalid(
            f"unknown data source '{source}' in '{{{name}}}'{did_you_mean(source, data)} "
            f"(data sources: {declared})"
        )
    columns = data[source]
    if columns is not None and column not in columns:
        raise Invalid(
            f"data source '{source}' has no column '{column}'{did_you_mean(column, columns)} "
            f"(its columns: {', '.join(columns)})"
        )


# -- random functions ------------------------------------------------------------------------

_USAGE = {
    "random.int": "{random.int 1..500}",
    "random.number": "{random.number 0.01..99.99}",
    "random.choice": "{random.choice [a, b, c]}",
}


def _int_range(argument: str, inner: str) -> tuple[object, ...]:
    match = _RANGE.match(argument)
    if match is None or not (_INT.match(match[1]) and _INT.match(match[2])):
        raise Invalid(f"'{{{inner}}}': expected whole numbers like {_USAGE['random.int']}")
    low, high = int(match[1]), int(match[2])
    if high < low:
        raise Invalid(f"'{{{inner}}}': the range ends ({high}) below where it starts ({low})")
    return low, high


def _number_range(argument: str, inner: str) -> tuple[object, ...]:
    match = _RANGE.match(argument)
    bounds = [_DECIMAL.match(match[1]), _DECIMAL.match(match[2])] if match else [None]
    if match is None or not all(bounds):
        raise Invalid(f"'{{{inner}}}': expected numbers like {_USAGE['random.number']}")
    low, high = float(match[1]), float(match[2])
    if high < low:
        raise Invalid(f"'{{{inner}}}': the range ends ({match[2]}) below where it starts")
    decimals = max(len(b[2] or "") for b in bounds if b is not None)
    return low, high, decimals


def _choice_list(argument: str, inner: str) -> tuple[object, ...]:
    if not (argument.startswith("[") and argument.endswith("]")):
        raise Invalid(f"'{{{inner}}}': expected a list like {_USAGE['random.choice']}")
    items: list[object] = []
    for raw in _split_items(argument[1:-1], inner):
        if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "'\"":
            items.append(raw[1:-1])
        elif _INT.match(raw):
            items.append(int(raw))
        elif _DECIMAL.match(raw):
            items.append(float(raw))
        else:
            items.append(raw)
    if not items:
        raise Invalid(f"'{{{inner}}}': the list is empty; give at least one item")
    return tuple(items)


def _split_items(body: str, inner: str) -> list[str]:
    """``a, 'b, c', 3`` → ``["a", "'b, c'", "3"]``: commas inside quotes do not split."""
    items: list[str] = []
    current: list[str] = []
    quote = ""
    for char in body:
        if quote:
            current.append(char)
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
            current.append(char)
        elif char == ",":
            items.append("".join(current).strip())
            current = []
        else:
            current.append(char)
    if quote:
        raise Invalid(f"'{{{inner}}}': a quote ({quote}) is never closed")
    items.append("".join(current).strip())
    if items == [""]:
        return []
    if any(not item for item in items):
        raise Invalid(f"'{{{inner}}}': an empty item in the list (two commas in a row?)")
    return items


_ARGUMENTS: dict[str, Callable[[str, str], tuple[object, ...]]] = {
    "random.int": _int_range,
    "random.number": _number_range,
    "random.choice": _choice_list,
}
