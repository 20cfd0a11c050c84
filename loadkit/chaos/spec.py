"""Validation of a chaos scenario file into a :class:`~loadkit.chaos.scenario.Scenario`.

Built on :mod:`loadkit.spec`: every mistake becomes a problem at ``file:line:column`` with its
field path, what was expected and a close match, and the whole file is checked before one
:class:`~loadkit.spec.errors.SpecError` is raised (exit 2)::

    scenario = load_scenario("chaos/db-crash.yaml")
    scenario.faults[0].type  # 'postgres.crash'
"""

from __future__ import annotations

import re
from pathlib import Path

from loadkit.chaos.catalog import FAULTS
from loadkit.chaos.faults.base import ALL_WALLETS, POSTGRES, FaultType, TargetKind, Window
from loadkit.chaos.hypothesis import NAME, NAME_HINT, is_ip, read_aborts, read_safety, read_steady
from loadkit.chaos.scenario import (
    ClockTime,
    FaultSpec,
    PlannedFault,
    Scenario,
    SteadyState,
    Where,
    overlaps,
)
from loadkit.spec.errors import Invalid
from loadkit.spec.loader import Document, Map, Node, load_document
from loadkit.spec.schema import Context, Fields, Keys, items_of
from loadkit.spec.values import (
    describe,
    did_you_mean,
    parse_duration,
    parse_text,
)

TOP_KEYS = Keys(
    required=("faults",),
    optional=("name", "description", "duration", "steady_state", "abort", "safety"),
)
FAULT_COMMON = ("name", "type", "target", "at", "duration", "until")
_PHASE_TIME = re.compile(r"(?P<phase>[A-Za-z][A-Za-z0-9_.#-]*?)\s*(?:\+\s*(?P<offset>.+))?")


def load_scenario(path: str | Path) -> Scenario:
    """Read, validate and build the scenario in ``path``; ``SpecError`` with every problem."""
    return read_scenario(load_document(path))


def read_scenario(doc: Document) -> Scenario:
    """Build the scenario of an already loaded document (see :func:`load_scenario`)."""
    ctx = Context(doc.file, doc.problems)
    root: Node = doc.root
    if "timeline" in doc.root.items:  # docs/design.md speaks of a timeline: say where it goes
        message = "write the timeline of faults under 'faults'"
        ctx.error_at(doc.root.key_marks["timeline"], "timeline", message)
        root = _without(doc.root, {"timeline"})
    keys = TOP_KEYS if root is doc.root else Keys((), TOP_KEYS.all)  # one mistake, one problem
    fields = Fields(ctx, root, keys, "scenario")
    name = fields.get("name", lambda v: parse_text(v, pattern=NAME, hint=NAME_HINT), "")
    steady = fields.sub("steady_state", lambda n: read_steady(ctx, n)) or SteadyState()
    probes = {p.name for p in steady.probes}
    scenario = Scenario(
        name=name or Path(doc.file).stem,
        description=fields.get("description", parse_text, ""),
        duration_s=fields.get("duration", parse_duration, None),
        steady_state=steady,
        faults=fields.sub("faults", lambda n: _faults(ctx, n)) or (),
        abort=fields.sub("abort", lambda n: read_aborts(ctx, n, probes)) or (),
        allow=fields.sub("safety", lambda n: read_safety(ctx, n)) or (),
        source=doc.file,
    )
    ctx.raise_if_any()
    return scenario


# -- faults -----------------------------------------------------------------------------------


def _faults(ctx: Context, node: Node) -> tuple[FaultSpec, ...]:
    faults: list[FaultSpec] = []
    seen: dict[str, str] = {}
    for index, item in enumerate(items_of(ctx, node, "faults", "fault")):
        fault = _fault(ctx, item, index)
        if fault is None:
            continue
        if fault.name in seen:
            ctx.error(
                item.items["name"] if isinstance(item, Map) and "name" in item.items else item,
                f"duplicate fault name '{fault.name}' (also {seen[fault.name]})",
            )
            continue
        seen[fault.name] = item.path
        faults.append(fault)
    if len(ctx.problems) == 0:
        # absolute times are known now: overlapping faults of one slot are a mistake in the file
        placed = [
            PlannedFault("", f, f.at.offset_s, f.at.offset_s + f.duration_s)
            for f in faults
            if f.at.phase is None and f.duration_s is not None
        ]
        for problem in overlaps(placed):
            ctx.problems.append(problem)
    return tuple(faults)


def _fault(ctx: Context, node: Node, index: int) -> FaultSpec | None:
    type_node = node.items.get("type") if isinstance(node, Map) else None
    kind: FaultType | None = None
    if type_node is not None:
        kind = ctx.read(type_node, _fault_type, None)
    own = tuple(p.name for p in kind.params) if kind else ()
    others = {p.name for k in FAULTS.values() for p in k.params} - set(own)
    required = ("type", "at") + (() if kind is None or kind.target_default else ("target",))
    optional = (*(k for k in FAULT_COMMON if k not in required), *own)
    fields = Fields(ctx, _without(node, others), Keys(required, optional), "fault")
    if not fields.ok:
        return None
    if kind is not None and isinstance(node, Map):
        for key in sorted(others & set(node.items)):
            listing = ", ".join(own) or "none"
            ctx.error_at(
                node.key_marks[key],
                f"{node.path}.{key}",
                f"'{key}' is not a parameter of {kind.name} (its parameters: {listing})",
            )
    at = fields.get("at", _clock_time, ClockTime(0.0))
    at = _placed(at, fields.child("at"), ctx)
    duration = fields.get("duration", parse_duration, None)
    until = fields.get("until", _clock_time, None)
    if until is not None:
        until = _placed(until, fields.child("until"), ctx)
    if duration is not None and until is not None:
        fields.error("until", "give 'duration' or 'until', not both")
    if kind is not None and kind.window is Window.INSTANT:
        for key in ("duration", "until"):
            if fields.has(key):
                fields.error(key, f"{kind.name} is one action: it takes no '{key}'")
    if (
        until is not None
        and until.phase is None
        and at.phase is None
        and until.offset_s <= at.offset_s
    ):
        fields.error("until", f"'{until}' is not after 'at' ({at})")
    if kind is None:
        return None
    default_name = f"{kind.name.split('.', 1)[1]}-{index + 1}"
    name = fields.get("name", lambda v: parse_text(v, pattern=NAME, hint=NAME_HINT), default_name)
    target = fields.get("target", lambda v: _target(v, kind), kind.target_default or "")
    params = {p.name: fields.get(p.name, p.parse, p.default) for p in kind.params}
    for key, message in kind.check(params) if kind.check else ():
        fields.error(key, message)
    where = Where(ctx.file, node.mark.line, node.mark.column, node.path)
    return FaultSpec(name, kind.name, target, at, duration, until, params, where)


def _without(node: Node, keys: set[str]) -> Node:
    """``node`` without ``keys`` (parameters of other fault types, reported on their own)."""
    if not isinstance(node, Map) or not keys & set(node.items):
        return node
    items = {k: v for k, v in node.items.items() if k not in keys}
    marks = {k: m for k, m in node.key_marks.items() if k not in keys}
    return Map(node.mark, node.path, items, marks)


def _fault_type(value: object) -> FaultType:
    if not isinstance(value, str):
        raise Invalid(f"expected a fault type like 'network.latency', got {describe(value)}")
    if value not in FAULTS:
        hint = did_you_mean(value, FAULTS)
        raise Invalid(f"unknown fault type '{value}'{hint} (see `loadkit chaos list`)")
    return FAULTS[value]


def _target(value: object, kind: FaultType) -> str:
    text = value.strip() if isinstance(value, str) else ""
    if kind.target is TargetKind.CONTAINER and text:
        from loadkit.chaos.faults.docker import check_selector

        return check_selector(text)
    if kind.target is TargetKind.COMMAND:
        if not re.fullmatch(r"[a-z][a-z0-9_-]{0,62}", text):
            raise Invalid(
                f"expected the name of a command of the system file (commands:), like "
                f"'cache-off', got {describe(value)}"
            )
        return text
    if not text or ":" in text or "/" in text or is_ip(text):
        raise Invalid(
            f"expected the name of one of the stack's components (like 'wallet-1', 'postgres' "
            f"or a proxy like 'wallet-1-postgres'), got {describe(value)}; faults go to the "
            "stack's components, never to addresses"
        )
    if not re.fullmatch(NAME, text):
        raise Invalid(f"expected {NAME_HINT}, got {describe(value)}")
    expected = {
        TargetKind.POSTGRES: (POSTGRES,),
        TargetKind.WALLETS: (ALL_WALLETS,),
    }.get(kind.target)
    if expected and text not in expected:
        hint = did_you_mean(text, expected)
        raise Invalid(f"{kind.name} acts on '{expected[0]}', got {describe(value)}{hint}")
    if kind.target is TargetKind.WALLET and text == POSTGRES:
        raise Invalid(f"{kind.name} acts on a wallet instance (or 'wallets'), not on postgres")
    if kind.target is TargetKind.PROXY and text in (POSTGRES, ALL_WALLETS):
        raise Invalid(
            f"{kind.name} acts on a Toxiproxy proxy (like 'wallet-1-postgres' or "
            f"'client-wallet-1'), got {describe(value)}"
        )
    return text


def _clock_time(value: object) -> ClockTime:
    """``90s``, ``1m30s`` (run clock) or ``midnight``, ``midnight+10s`` (after a phase starts)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        hint = f"; did you mean '{value:g}s'?" if value >= 0 else ""
        raise Invalid(
            f"expected a run-clock time like '90s' or a phase time like 'peak+10s', "
            f"got the bare number {describe(value)}{hint}"
        )
    if not isinstance(value, str) or not value.strip():
        raise Invalid(f"expected a time like '90s' or 'peak+10s', got {describe(value)}")
    text = value.strip()
    if text[0].isdigit() or text[0] in "-.":
        if text.startswith("-"):
            raise Invalid(f"a run-clock time cannot be negative, got {describe(value)}")
        return ClockTime(parse_duration(text, allow_zero=True))
    match = _PHASE_TIME.fullmatch(text)
    if not match:
        raise Invalid(f"expected a time like '90s' or 'peak+10s', got {describe(value)}")
    offset, seconds = match["offset"], 0.0
    if offset is not None:
        try:
            seconds = parse_duration(offset, allow_zero=True)
        except Invalid as exc:
            raise Invalid(
                f"in {describe(value)}, what follows '+' must be a duration like '10s' "
                f"({exc.message})"
            ) from None
    return ClockTime(seconds, match["phase"])


def _placed(time: ClockTime, node: Node | None, ctx: Context) -> ClockTime:
    if node is None:
        return time
    return ClockTime(time.offset_s, time.phase, Where(ctx.file, *_at(node), node.path))


def _at(node: Node) -> tuple[int, int]:
    return node.mark.line, node.mark.column


def summary(scenario: Scenario, file: str) -> str:
    """The one line ``loadkit validate`` prints for a valid scenario."""
    kinds = sorted({f.type for f in scenario.faults})
    probes = len(scenario.steady_state.probes)
    return (
        f"{file}: scenario '{scenario.name}': {len(scenario.faults)} "
        f"fault{'s' if len(scenario.faults) != 1 else ''} ({', '.join(kinds)}), "
        f"{probes} probe{'s' if probes != 1 else ''}, {len(scenario.abort)} abort "
        f"condition{'s' if len(scenario.abort) != 1 else ''}"
    )
