"""``{namespace.name}`` templates of declarative HTTP journeys: parsed once, rendered per request.

Deliberately tiny and safe: a placeholder names one variable, nothing is evaluated, and every name
is checked when the file is validated. ``{{`` and ``}}`` stand for literal braces::

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
  ``extract``.

A string that is exactly one placeholder renders to the variable's own value (``"{user.id}"`` in a
JSON body stays a number); anything else renders to text.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass

from loadkit.spec.errors import Invalid
from loadkit.spec.values import did_you_mean

#: variables every template may use, besides ``env.*`` and the journey's own ``vars.*``
BUILTIN_VARIABLES = (
    "user.id",
    "user.index",
    "random.uuid",
    "random.int",
    "step.idempotency_key",
)
NAMESPACES = ("user", "random", "step", "env", "vars")

_TOKEN = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\.[A-Za-z_][A-Za-z0-9_]*\Z")


@dataclass(frozen=True, slots=True)
class Var:
    """One placeholder: the variable's full name, e.g. ``user.id``."""

    name: str


@dataclass(frozen=True, slots=True)
class Template:
    """A parsed template: literal text and :class:`Var` parts, in order."""

    source: str
    parts: tuple[str | Var, ...]

    @property
    def variables(self) -> tuple[str, ...]:
        return tuple(part.name for part in self.parts if isinstance(part, Var))

    def render(self, values: Mapping[str, object]) -> object:
        """Fill in the placeholders; a missing variable raises ``KeyError`` naming it."""
        if len(self.parts) == 1 and isinstance(self.parts[0], Var):
            return values[self.parts[0].name]
        return "".join(p if isinstance(p, str) else str(values[p.name]) for p in self.parts)


def parse_template(text: str, *, extracted: Collection[str] = ()) -> Template:
    """Parse ``text``; ``extracted`` names the ``vars.*`` that earlier steps provide.

    Raises :class:`Invalid` for a lone brace or an unknown variable (with "did you mean").
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
            _check_name(match[1].strip(), text, extracted)
            if "".join(literal):
                parts.append("".join(literal))
            literal = []
            parts.append(Var(match[1].strip()))
    literal.append(text[pos:])
    if "".join(literal):
        parts.append("".join(literal))
    return Template(text, tuple(parts))


def render_json(value: object, values: Mapping[str, object]) -> object:
    """Render every :class:`Template` inside a JSON body template (dicts, lists, scalars)."""
    if isinstance(value, Template):
        return value.render(values)
    if isinstance(value, dict):
        return {key: render_json(item, values) for key, item in value.items()}
    if isinstance(value, list):
        return [render_json(item, values) for item in value]
    return value


def _check_name(name: str, text: str, extracted: Collection[str]) -> None:
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
        f"unknown variable '{{{name}}}'{hint} (expected one of: {listing}, env.*, vars.*)"
    )
