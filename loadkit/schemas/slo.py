"""The JSON Schema of SLO files (``slo/*.yaml``), from the SLO reader's measures and options.

Each objective has exactly one measure key and only the options that measure takes (the reader's
``ALLOWED``); an option the schema has no form for is text::

    schema = slo_schema()
    schema["definitions"]["objective"]["oneOf"][0]  # {'required': ['max_busy_rate']}
"""

from __future__ import annotations

from loadkit.gate import slo
from loadkit.schemas.common import (
    PERCENT_ANY,
    RATE,
    Schema,
    document,
    duration,
    enum,
    list_of,
    obj,
    percent,
    text,
)
from loadkit.spec.schema import Keys

#: each measure's limit
LIMITS: dict[str, Schema] = {
    "max_busy_rate": percent("the busy share allowed, like 2%"),
    "max_p95": duration("the 95th percentile latency allowed", examples=["300ms"]),
    "max_p99": duration("the 99th percentile latency allowed", examples=["800ms"]),
    "max_recovery": duration(
        "seconds from a fault's end until the busy rate is back", examples=["30s"]
    ),
    "min_achieved_rate": {
        "type": "string",
        "anyOf": [{"pattern": PERCENT_ANY}, {"pattern": RATE}],
        "description": "a share of the offered rate (95%) or a rate (800/s)",
        "examples": ["95%", "800/s"],
    },
    "max_unsent": percent("arrivals the generator could not send, like 0.1%"),
    "integrity": {"const": "clean", "description": "no money lost, duplicated or unexplained"},
}
#: the options' forms (options the reader adds later are text until described here)
OPTIONS: dict[str, Schema] = {
    "level": enum(slo.LEVELS, "action (after client retries, the default) or request"),
    "cause": enum(slo.CAUSES, "only busy answers of this cause"),
    "phase": text("only this phase of the profile"),
    "fault": text("only while this fault of the scenario is on"),
    "journey": text("only this journey's answers"),
    "endpoint": text(
        "only this request's answers, by its label like 'POST /v1/transfers' (level: request)"
    ),
    "instance": text("only answers from this target instance, like wallet-1 or a target URL"),
    "network": text("only answers to users of this network class of the profile"),
    "name": text("the objective's name in reports"),
}


def slo_schema() -> Schema:
    """The whole schema (draft-07)."""
    root = obj(
        slo.SLO_KEYS,
        {
            "name": text("the SLO's name (default: the file name)"),
            "description": text("one line on what the release must hold"),
            "objectives": list_of({"$ref": "#/definitions/objective"}, "what must hold"),
        },
    )
    return document(
        "loadkit SLO",
        "Objectives a run must meet for `loadkit gate` to pass (docs/slo.md). "
        "`loadkit validate` has the last word.",
        root,
        {"objective": _objective()},
    )


def _objective() -> Schema:
    missing = set(slo.MEASURES) - set(LIMITS)
    if missing:
        raise ValueError(
            f"SLO measures without a schema: {sorted(missing)} (loadkit/schemas/slo.py)"
        )
    branches = []
    for measure in slo.MEASURES:
        options = slo.ALLOWED[measure]
        properties = {measure: LIMITS[measure]}
        properties.update({o: OPTIONS.get(o, text(o)) for o in options})
        keys = Keys((measure,), options)
        branches.append({"if": {"required": [measure]}, "then": obj(keys, properties)})
    return {
        "type": "object",
        "description": "one objective: one measure (" + ", ".join(slo.MEASURES) + ") with its "
        "limit, and where it applies",
        "oneOf": [{"required": [m]} for m in slo.MEASURES],
        "not": {"required": list(slo.SCOPES)},
        "allOf": branches,
        "properties": {m: LIMITS[m] for m in slo.MEASURES},
    }
