"""The JSON Schema of load profiles (``profiles/*.yaml``), from the profile reader's key lists.

Structure (keys, types, enums, value forms, which keys go together) is the schema's; what needs
the whole file (duplicate names, a ``mix`` naming an unknown journey, stage lengths against
``time_scale``, weights adding up) stays the reader's::

    schema = profile_schema()
    schema["properties"]["stages"]["description"]
"""

from __future__ import annotations

import re

from loadkit.profile.data import NAME_PATTERN as DATA_NAME
from loadkit.profile.data import DataMode
from loadkit.profile.model import Curve, HttpMethod, WalletJourneyKind
from loadkit.profile.outcome import EXPECTABLE
from loadkit.profile.read import (
    CLIENT_KEYS,
    FAILOVER_KEYS,
    INTEGRITY_HTTP_KEYS,
    INTEGRITY_KEYS,
    INTEGRITY_SQL_KEYS,
    MAX_ATTEMPTS,
    NETWORK_KEYS,
    PROFILE_KEYS,
    RETRY_KEYS,
    USER_KEYS,
)
from loadkit.profile.read_data import SOURCE_KEYS
from loadkit.profile.read_journeys import (
    HTTP_KEYS,
    LOCUST_KEYS,
    MONEY_KEYS,
    STEP_KEYS,
    WALLET_KEYS,
    WALLET_PARAMS,
)
from loadkit.profile.read_stages import GROUP_KEYS, MAX_REPEAT, RAMPS, SINE_KEYS, STAGE_KEYS
from loadkit.schemas.common import (
    PERCENT_TO_100,
    Schema,
    anycase,
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
from loadkit.spec.template import BUILTIN_VARIABLES

_IDENT = "[A-Za-z_][A-Za-z0-9_]*"
_INT = r"[+-]?\d+"
_DEC = r"[+-]?\d+(?:\.\d+)?"
_VARIABLES = "|".join(re.escape(v) for v in BUILTIN_VARIABLES)
_PLACEHOLDER = (
    r"\{\s*(?:"
    rf"{_VARIABLES}|env\.{_IDENT}|vars\.{_IDENT}|data\.{DATA_NAME}\.{DATA_NAME}"
    rf"|random\.int\s+{_INT}\s*\.\.\s*{_INT}"
    rf"|random\.number\s+{_DEC}\s*\.\.\s*{_DEC}"
    r"|random\.choice\s+\[[^{}]*\]"
    r")\s*\}"
)
#: text with placeholders: ``{user.id}``, ``{{`` and ``}}`` for braces, no lone brace
_TEMPLATE_BODY = rf"(?:[^{{}}]|\{{\{{|\}}\}}|{_PLACEHOLDER})*"
TEMPLATE = rf"^{_TEMPLATE_BODY}$"
PATH = rf"^/{_TEMPLATE_BODY}$"
HEADER = r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$"
JSON_PATH = r"^[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*$"
_VARS_HELP = (
    "placeholders: {user.id} {user.index} {random.uuid} {random.int} {step.idempotency_key} "
    "{env.NAME} {vars.NAME} {data.SOURCE.COLUMN} {random.int 1..500} "
    "{random.number 0.01..99.99} {random.choice [a, b]}; {{ and }} for braces"
)


def profile_schema() -> Schema:
    """The whole schema (draft-07)."""
    root = obj(
        PROFILE_KEYS,
        {
            "name": text("the profile's name in reports (default: the file name)"),
            "description": text("one line on what this load is"),
            "time_scale": {
                "type": "number",
                "exclusiveMinimum": 0,
                "default": 1,
                "description": "run seconds per profile second: 0.1 plays the stages ten times "
                "faster (durations shrink, rates stay)",
            },
            "seed": integer("seeds variation, journey picks and random values (default 0)"),
            "users": ref("users"),
            "client": ref("client"),
            "network": list_of(ref("network_class"), "client network classes (Toxiproxy)"),
            "integrity": ref("integrity"),
            "data": ref("data"),
            "stages": list_of(ref("stage_or_group"), "the phases of the load, in order"),
            "journeys": list_of(ref("journey"), "what users do, and how often (weights)"),
        },
    )
    return document(
        "loadkit profile",
        "A load profile: stages over time, the journey mix, users, client and network. "
        "`loadkit validate` has the last word.",
        root,
        {**_stage_definitions(), **_journey_definitions(), **_other_definitions()},
    )


def _stage_definitions() -> Schema:
    ramps = [c.value for c in RAMPS]
    level = {"anyOf": [{"type": "integer", "minimum": 0}, rate()["anyOf"][1]]}
    stage = obj(
        STAGE_KEYS,
        {
            "name": name("the phase's name in reports and SLOs"),
            "duration": duration("how long, in profile time (× time_scale on the run clock)"),
            "rate": rate("open model: arrivals per second (the target level of the curve)"),
            "users": integer("closed model: concurrent users", minimum=0),
            "from": described(
                level,
                "where a linear or exponential ramp starts (default: "
                "where the previous stage ended)",
            ),
            "curve": enum(
                [c.value for c in Curve], "the shape: step (default), linear, exponential, sine"
            ),
            "variation": percent("random ± on the level, drawn per second from the seed"),
            "amplitude": percent("sine: the swing as a share of the mean (default 50%)"),
            "period": duration("sine: the wave's period (default: the stage)"),
            "peak_at": duration("sine: where the peak falls in the period (default: half way)"),
            "mix": {
                "type": "object",
                "description": "journey weights while this stage runs (journeys left out are "
                "not chosen)",
                "additionalProperties": {"type": "number", "minimum": 0},
            },
        },
        "a stage",
        anyOf=[{"required": ["rate"]}, {"required": ["users"]}],
        allOf=[
            {"not": {"required": ["rate", "users"]}},
            {
                "if": {"required": ["from"]},
                "then": {"required": ["curve"], "properties": {"curve": {"enum": ramps}}},
            },
            *(
                {
                    "if": {"required": [key]},
                    "then": {"required": ["curve"], "properties": {"curve": {"const": "sine"}}},
                }
                for key in SINE_KEYS
            ),
        ],
    )
    group = obj(
        GROUP_KEYS,
        {
            "repeat": integer("how many times the stages run", minimum=1, maximum=MAX_REPEAT),
            "stages": list_of(ref("stage"), "the stages repeated (names get #1, #2…)"),
        },
        "a repeat group",
    )
    return {
        "stage": stage,
        "repeat_group": group,
        "stage_or_group": {
            "if": {"type": "object", "required": ["repeat"]},
            "then": ref("repeat_group"),
            "else": ref("stage"),
        },
    }


def _journey_definitions() -> Schema:
    weight = {"type": "number", "exclusiveMinimum": 0, "default": 1, "description": "how often"}
    tags = {
        "type": "array",
        "items": name("a tag"),
        "description": "tags to pick journeys by: --tags, --exclude-tags",
    }
    journey_name = name("the journey's name in reports")
    amount_range = {
        "type": "object",
        "properties": {
            "min": {"type": "number", "exclusiveMinimum": 0},
            "max": {"type": "number", "exclusiveMinimum": 0},
        },
        "required": ["min", "max"],
        "additionalProperties": False,
    }
    wallet = obj(
        WALLET_KEYS,
        {
            "wallet": enum([k.value for k in WalletJourneyKind], "a reference-wallet journey"),
            "name": journey_name,
            "weight": weight,
            "tags": tags,
            "amount": {
                "anyOf": [{"type": "number", "exclusiveMinimum": 0}, amount_range],
                "description": "CNY, fixed (8.8) or a range ({min: 1, max: 200})",
            },
            "otp": boolean("complete the OTP step when asked (default true)"),
            "limit": integer("history: page size", minimum=1, maximum=1000),
        },
        "a reference-wallet journey",
        allOf=[  # a parameter only where it applies (amount: to money movements…)
            {
                "if": {
                    "required": ["wallet"],
                    "properties": {"wallet": {"not": {"enum": list(kinds)}}},
                },
                "then": {"properties": {param: False}},
            }
            for param, kinds in WALLET_PARAMS.items()
        ],
    )
    http = obj(
        HTTP_KEYS,
        {
            "http": list_of(ref("step"), "the requests of one action, in order"),
            "name": journey_name,
            "weight": weight,
            "tags": tags,
            "target": {
                "type": "string",
                "pattern": r"^[a-z][a-z0-9_-]{0,62}$",
                "description": "the system file's service it goes to (--system; default: first)",
            },
        },
        "a declarative HTTP journey",
    )
    locust = obj(
        LOCUST_KEYS,
        {
            "locust": {
                "type": "string",
                "pattern": r"^\s*[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*:[A-Za-z_]\w*\s*$",
                "description": "a Locust User class: module:Class",
                "examples": ["myproject.users:CheckoutUser"],
            },
            "name": journey_name,
            "weight": weight,
            "tags": tags,
        },
        "a user-written Locust class",
    )
    kinds = ("wallet", "http", "locust")
    return {
        "journey": {
            "type": "object",
            "description": "one journey: wallet, http or locust",
            "anyOf": [{"required": [kind]} for kind in kinds],
            "allOf": [
                {"if": {"required": [kind]}, "then": ref(f"{kind}_journey")} for kind in kinds
            ],
        },
        "wallet_journey": wallet,
        "http_journey": http,
        "locust_journey": locust,
        "step": _step(),
        "template": {"type": "string", "pattern": TEMPLATE, "description": _VARS_HELP},
        "json_body": {
            "description": "a JSON body; strings may hold placeholders (" + _VARS_HELP + ")",
            "anyOf": [
                ref("template"),
                {"type": ["number", "boolean", "null"]},
                {"type": "array", "items": ref("json_body")},
                {"type": "object", "additionalProperties": ref("json_body")},
            ],
        },
    }


def _step() -> Schema:
    methods = [m.value for m in HttpMethod]
    status = {
        "anyOf": [
            {"type": "integer", "minimum": 100, "maximum": 599},
            {"type": "string", "pattern": r"^\s*[1-5][xX][xX]\s*$"},
        ]
    }
    statuses = {"anyOf": [status, {"type": "array", "items": status}]}
    money = obj(
        MONEY_KEYS,
        {
            "idempotency_header": {
                "type": "string",
                "pattern": HEADER,
                "default": "Idempotency-Key",
            },
            "id_field": {"type": "string", "pattern": JSON_PATH, "description": "the answer's id"},
            "amount": {"type": "string", "pattern": JSON_PATH, "description": "the body's amount"},
        },
        "a money movement, logged for the integrity check",
    )
    return obj(
        STEP_KEYS,
        {
            "path": {
                "type": "string",
                "pattern": PATH,
                "description": "the path, from '/' (the service comes from --target); "
                + _VARS_HELP,
                "examples": ["/api/accounts/{user.id}/orders"],
            },
            "name": text("the step's name in reports (default: METHOD path)"),
            "method": {
                "anyOf": [
                    {"enum": methods},
                    {"type": "string", "pattern": "^(?:" + "|".join(map(anycase, methods)) + ")$"},
                ],
                "default": "GET",
                "description": "the HTTP method",
            },
            "headers": {
                "type": "object",
                "propertyNames": {"pattern": HEADER},
                "additionalProperties": {"anyOf": [ref("template"), {"type": "number"}]},
                "description": "request headers; values may hold placeholders",
            },
            "json": ref("json_body"),
            "expect": obj(
                _expect_keys(),
                {o.value: statuses for o in EXPECTABLE},
                "which statuses mean ok, rejected or busy (exact codes or classes like 4xx)",
            ),
            "extract": {
                "type": "object",
                "propertyNames": {"pattern": f"^{_IDENT}$"},
                "additionalProperties": {"type": "string", "pattern": JSON_PATH},
                "description": "vars.NAME for later steps, from a dotted path into the answer",
            },
            "money": {"anyOf": [{"type": "boolean"}, money], "description": money["description"]},
        },
        "one request",
    )


def _expect_keys() -> Keys:
    return Keys(optional=tuple(o.value for o in EXPECTABLE))


def _other_definitions() -> Schema:
    failover = obj(FAILOVER_KEYS, {"eject": duration("how long a failed target is skipped")})
    retries = obj(
        RETRY_KEYS,
        {
            "attempts": integer("tries in all, the first included", 1, MAX_ATTEMPTS),
            "backoff": duration("the first pause; it doubles"),
            "max_backoff": duration("the longest pause"),
            "honour_retry_after": boolean("wait what Retry-After says (default true)"),
            "reuse_idempotency_key": boolean("a retry sends the same key (default true)"),
        },
        "client retries",
    )
    think = {
        "anyOf": [
            duration(),
            {"type": "array", "items": duration(), "minItems": 2, "maxItems": 2},
        ]
    }
    weight = {
        "anyOf": [
            {"type": "number", "exclusiveMinimum": 0},
            {"type": "string", "pattern": PERCENT_TO_100},
        ],
        "description": "a share of users: 70% (all classes add up to 100%), or relative numbers",
    }
    return {
        "users": obj(
            USER_KEYS,
            {
                "accounts": integer("distinct virtual users (user.index 0…accounts-1)", 1),
                "first_id": integer("user.id of the first user (default 1)", 0),
                "max_in_flight": integer("open-model arrivals in flight at most", 1),
            },
            "the virtual users",
        ),
        "client": obj(
            CLIENT_KEYS,
            {
                "timeout": duration("a request's deadline (default 10s)"),
                "think_time": described(
                    think, "closed model: pause between actions, or [min, max]"
                ),
                "retries": retries,
                "failover": {
                    "anyOf": [{"type": "boolean"}, failover],
                    "description": "move a user to the next target when its own one fails",
                },
            },
            "how simulated clients wait and retry",
        ),
        "network_class": obj(
            NETWORK_KEYS,
            {
                "name": name("the class's name"),
                "weight": weight,
                "latency": duration("added delay"),
                "jitter": duration("random ± on the delay"),
                "bandwidth": bandwidth(),
            },
            "a share of users behind a slow network",
        ),
        "integrity": obj(
            INTEGRITY_KEYS,
            {
                "sql": obj(
                    INTEGRITY_SQL_KEYS,
                    {
                        "query": text("SELECT returning (key, count) rows; $1 is the run's start"),
                        "dsn": {"type": "string", "pattern": "^postgres(?:ql)?://"},
                        "dsn_env": {"type": "string", "pattern": f"^{_IDENT}$"},
                    },
                    oneOf=[{"required": ["dsn"]}, {"required": ["dsn_env"]}],
                ),
                "http": obj(
                    INTEGRITY_HTTP_KEYS,
                    {
                        "url": {"type": "string", "pattern": "^https?://"},
                        "headers": {
                            "type": "object",
                            "additionalProperties": {"type": ["string", "integer"]},
                        },
                    },
                ),
            },
            "how to read the movements your service applied, after the run",
            oneOf=[{"required": ["sql"]}, {"required": ["http"]}],
        ),
        "data": {
            "type": "object",
            "description": "CSV files journeys take values from: {data.SOURCE.COLUMN}",
            "propertyNames": {"pattern": f"^{DATA_NAME}$"},
            "additionalProperties": {"anyOf": [{"$ref": "#/definitions/csv_file"}, _source()]},
        },
        "csv_file": {
            "type": "string",
            "pattern": r"\.[cC][sS][vV]$",
            "description": "a CSV file, relative to the profile's folder; its header names the "
            "columns",
        },
    }


def _source() -> Schema:
    return obj(
        SOURCE_KEYS,
        {
            "file": ref("csv_file"),
            "mode": enum(
                [m.value for m in DataMode],
                "which row an action takes: per-user (default: user i, row i), "
                "per-user-random, shared-sequential, shared-random",
            ),
            "numbers": {
                "type": "array",
                "items": {"type": "string", "minLength": 1},
                "description": "columns sent as numbers in a JSON body",
            },
        },
        "a data source",
    )
