"""Validation of a profile's ``stages:`` list into :class:`~loadkit.profile.model.Stage` values.

An entry is a stage, or a ``repeat`` group whose stages run ``repeat`` times in order (their names
get ``#1``, ``#2``… so every phase stays distinct in reports)::

    - {name: evening, duration: 2m, rate: 300/s}
    - repeat: 3
      stages: [{name: burst, duration: 20s, rate: 2000/s}, {name: lull, duration: 40s, rate: 300/s}]
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field

from loadkit.profile.model import MIN_STAGE_RUN_S, Curve, LoadModel, Stage
from loadkit.spec.loader import Map, Node
from loadkit.spec.schema import Context, Fields, Keys, items_of
from loadkit.spec.values import (
    did_you_mean,
    parse_choice,
    parse_duration,
    parse_int,
    parse_number,
    parse_percent,
    parse_rate,
    parse_text,
)

STAGE_KEYS = Keys(
    required=("name", "duration"),
    optional=(
        *("rate", "users", "from", "curve", "variation"),
        *("amplitude", "period", "peak_at", "mix"),
    ),
)
GROUP_KEYS = Keys(required=("repeat", "stages"))
SINE_KEYS = ("amplitude", "period", "peak_at")
RAMPS = (Curve.LINEAR, Curve.EXPONENTIAL)
MAX_REPEAT = 1000
NAME_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_.-]*"
_NAME_HINT = "a stage name of letters, digits, '_', '.' or '-'"


@dataclass
class _Env:
    """What checking one stage needs from the rest of the profile."""

    journeys: Collection[str] | None  # names a 'mix' may weigh; None: unknown, skip the check
    time_scale: float
    accounts: int
    names: dict[str, str] = field(default_factory=dict)  # stage name → path of its definition


@dataclass
class _Draft:
    """One stage as written; a repeat group expands it into several :class:`Stage` s."""

    fields: Fields
    valid: bool
    name: str
    duration_s: float
    model: LoadModel | None
    target: float
    start: float | None
    curve: Curve
    variation: float
    amplitude: float
    period_s: float
    peak_at_s: float
    mix: dict[str, float]


def read_stages(
    ctx: Context,
    node: Node,
    *,
    journeys: Collection[str] | None,
    time_scale: float,
    accounts: int,
) -> tuple[tuple[Stage, ...], LoadModel]:
    """The expanded stages and the profile's model (open: ``rate``, closed: ``users``)."""
    env = _Env(journeys, time_scale, accounts)
    sequence: list[tuple[_Draft, int | None]] = []  # (draft, repetition or None)
    for item in items_of(ctx, node, "stages", "stage"):
        if isinstance(item, Map) and "repeat" in item.items:
            sequence.extend(_group(ctx, item, env))
        elif (draft := _draft(ctx, item, env)) is not None:
            sequence.append((draft, None))
    model = _model([draft for draft, _ in sequence])
    stages: list[Stage] = []
    previous_end: float | None = 0.0
    for draft, repetition in sequence:
        stage = _expand(draft, repetition, previous_end)
        previous_end = None if stage is None else stage.end
        if stage is not None:
            stages.append(stage)
    return tuple(stages), model


def _group(ctx: Context, node: Map, env: _Env) -> list[tuple[_Draft, int | None]]:
    fields = Fields(ctx, node, GROUP_KEYS, "repeat group")
    times = fields.get("repeat", lambda v: parse_int(v, minimum=1, maximum=MAX_REPEAT), 0)
    inner = fields.child("stages")
    drafts = []
    for item in items_of(ctx, inner, "stages", "stage") if inner is not None else ():
        if isinstance(item, Map) and "repeat" in item.items:
            ctx.error(item.items["repeat"], "repeat groups cannot be nested")
        elif (draft := _draft(ctx, item, env)) is not None:
            drafts.append(draft)
    return [(draft, i) for i in range(1, times + 1) for draft in drafts]


def _draft(ctx: Context, node: Node, env: _Env) -> _Draft | None:
    before = len(ctx.problems)
    fields = Fields(ctx, node, STAGE_KEYS, "stage")
    if not fields.ok:
        return None
    name = fields.get("name", lambda v: parse_text(v, pattern=NAME_PATTERN, hint=_NAME_HINT), "")
    if name in env.names:
        fields.error("name", f"duplicate stage name '{name}' (also {env.names[name]})")
    elif name:
        env.names[name] = node.path
    duration = fields.get("duration", parse_duration, 1.0)
    if duration * env.time_scale < MIN_STAGE_RUN_S:
        fields.error(
            "duration",
            f"lasts {duration * env.time_scale:g}s of run time at time_scale {env.time_scale:g}; "
            f"a stage must last at least {MIN_STAGE_RUN_S:g}s so the per-second recorder sees it",
        )
    curve = fields.get("curve", lambda v: parse_choice(v, Curve, "curve"), Curve.STEP)
    if fields.has("from") and curve not in RAMPS:
        fields.error("from", f"'from' applies to linear and exponential curves, not to {curve}")
    for key in SINE_KEYS:
        if fields.has(key) and curve is not Curve.SINE:
            fields.error(key, f"'{key}' applies to sine curves only, not to {curve}")
    period = fields.get("period", parse_duration, duration)
    peak_at = fields.get("peak_at", lambda v: parse_duration(v, allow_zero=True), period / 2)
    if peak_at > period:
        fields.error("peak_at", f"the peak must fall within the period ({period:g}s)")
    model, target, start = _target(fields, env.accounts)
    draft = _Draft(
        fields=fields,
        valid=False,
        name=name,
        duration_s=duration,
        model=model,
        target=target,
        start=start,
        curve=curve,
        variation=fields.get("variation", parse_percent, 0.0),
        amplitude=fields.get("amplitude", parse_percent, 0.5),
        period_s=period,
        peak_at_s=peak_at,
        mix=fields.sub("mix", lambda n: _mix(ctx, n, env.journeys)) or {},
    )
    draft.valid = len(ctx.problems) == before
    return draft


def _target(fields: Fields, accounts: int) -> tuple[LoadModel | None, float, float | None]:
    """``(model, target level, explicit start level)`` from ``rate`` or ``users`` and ``from``."""
    if fields.has("rate") and fields.has("users"):
        fields.error("users", "set either 'rate' (arrivals per second) or 'users', not both")
        return None, 0.0, None
    if fields.has("rate"):
        rate = fields.get("rate", parse_rate, 0.0)
        return LoadModel.OPEN, rate, fields.get("from", parse_rate, None)
    if not fields.has("users"):
        message = "a stage needs 'rate' (arrivals per second) or 'users' (concurrent users)"
        fields.ctx.error(fields.node, message)
        return None, 0.0, None
    users, start = fields.get("users", _users, 0.0), fields.get("from", _users, None)
    for key, level in (("users", users), ("from", start)):
        if level is not None and level > accounts:
            message = f"{level:g} concurrent users, but users.accounts is only {accounts}"
            fields.error(key, message)
    return LoadModel.CLOSED, users, start


def _users(value: object) -> float:
    return float(parse_int(value, minimum=0))


def _mix(ctx: Context, node: Node, journeys: Collection[str] | None) -> dict[str, float]:
    if not isinstance(node, Map):
        ctx.error(node, "expected a mapping of journey names to weights, like {p2p_transfer: 5}")
        return {}
    mix = {}
    for name, weight in node.items.items():
        if journeys is not None and name not in journeys:
            hint = did_you_mean(name, journeys) or f" (journeys: {', '.join(journeys)})"
            ctx.error_at(node.key_marks[name], weight.path, f"unknown journey '{name}'{hint}")
        mix[name] = ctx.read(weight, lambda v: parse_number(v, minimum=0), 1.0)
    if mix and not any(mix.values()):
        ctx.error(node, "at least one journey needs a weight above 0")
    return mix


def _model(drafts: list[_Draft]) -> LoadModel:
    """The first stage's model; a later stage using the other one is a problem."""
    first = next((d for d in drafts if d.model is not None), None)
    if first is None or first.model is None:
        return LoadModel.OPEN
    key, other = ("rate", "users") if first.model is LoadModel.OPEN else ("users", "rate")
    for draft in drafts:
        if draft.model is not None and draft.model is not first.model:
            message = f"stage '{first.name}' sets '{key}', so every stage must; not '{other}'"
            draft.fields.error(other, message)
            draft.valid = False
    return first.model


def _expand(draft: _Draft, repetition: int | None, previous_end: float | None) -> Stage | None:
    """The stage, with its start level resolved; ``None`` once the draft has a problem."""
    if not draft.valid:
        return None
    start: float | None = draft.target
    if draft.curve in RAMPS:
        start = draft.start if draft.start is not None else previous_end
    if start is None:
        return None  # the previous stage is invalid, and reported
    if draft.curve is Curve.EXPONENTIAL and min(start, draft.target) <= 0:
        key = "from" if draft.start is not None and start <= 0 else "curve"
        fix = "" if draft.start is not None else "; set 'from' to a level above 0"
        levels = f"{start:g} to {draft.target:g}"
        draft.fields.error(key, f"an exponential curve needs levels above 0, got {levels}{fix}")
        draft.valid = False  # reported once, not once per repetition
        return None
    sine = draft.curve is Curve.SINE
    return Stage(
        name=draft.name if repetition is None else f"{draft.name}#{repetition}",
        duration_s=draft.duration_s,
        target=draft.target,
        start=start,
        curve=draft.curve,
        variation=draft.variation,
        amplitude=draft.amplitude if sine else 0.0,
        period_s=draft.period_s if sine else 0.0,
        peak_at_s=draft.peak_at_s if sine else 0.0,
        mix=draft.mix,
    )
