"""Validation of a scenario's steady-state hypothesis (probes, probe traffic), its abort
conditions and its safety block; :mod:`loadkit.chaos.spec` reads the rest of the file::

    steady = read_steady(ctx, doc.root.items["steady_state"])
    conditions = read_aborts(ctx, doc.root.items["abort"], {p.name for p in steady.probes})
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

from loadkit.chaos.scenario import (
    AbortCondition,
    AbortWhen,
    ProbeKind,
    ProbeSpec,
    Request,
    SteadyState,
    Traffic,
)
from loadkit.spec.errors import Invalid
from loadkit.spec.loader import Map, Node
from loadkit.spec.schema import Context, Fields, Keys, items_of
from loadkit.spec.values import (
    describe,
    did_you_mean,
    parse_bool,
    parse_choice,
    parse_duration,
    parse_int,
    parse_percent,
    parse_rate,
    parse_text,
)

STEADY_KEYS = Keys(optional=("probes", "before", "after", "recover_within", "traffic"))
TRAFFIC_KEYS = Keys(optional=("rate", "request"))
PROBE_KEYS: dict[ProbeKind, tuple[str, ...]] = {
    ProbeKind.READYZ: ("target", "timeout"),
    ProbeKind.INVARIANTS: ("timeout",),
    ProbeKind.HTTP: ("url", "status", "timeout"),
    ProbeKind.BUSY_RATE: ("max", "window"),
    ProbeKind.P95: ("max", "window"),
}
ABORT_KEYS: dict[AbortWhen, tuple[str, ...]] = {
    AbortWhen.BUSY_RATE: ("above", "window", "for"),
    AbortWhen.P95: ("above", "window", "for"),
    AbortWhen.PROBE: ("probe", "for", "every"),
}
SAFETY_KEYS = Keys(optional=("allow",))
NAME = r"[A-Za-z0-9][A-Za-z0-9_.-]*"
NAME_HINT = "a name of letters, digits, '_', '.' or '-'"
MAX_TRAFFIC = 100.0


def is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def read_steady(ctx: Context, node: Node) -> SteadyState:
    """The ``steady_state`` block: probes (unique names), before/after, traffic."""
    fields = Fields(ctx, node, STEADY_KEYS, "steady_state block")
    probes: list[ProbeSpec] = []
    names: dict[str, str] = {}
    for item in fields.sub("probes", lambda n: items_of(ctx, n, "probes", "probe")) or ():
        probe = _probe(ctx, item)
        if probe is None:
            continue
        if probe.name in names:
            ctx.error(item, f"duplicate probe name '{probe.name}' (also {names[probe.name]})")
            continue
        names[probe.name] = item.path
        probes.append(probe)
    return SteadyState(
        probes=tuple(probes),
        before=fields.get("before", parse_bool, True),
        after=fields.get("after", parse_bool, True),
        recover_within_s=fields.get(
            "recover_within", lambda v: parse_duration(v, allow_zero=True), 30.0
        ),
        traffic=fields.sub("traffic", lambda n: _traffic(ctx, n)) or Traffic(),
    )


def _probe(ctx: Context, node: Node) -> ProbeSpec | None:
    type_node = node.items.get("type") if isinstance(node, Map) else None
    kind = ctx.read(type_node, _probe_kind, None) if type_node is not None else None
    extra = PROBE_KEYS[kind] if kind else tuple({k for ks in PROBE_KEYS.values() for k in ks})
    required = ("name", "type") + (("max",) if kind in (ProbeKind.BUSY_RATE, ProbeKind.P95) else ())
    required += ("url",) if kind is ProbeKind.HTTP else ()
    fields = Fields(
        ctx, node, Keys(required, tuple(k for k in extra if k not in required)), "probe"
    )
    name = fields.get("name", lambda v: parse_text(v, pattern=NAME, hint=NAME_HINT), "")
    if kind is None or not fields.ok:
        return None
    limit = parse_percent if kind is ProbeKind.BUSY_RATE else parse_duration
    return ProbeSpec(
        name=name,
        kind=kind,
        max=fields.get("max", limit, None),
        window_s=fields.get("window", parse_duration, 10.0),
        timeout_s=fields.get("timeout", parse_duration, 2.0),
        target=fields.get(
            "target", lambda v: parse_text(v, pattern=NAME, hint=NAME_HINT), "wallets"
        ),
        url=fields.get("url", _probe_url, None),
        status=fields.get("status", lambda v: parse_int(v, minimum=100, maximum=599), 200),
    )


def _probe_kind(value: object) -> ProbeKind:
    return parse_choice(value, ProbeKind, "probe type")


def _probe_url(value: object) -> str:
    """An http(s) URL; where it may point is checked when the scenario starts (the run's
    allowlist, :mod:`loadkit.safety`)."""
    parts = urlsplit(value) if isinstance(value, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise Invalid(f"expected a URL like 'http://127.0.0.1:8080/health', got {describe(value)}")
    assert isinstance(value, str)
    return value


def _traffic(ctx: Context, node: Node) -> Traffic:
    fields = Fields(ctx, node, TRAFFIC_KEYS, "traffic block")
    return Traffic(
        rate=fields.get("rate", _traffic_rate, 4.0),
        request=fields.get(
            "request", lambda v: parse_choice(v, Request, "request"), Request.BALANCE
        ),
    )


def _traffic_rate(value: object) -> float:
    rate = parse_rate(value)
    if not 0 < rate <= MAX_TRAFFIC:
        raise Invalid(f"probe traffic is light: expected above 0 and at most 100/s, got {value}")
    return rate


# -- abort conditions and safety --------------------------------------------------------------


def read_aborts(ctx: Context, node: Node, probes: set[str]) -> tuple[AbortCondition, ...]:
    """The ``abort`` list; a ``probe`` condition must name one of ``probes``."""
    conditions = []
    for index, item in enumerate(items_of(ctx, node, "abort conditions", "abort condition")):
        when_node = item.items.get("when") if isinstance(item, Map) else None
        when = ctx.read(when_node, _when, None) if when_node is not None else None
        extra = ABORT_KEYS[when] if when else tuple({k for ks in ABORT_KEYS.values() for k in ks})
        required = ("when",) + (
            ("probe",) if when is AbortWhen.PROBE else ("above",) if when else ()
        )
        optional = ("name", *(k for k in extra if k not in required))
        fields = Fields(ctx, item, Keys(required, optional), "abort condition")
        if when is None or not fields.ok:
            continue
        limit = parse_percent if when is AbortWhen.BUSY_RATE else parse_duration
        probe = fields.get("probe", lambda v: _probe_ref(v, probes), None)
        default_name = f"{when.value}-{index + 1}"
        conditions.append(
            AbortCondition(
                name=fields.get("name", lambda v: parse_text(v, pattern=NAME), default_name),
                when=when,
                above=fields.get("above", limit, None),
                window_s=fields.get("window", parse_duration, 10.0),
                for_s=fields.get("for", lambda v: parse_duration(v, allow_zero=True), 0.0),
                probe=probe,
                every_s=fields.get("every", parse_duration, 2.0),
            )
        )
    return tuple(conditions)


def _when(value: object) -> AbortWhen:
    return parse_choice(value, AbortWhen, "abort condition")


def _probe_ref(value: object, probes: set[str]) -> str:
    if not isinstance(value, str) or value not in probes:
        hint = did_you_mean(value, probes) if isinstance(value, str) else ""
        known = ", ".join(sorted(probes)) or "none: add them under steady_state.probes"
        raise Invalid(f"no steady-state probe named {describe(value)}{hint} (probes: {known})")
    return value


def read_safety(ctx: Context, node: Node) -> tuple[str, ...]:
    """The ``safety`` block: allowlist patterns of component names."""
    fields = Fields(ctx, node, SAFETY_KEYS, "safety block")
    patterns = []
    for item in fields.sub("allow", lambda n: items_of(ctx, n, "target patterns", "pattern")) or ():
        pattern = ctx.read(item, _pattern, "")
        if pattern:
            patterns.append(pattern)
    return tuple(patterns)


def _pattern(value: object) -> str:
    text = value if isinstance(value, str) else ""
    if ":" in text or "/" in text or is_ip(text):
        raise Invalid(
            f"the allowlist names the stack's components (like 'wallet-*'), not addresses; "
            f"got {describe(value)}"
        )
    if not re.fullmatch(r"[A-Za-z0-9*?\[\]_.-]+", text):
        raise Invalid(f"expected a name or a pattern like 'wallet-*', got {describe(value)}")
    return text
