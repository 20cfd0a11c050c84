"""The JSON Schema of chaos scenarios (``chaos/*.yaml``), from the scenario reader's key lists
and the fault catalog: each fault type gets exactly its own parameters, target and window.

A new fault parameter must be described in :data:`PARAMS` (the build says which one is not)::

    schema = scenario_schema()
    schema["definitions"]["fault"]["properties"]["type"]["enum"][:2]  # ['process.crash', …]
"""

from __future__ import annotations

from loadkit.chaos.catalog import FAULTS
from loadkit.chaos.faults.base import ALL_WALLETS, POSTGRES, FaultType, TargetKind, Window
from loadkit.chaos.faults.postgres import CrashMode
from loadkit.chaos.faults.sql import Scope
from loadkit.chaos.faults.toxiproxy import Stream
from loadkit.chaos.faults.wallet import LIMIT_PARAMS
from loadkit.chaos.hypothesis import (
    ABORT_KEYS,
    MAX_TRAFFIC,
    PROBE_KEYS,
    SAFETY_KEYS,
    STEADY_KEYS,
    TRAFFIC_KEYS,
)
from loadkit.chaos.scenario import AbortWhen, ProbeKind, Request
from loadkit.chaos.spec import FAULT_COMMON, TOP_KEYS
from loadkit.schemas.common import (
    DURATION_PATTERN,
    NAME,
    Schema,
    bandwidth,
    boolean,
    described,
    document,
    duration,
    enum,
    integer,
    list_of,
    name,
    obj,
    percent,
    rate,
    ref,
    text,
)
from loadkit.spec.schema import Keys
from loadkit.wallet.contract import PolicyName

#: a run-clock time (``90s``) or a time after a profile phase starts (``peak+10s``)
CLOCK_TIME = (
    rf"^\s*(?:(?:{DURATION_PATTERN}\s*)+"
    rf"|[A-Za-z][A-Za-z0-9_.#-]*\s*(?:\+\s*(?:{DURATION_PATTERN}\s*)+)?)$"
)
#: an http(s) URL with a host; where it may point is the run's allowlist, checked when it starts
HTTP_URL = r"^https?://[^/?#\s]+(?:[/?#].*)?$"
_COUNT = {"type": "integer", "minimum": 1}


def _share(description: str) -> Schema:
    return {
        "anyOf": [
            {"type": "integer", "minimum": 1, "maximum": 10_000},
            {"const": "all"},
            {"type": "string", "pattern": r"^\s*\d+(?:\.\d+)?\s*%\s*$"},
        ],
        "description": description,
    }


#: the value form of every fault parameter, by name (parameters of one name mean one thing)
PARAMS: dict[str, Schema] = {
    "grace": duration(),
    "interval": duration(),
    "delay": duration(),
    "latency": duration(),
    "jitter": duration(),
    "timeout": duration(),
    "retry_after": duration(),
    "mode": enum([m.value for m in CrashMode], ""),
    "stream": enum([s.value for s in Stream], ""),
    "policy": enum([p.value for p in PolicyName], ""),
    "connections": {"anyOf": [{"type": "integer", "minimum": 1}, {"const": "all"}]},
    "leave": {"type": "integer", "minimum": 0},
    "accounts": {
        "anyOf": [
            {"type": "integer", "minimum": 1, "maximum": 1000},
            {"type": "array", "items": {"type": "string", "minLength": 1}, "minItems": 1},
        ]
    },
    "table": {
        "type": "string",
        "pattern": r"^[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)?$",
    },
    "toxicity": percent(),
    "rate": bandwidth(),
    "average_size": _COUNT,
    "size_variation": {"type": "integer", "minimum": 0},
    "bytes": _COUNT,
    "message": {"type": "string", "minLength": 1, "maxLength": 500},
    "rate_limit": {"anyOf": [rate()["anyOf"][0], rate()["anyOf"][1], {"const": "off"}]},
    "rate_burst": {"type": "number", "exclusiveMinimum": 0},
    "per_user_rate": rate(),
    "per_user_burst": _COUNT,
    "max_inflight": _COUNT,
    "count": _share("containers: N, 'all' or a share like 30%"),
    "signal": {
        "anyOf": [{"type": "string", "pattern": "^[A-Za-z0-9]+$"}, {"type": "integer"}],
        "examples": ["SIGKILL", "SIGTERM"],
    },
    "cpus": {"type": "number", "minimum": 0.01, "maximum": 64},
    "key": {"type": "string", "pattern": r"^[A-Za-z_][A-Za-z0-9_]*$"},
    "rows": {
        "anyOf": [
            {"type": "integer", "minimum": 1, "maximum": 10_000},
            {
                "type": "array",
                "items": {"anyOf": [{"type": "integer"}, {"type": "string", "minLength": 1}]},
                "minItems": 1,
            },
        ]
    },
    "application": {"type": "string", "minLength": 1},
    "user": {"type": "string", "minLength": 1},
    "scope": enum([s.value for s in Scope], ""),
}
#: rules of one fault type beyond its keys
EXTRA: dict[str, Schema] = {
    "wallet.limits": {"anyOf": [{"required": [p]} for p in LIMIT_PARAMS]},
    "postgres.terminate-backends": {
        "anyOf": [{"required": ["application"]}, {"required": ["user"]}]
    },
}


def scenario_schema() -> Schema:
    """The whole schema (draft-07)."""
    root = obj(
        TOP_KEYS,
        {
            "name": name("the scenario's name"),
            "description": text("one line on what goes wrong"),
            "duration": duration("how long the scenario lasts when no profile says so"),
            "steady_state": ref("steady_state"),
            "faults": list_of(ref("fault"), "the faults, on the run clock"),
            "abort": list_of(ref("abort"), "when to stop everything and roll back (exit 4)"),
            "safety": obj(
                SAFETY_KEYS,
                {
                    "allow": list_of(
                        {"type": "string", "pattern": r"^[A-Za-z0-9*?\[\]_.-]+$"},
                        "component names or patterns faults may touch, like wallet-*",
                    )
                },
                "the blast radius",
            ),
        },
    )
    return document(
        "loadkit chaos scenario",
        "Faults on the run clock, the steady state that must hold, and abort conditions. "
        "`loadkit validate` has the last word; `loadkit chaos list` describes every fault.",
        root,
        {"fault": _fault(), "steady_state": _steady(), "probe": _probe(), "abort": _abort()},
    )


def _fault() -> Schema:
    return {
        "type": "object",
        "description": "one fault: a type from `loadkit chaos list`, where and when",
        "required": ["type", "at"],
        "properties": {
            "type": enum(list(FAULTS), "the fault type (`loadkit chaos list`)"),
        },
        "not": {"required": ["duration", "until"]},
        "allOf": [
            {"if": {"properties": {"type": {"const": kind.name}}}, "then": _fault_type(kind)}
            for kind in FAULTS.values()
        ],
    }


def _fault_type(kind: FaultType) -> Schema:
    common = [k for k in FAULT_COMMON if kind.window is Window.SUSTAINED or k not in _WINDOW]
    required = ("type", "at") + (() if kind.target_default else ("target",))
    own = tuple(p.name for p in kind.params)
    keys = Keys(required, (*(k for k in common if k not in required), *own))
    properties: Schema = {
        "name": name("the fault's name in reports and SLOs"),
        "type": {"const": kind.name, "description": kind.summary},
        "target": _target(kind),
        "at": _clock("when it starts: 90s on the run clock, or peak+10s after a phase starts"),
        "duration": duration("how long it lasts"),
        "until": _clock("when it ends (instead of duration)"),
    }
    for param in kind.params:
        if param.name not in PARAMS:
            raise ValueError(
                f"fault parameter '{param.name}' of {kind.name} has no schema: describe it in "
                "loadkit/schemas/scenario.py (PARAMS)"
            )
        shown = f" (default {param.shown})" if param.shown else ""
        properties[param.name] = described(PARAMS[param.name], f"{param.help}{shown}")
    schema = obj(keys, {k: properties[k] for k in keys.all}, kind.summary)
    return {**schema, **EXTRA.get(kind.name, {})}


_WINDOW = ("duration", "until")


def _clock(description: str) -> Schema:
    return {"type": "string", "pattern": CLOCK_TIME, "description": description}


def _target(kind: FaultType) -> Schema:
    if kind.target is TargetKind.POSTGRES:
        return enum([POSTGRES], "the stack's (or the system file's) PostgreSQL")
    if kind.target is TargetKind.WALLETS:
        return enum([ALL_WALLETS], "every wallet instance")
    if kind.target is TargetKind.CONTAINER:
        return {
            "type": "string",
            "pattern": r"^(?:name:.+|label:[A-Za-z0-9._/-]+(?:=.*)?|[^:]+)$",
            "description": "containers: name:PATTERN, label:KEY=VALUE, or a component like "
            "wallet-1",
        }
    if kind.target is TargetKind.COMMAND:
        return {
            "type": "string",
            "pattern": r"^[a-z][a-z0-9_-]{0,62}$",
            "description": "a command of the system file (commands:), like cache-off",
        }
    if kind.target is TargetKind.PROXY:
        return {
            "type": "string",
            "pattern": NAME,
            "not": {"enum": [POSTGRES, ALL_WALLETS]},
            "description": "a Toxiproxy proxy, like wallet-1-postgres or client-wallet-1",
        }
    return {
        "type": "string",
        "pattern": NAME,
        "not": {"const": POSTGRES},
        "description": "a wallet instance like wallet-1, or 'wallets' for all of them",
    }


def _steady() -> Schema:
    return obj(
        STEADY_KEYS,
        {
            "probes": list_of(ref("probe"), "what must hold before, during and after"),
            "before": boolean("check the probes before the first fault (default true)"),
            "after": boolean("check them after the last fault (default true)"),
            "recover_within": duration("how long the system gets to recover"),
            "traffic": obj(
                TRAFFIC_KEYS,
                {
                    "rate": described(rate(), f"light probe traffic, at most {MAX_TRAFFIC:g}/s"),
                    "request": enum([r.value for r in Request], "what probe traffic sends"),
                },
                "the controller's own light traffic when no load runs",
            ),
        },
        "the steady-state hypothesis",
    )


def _probe() -> Schema:
    values: Schema = {
        "name": name("the probe's name"),
        "target": name("the components it checks"),
        "timeout": duration(),
        "url": {
            "type": "string",
            "pattern": HTTP_URL,
            "description": "an http(s) URL (loopback unless the run's allowlist names its host)",
        },
        "status": integer("the status the URL must answer", 100, 599),
        "window": duration("over how long"),
    }
    branches = []
    for kind in ProbeKind:
        limits = kind in (ProbeKind.BUSY_RATE, ProbeKind.P95)
        required = ("name", "type") + (("max",) if limits else ())
        required += ("url",) if kind is ProbeKind.HTTP else ()
        keys = Keys(required, tuple(k for k in PROBE_KEYS[kind] if k not in required))
        own = {**values, "type": {"const": kind.value}}
        own["max"] = percent("at most") if kind is ProbeKind.BUSY_RATE else duration("at most")
        branch = obj(keys, {k: own[k] for k in keys.all})
        branches.append({"if": {"properties": {"type": {"const": kind.value}}}, "then": branch})
    return {
        "type": "object",
        "required": ["name", "type"],
        "properties": {"type": enum([k.value for k in ProbeKind], "what the probe checks")},
        "allOf": branches,
    }


def _abort() -> Schema:
    values: Schema = {
        "name": name("the condition's name"),
        "window": duration("measured over"),
        "for": duration("how long it must hold first"),
        "probe": text("a steady-state probe's name"),
        "every": duration("how often the probe runs"),
    }
    branches = []
    for when in AbortWhen:
        required = ("when",) + (("probe",) if when is AbortWhen.PROBE else ("above",))
        optional = ("name", *(k for k in ABORT_KEYS[when] if k not in required))
        keys = Keys(required, optional)
        own = {**values, "when": {"const": when.value}}
        own["above"] = percent() if when is AbortWhen.BUSY_RATE else duration()
        branch = obj(keys, {k: own[k] for k in keys.all})
        branches.append({"if": {"properties": {"when": {"const": when.value}}}, "then": branch})
    return {
        "type": "object",
        "required": ["when"],
        "properties": {"when": enum([w.value for w in AbortWhen], "what to watch")},
        "allOf": branches,
    }
