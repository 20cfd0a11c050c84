"""SLO files: what a run must hold for a release to pass (docs/slo.md), validated like profiles.

An SLO file is a name and a list of objectives; each objective has exactly one *measure* key
(``max_busy_rate: 2%``, ``max_p95: 300ms``, ``max_recovery: 30s``, ``min_achieved_rate: 95%``,
``max_unsent: 0.1%``, ``integrity: clean``) and optionally where it applies: when (``phase:``
or ``fault:``), to what (``journey:``, ``endpoint:``, ``instance:``, ``network:`` — a slice of
the run's answers, combined as the measure allows), a ``level`` (``action`` after client
retries, or ``request``), a busy ``cause`` and a display ``name``. Every mistake in the file is
reported at ``file:line:col``::

    slo = load_slo("slo/double11.yaml")
    [o.label() for o in slo.objectives]   # ["busy rate (action) in phase peak ≤ 2%", …]
    Objective("max_busy_rate", 0.01, journey="pay", phase="peak").label()
    # "busy rate (action) of journey pay in phase peak ≤ 1%"
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from loadkit.profile.outcome import Cause
from loadkit.report.model import Scope
from loadkit.spec.errors import Invalid, Problem, SpecError
from loadkit.spec.loader import Document, Map, Node, Seq, load_document
from loadkit.spec.schema import Context, Fields, Keys, items_of
from loadkit.spec.values import (
    describe,
    did_you_mean,
    format_duration,
    format_rate,
    parse_duration,
    parse_percent,
    parse_rate,
    parse_text,
)

#: every measure key, in the order the reference lists them
MEASURES = (
    "max_busy_rate",
    "max_p95",
    "max_p99",
    "max_recovery",
    "min_achieved_rate",
    "max_unsent",
    "integrity",
)
LEVELS = ("action", "request")
#: the busy causes an objective may name: the outcome vocabulary's (loadkit.profile.outcome)
CAUSES: tuple[str, ...] = tuple(c.value for c in Cause)
SCOPES = ("phase", "fault")
#: what an objective can be narrowed to: a slice of the run's answers (the timeline's keys)
SLICES = ("journey", "endpoint", "instance", "network")
OPTIONS = ("level", "phase", "fault", "cause", *SLICES, "name")
SLO_KEYS = Keys(required=("objectives",), optional=("name", "description"))
#: which option keys each measure accepts (``level`` where the measure has two levels)
ALLOWED: dict[str, tuple[str, ...]] = {
    "max_busy_rate": ("level", "phase", "fault", "cause", *SLICES, "name"),
    "max_p95": ("level", "phase", "fault", *SLICES, "name"),
    "max_p99": ("level", "phase", "fault", *SLICES, "name"),
    "max_recovery": ("fault", "journey", "instance", "network", "name"),
    "min_achieved_rate": ("phase", "journey", "instance", "network", "name"),
    "max_unsent": ("phase", "fault", "journey", "instance", "network", "name"),
    "integrity": ("name",),
}
_WHY_NOT = {
    ("max_recovery", "endpoint"): "recovery is measured on user actions, not on one request",
    ("min_achieved_rate", "endpoint"): "the achieved rate counts user actions, not requests",
    ("max_unsent", "endpoint"): "an unsent arrival never reached an endpoint",
    ("integrity", "journey"): "integrity is one check of the whole run",
    ("integrity", "endpoint"): "integrity is one check of the whole run",
    ("integrity", "instance"): "integrity is one check of the whole run",
    ("integrity", "network"): "integrity is one check of the whole run",
    ("max_recovery", "level"): "recovery is measured on user actions only",
    ("max_recovery", "phase"): "recovery belongs to a fault: use 'fault:'",
    ("max_recovery", "cause"): "recovery counts every busy cause",
    ("max_p95", "cause"): "a cause applies to max_busy_rate only",
    ("max_p99", "cause"): "a cause applies to max_busy_rate only",
    ("min_achieved_rate", "fault"): "the achieved rate is measured per phase or for the whole run",
    ("min_achieved_rate", "level"): "the achieved rate counts user actions",
    ("min_achieved_rate", "cause"): "a cause applies to max_busy_rate only",
    ("max_unsent", "level"): "unsent arrivals are user actions that never started",
    ("max_unsent", "cause"): "a cause applies to max_busy_rate only",
    ("integrity", "level"): "integrity is one check of the whole run",
    ("integrity", "phase"): "integrity is one check of the whole run",
    ("integrity", "fault"): "integrity is one check of the whole run",
    ("integrity", "cause"): "integrity is one check of the whole run",
}
_EXPECTED = {
    "max_busy_rate": "a percentage like '2%' or '0.5%'",
    "max_p95": "a duration like '300ms' or '1.5s'",
    "max_p99": "a duration like '800ms' or '2s'",
    "max_recovery": "a duration like '30s' or '1m'",
    "min_achieved_rate": "a percentage of the offered rate like '95%', or a rate like '800/s'",
    "max_unsent": "a percentage like '0.1%'",
    "integrity": "'clean'",
}


@dataclass(frozen=True)
class Objective:
    """One line of an SLO: a measure, its limit, and where it applies.

    ``limit`` is a fraction for rates and shares (``0.02``), seconds for latency and recovery,
    arrivals per second for an absolute achieved rate, ``None`` for integrity::

        Objective("max_busy_rate", 0.02, phase="peak").label()
        # "busy rate (action) in phase peak ≤ 2%"
    """

    measure: str
    limit: float | None
    level: str = "action"
    phase: str | None = None
    fault: str | None = None
    cause: str | None = None
    relative: bool = False  # min_achieved_rate given as a percent of the offered rate
    name: str | None = None
    line: int = 0
    journey: str | None = None
    endpoint: str | None = None
    instance: str | None = None
    network: str | None = None

    @property
    def is_min(self) -> bool:
        return self.measure.startswith("min_")

    @property
    def scope(self) -> Scope | None:
        """The slice of the run it measures (``None``: every answer)."""
        scope = Scope(self.journey, self.endpoint, self.instance, self.network)
        return None if scope.is_everything else scope

    def subject(self) -> str:
        """What is measured, without the limit: ``busy rate (action) in phase peak``."""
        what = {
            "max_busy_rate": f"busy rate ({self.level})",
            "max_p95": f"p95 latency ({self.level})",
            "max_p99": f"p99 latency ({self.level})",
            "max_recovery": "recovery",
            "min_achieved_rate": "achieved rate",
            "max_unsent": "unsent arrivals",
            "integrity": "money integrity",
        }[self.measure]
        if self.cause:
            what = f"{self.cause} {what}"
        if self.scope is not None:
            what += f" of {self.scope.label()}"
        if self.phase:
            what += f" in phase {self.phase}"
        if self.fault:
            what += f" of fault {self.fault}" if self.measure == "max_recovery" else ""
            what += f" during fault {self.fault}" if self.measure != "max_recovery" else ""
        elif self.measure == "max_recovery":
            what += " of every fault"
        return what

    def limit_text(self) -> str:
        """The limit as written: ``2%``, ``300ms``, ``95% of offered``, ``800/s``, ``clean``."""
        if self.limit is None:
            return "clean"
        if self.measure in ("max_p95", "max_p99", "max_recovery"):
            return format_duration(self.limit)
        if self.measure == "min_achieved_rate" and not self.relative:
            return format_rate(self.limit)
        text = format_percent(self.limit)
        return f"{text} of offered" if self.measure == "min_achieved_rate" else text

    def label(self) -> str:
        """``busy rate (action) in phase midnight-peak ≤ 2%``."""
        if self.limit is None:
            return f"{self.subject()} clean"
        return f"{self.subject()} {'≥' if self.is_min else '≤'} {self.limit_text()}"


@dataclass(frozen=True)
class Slo:
    """A validated SLO file."""

    name: str
    objectives: tuple[Objective, ...]
    file: str
    description: str = ""


def format_percent(fraction: float) -> str:
    """``0.02`` → ``2%``; ``0.005`` → ``0.5%``; ``0.0125`` → ``1.25%``."""
    return f"{round(fraction * 100, 6):g}%"


def load_slo(path: str | Path) -> Slo:
    """Read and validate an SLO file; ``SpecError`` (exit 2) lists every problem in it."""
    return read_slo(load_document(path))


def read_slo(doc: Document) -> Slo:
    """Build the SLO of an already loaded document (see :func:`load_slo`)."""
    ctx = Context(doc.file, doc.problems)
    fields = Fields(ctx, doc.root, SLO_KEYS, "SLO file")
    name = fields.get("name", parse_text, Path(doc.file).stem)
    description = fields.get("description", parse_text, "")
    objectives: list[Objective] = []
    node = fields.child("objectives")
    if node is not None:
        for item in items_of(ctx, node, "objectives", "objective"):
            objective = _objective(ctx, item)
            if objective is not None:
                objectives.append(objective)
    ctx.raise_if_any()
    return Slo(name=name, objectives=tuple(objectives), file=doc.file, description=description)


def _objective(ctx: Context, node: Node) -> Objective | None:
    if not isinstance(node, Map):
        ctx.error(
            node,
            "expected an objective like '- max_busy_rate: 2%' ('key: value' lines), "
            f"got {describe(node.plain())}",
        )
        return None
    measures = [key for key in node.items if key in MEASURES]
    if len(measures) > 1:
        mark = node.key_marks[measures[1]]
        ctx.error_at(
            mark,
            f"{node.path}.{measures[1]}",
            f"one measure per objective, this one already has '{measures[0]}'; "
            "write each as its own '- ' item",
        )
    if not measures:
        unknown = [key for key in node.items if key not in OPTIONS]
        for key in unknown:
            hint = did_you_mean(key, MEASURES) or f" (measures: {', '.join(MEASURES)})"
            ctx.error_at(node.key_marks[key], f"{node.path}.{key}", f"unknown key '{key}'{hint}")
        if not unknown:
            ctx.error(node, f"an objective needs one measure: {', '.join(MEASURES)}")
        return None
    measure = measures[0]
    allowed = ALLOWED[measure]
    for key, mark in node.key_marks.items():
        if key in MEASURES or key in allowed:
            continue
        if key in OPTIONS:
            why = _WHY_NOT.get((measure, key), "")
            message = f"'{key}' does not apply to {measure}" + (f": {why}" if why else "")
        else:
            hint = did_you_mean(key, (*MEASURES, *allowed)) or (
                f" (expected one of: {', '.join(allowed)})"
            )
            message = f"unknown key '{key}'{hint}"
        ctx.error_at(mark, f"{node.path}.{key}", message)
    fields = Fields(ctx, node, Keys(optional=tuple(node.items)), "objective")
    value = node.items[measure]
    limit, relative = _limit(ctx, measure, value)
    level = (
        fields.get("level", _choice(LEVELS, "level"), "action") if "level" in allowed else "action"
    )
    cause = fields.get("cause", _choice(CAUSES, "busy cause"), None) if "cause" in allowed else None
    phase = fields.get("phase", _name("a phase name"), None) if "phase" in allowed else None
    fault = fields.get("fault", _name("a fault name or id"), None) if "fault" in allowed else None
    slices = {
        key: fields.get(key, _name(_SLICE_HINTS[key]), None) if key in allowed else None
        for key in SLICES
    }
    name = fields.get("name", parse_text, None)
    if phase is not None and fault is not None:
        ctx.error(node.items["fault"], "give either 'phase:' or 'fault:', not both")
    if slices["endpoint"] is not None:
        # an endpoint is one request of a journey: its objectives count requests
        if "level" in node.items and level != "request":
            ctx.error(
                node.items["level"],
                "an endpoint is one HTTP request: 'endpoint:' measures requests "
                "(level: request, the default with it)",
            )
        level = "request"
    if relative and any(v is not None for v in slices.values()):
        key = next(k for k in SLICES if slices[k] is not None)
        ctx.error(
            node.items[measure],
            f"a share of the offered rate needs the whole run (the offered load of one {key} "
            "is not known); give a rate like '800/s' instead",
        )
    return Objective(
        measure=measure,
        limit=limit,
        level=level,
        phase=phase,
        fault=fault,
        cause=cause,
        relative=relative,
        name=name,
        line=node.mark.line,
        **slices,
    )


_SLICE_HINTS = {
    "journey": "a journey name of the profile",
    "endpoint": "a request's label, like 'POST /v1/transfers'",
    "instance": "a target instance, like 'wallet-1' or a target URL",
    "network": "a network class of the profile",
}


def _limit(ctx: Context, measure: str, node: Node) -> tuple[float | None, bool]:
    value = node.plain()
    try:
        if measure == "integrity":
            if value != "clean":
                raise Invalid(f"expected 'clean', got {describe(value)}")
            return None, False
        if measure in ("max_p95", "max_p99") and isinstance(value, int | float):
            # latency limits are usually milliseconds: suggest those rather than seconds
            raise Invalid(
                f"expected {_EXPECTED[measure]}, got the bare number {describe(value)}; "
                f"did you mean '{value:g}ms'?"
            )
        if measure in ("max_p95", "max_p99", "max_recovery"):
            return parse_duration(value, allow_zero=measure == "max_recovery"), False
        if measure == "min_achieved_rate":
            if isinstance(value, str) and value.strip().endswith("%"):
                return parse_percent(value, maximum=10.0), True
            if isinstance(value, int | float) and not isinstance(value, bool):
                # a bare number could be a share or a rate: make the reader say which
                share = f"{round(value * 100, 6):g}%" if 0 < value <= 1 else f"{value:g}%"
                raise Invalid(
                    f"expected {_EXPECTED[measure]}, got the bare number {describe(value)}; "
                    f"did you mean '{share}' or '{value:g}/s'?"
                )
            if isinstance(value, str):
                return parse_rate(value), False
            raise Invalid(f"expected {_EXPECTED[measure]}, got {describe(value)}")
        return parse_percent(value), False
    except Invalid as exc:
        message = exc.message
        if not message.startswith("expected") and "did you mean" not in message:
            message += f" (expected {_EXPECTED[measure]})"
        ctx.error(node, message)
        return (None if measure == "integrity" else 0.0), False


def _choice(choices: tuple[str, ...], what: str) -> Callable[[object], str]:
    def parse(value: object) -> str:
        if isinstance(value, str) and value in choices:
            return value
        if isinstance(value, str):
            hint = did_you_mean(value, choices)
            raise Invalid(f"unknown {what} '{value}'{hint} (expected one of: {', '.join(choices)})")
        raise Invalid(f"expected a {what} (one of: {', '.join(choices)}), got {describe(value)}")

    return parse


def _name(hint: str) -> Callable[[object], str]:
    return lambda value: parse_text(value, hint=hint)


def check_names(
    slo: Slo,
    *,
    phases: Iterable[str] | None = None,
    faults: Iterable[str] | None = None,
    journeys: Iterable[str] | None = None,
    networks: Iterable[str] | None = None,
) -> None:
    """Before a run: every ``phase:`` must be one of the profile's phases, every ``fault:``
    one of the scenario's faults, every ``journey:`` and ``network:`` one of the profile's
    journeys and network classes (``None``: not checked). Raises ``SpecError`` naming each
    wrong name at its place in the file, with a close match."""
    problems: list[Problem] = []
    known = {
        "phase": list(phases) if phases is not None else None,
        "fault": list(faults) if faults is not None else None,
        "journey": list(journeys) if journeys is not None else None,
        "network": list(networks) if networks is not None else None,
    }
    owner = {
        "phase": "the profile",
        "fault": "the scenario",
        "journey": "the profile",
        "network": "the profile",
    }
    plural = {"network": "network classes", "journey": "journeys (with their tags applied)"}
    for index, o in enumerate(slo.objectives):
        for key, value in (
            ("phase", o.phase),
            ("fault", o.fault),
            ("journey", o.journey),
            ("network", o.network),
        ):
            names = known[key]
            if value is None or names is None or value in names:
                continue
            if key == "phase" and any(n.split("#", 1)[0] == value for n in names):
                continue  # a repeated stage's name: every repeat (``burst#1``, ``burst#2``…)
            line, column, path = _place(slo.file, index, key, o.line)
            listing = ", ".join(names) or "none"
            what = "network class" if key == "network" else key
            message = (
                f"{owner[key]} has no {what} '{value}'{did_you_mean(value, names)} "
                f"(its {plural.get(key, key + 's')}: {listing})"
            )
            problems.append(Problem(slo.file, line, column, path, message))
    if problems:
        raise SpecError(problems)


def _place(file: str, index: int, key: str, line: int) -> tuple[int, int, str]:
    """Where objective ``index``'s ``key`` was written (the file is read again; it was valid)."""
    path = f"objectives[{index}].{key}"
    try:
        objectives = load_document(file).root.get("objectives")
    except SpecError:
        return line, 1, path
    if isinstance(objectives, Seq) and index < len(objectives.items):
        item = objectives.items[index]
        if isinstance(item, Map) and (node := item.get(key)) is not None:
            return node.mark.line, node.mark.column, path
    return line, 1, path


def summary(slo: Slo) -> str:
    """``slo/smoke.yaml: SLO 'smoke': 5 objectives (busy rate, p95, recovery, …)``."""
    kinds: list[str] = []
    for o in slo.objectives:
        kind = o.measure.removeprefix("max_").removeprefix("min_").replace("_", " ")
        if kind not in kinds:
            kinds.append(kind)
    count = len(slo.objectives)
    noun = "objective" if count == 1 else "objectives"
    return f"{slo.file}: SLO '{slo.name}': {count} {noun} ({', '.join(kinds)})"
