"""The JSON Schema of system files (``systems/*.yaml``), from the system reader's key lists
(:mod:`loadkit.stack.system`, and :mod:`loadkit.stack.system_chaos` for what faults may act on).

Structure and value forms are the schema's: URLs without credentials, ports in range, header
names a system may set, ``{env.NAME}`` as the only placeholder, DSNs without a password, label
selectors, commands as argv. What needs more than the file's shape stays the reader's (a CA file
that does not exist, ``tls`` on a service with only ``http://`` URLs, two probes with one
name); where load and faults may go is checked against the allowlist when a run starts::

    schema = system_schema()
    schema["required"]                                        # ['services']
    schema["definitions"]["docker"]["properties"]["labels"]   # at least one KEY[=VALUE]
"""

from __future__ import annotations

from loadkit.schemas.common import (
    Schema,
    boolean,
    document,
    duration,
    integer,
    list_of,
    obj,
    one_of_words,
    ref,
)
from loadkit.schemas.profile import profile_schema
from loadkit.stack import system as sy
from loadkit.stack import system_chaos as sc

_IDENT = "[A-Za-z_][A-Za-z0-9_]*"
#: a host: a bracketed IPv6 address, or a name / IPv4 address (no credentials, no port)
_HOST = r"(?:\[[0-9A-Fa-f:.]+\]|[^\s/?#@:\[\]]+)"
#: 1 to 65535
_PORT = r"(?:[1-9]\d{0,3}|[1-5]\d{4}|6[0-4]\d{3}|65[0-4]\d{2}|655[0-2]\d|6553[0-5])"
#: a service's base URL: http(s), a host, a port in range, a path; no credentials, no query
BASE_URL = rf"^https?://{_HOST}(?::{_PORT})?(?:/[^\s?#]*)?$"
#: a URL loadkit reads (a probe, a metrics endpoint): http(s) with a host
READ_URL = rf"^https?://(?:[^\s/?#@]*@)?{_HOST}(?::[^\s/?#]*)?(?:[/?#]\S*)?$"
#: the Toxiproxy API: http://HOST[:PORT] and nothing after it
TOXIPROXY_URL = rf"^http://{_HOST}(?::{_PORT})?/?$"
ENGINE = rf"^(?:unix://[^\s/]*/\S*|tcp://{_HOST}:{_PORT}(?:[/?#]\S*)?)$"
#: a DSN with a database and no password (not in the user part, not in the query)
DSN = (
    r"^postgres(?:ql)?://(?:[^\s:@/?#]*@)?[^\s@/?#]*/+[^\s/?#][^\s?#]*"
    r"(?:\?(?:(?!password)[^#])*)?(?:#.*)?$"
)
#: header values: text with ``{env.NAME}`` placeholders only ({{ and }} for braces), one line
HEADER_VALUE = rf"^(?:[^{{}}\r\n]|\{{\{{|\}}\}}|\{{\s*env\.{_IDENT}\s*\}})*$"
#: header names a system may not set (the client sets them)
RESERVED_HEADERS = "^" + one_of_words(["host", "content-length", "connection"]) + "$"
#: an allow entry that allows every address (the all-zeros IPv4 network, ``::/0``)
EVERY_ADDRESS = r"/\s*0+\]?\s*$"


def system_schema() -> Schema:
    """The whole schema (draft-07)."""
    root = obj(
        sy.SYSTEM_KEYS,
        {
            "name": _name("the system's name (default: the file name); its chaos lock is named so"),
            "description": _text("one line on what this system is"),
            "allow": list_of(
                ref("allow_entry"),
                "where load, probes and faults may go beyond loopback: host names AND the "
                "networks they resolve to, addresses, CIDR networks, *.suffixes",
            ),
            "services": ref("services"),
            "integrity": ref("integrity"),
            "probes": list_of(ref("probe"), "what 'healthy' means, before and after faults"),
            "toxiproxy": ref("toxiproxy"),
            "docker": ref("docker"),
            "postgres": ref("postgres"),
            "commands": ref("commands"),
        },
    )
    return document(
        "loadkit system",
        "A system loadkit did not start: its services, where load may go, integrity, probes, "
        "and what faults may act on (docs/your-system.md, docs/game-day.md). "
        "`loadkit validate` has the last word.",
        root,
        {**_service_definitions(), **_chaos_definitions(), **_other_definitions()},
    )


def _name(description: str, pattern: str = sy.NAME) -> Schema:
    return {"type": "string", "pattern": pattern, "description": f"{description} ({sy.NAME_HINT})"}


def _text(description: str, pattern: str = r"\S") -> Schema:
    return {"type": "string", "pattern": pattern, "description": description}


def _service_definitions() -> Schema:
    return {
        "services": {
            "type": "object",
            "description": "the system's services by name; a journey picks one with "
            "`target: NAME` (default: the first)",
            "minProperties": 1,
            "propertyNames": {"pattern": sy.NAME},
            "additionalProperties": ref("service"),
        },
        "service": obj(
            sy.SERVICE_KEYS,
            {
                "url": ref("base_url"),
                "urls": list_of(ref("base_url"), "several base URLs: users are spread over them"),
                "tls": ref("tls"),
                "headers": ref("headers"),
                "metrics": {
                    "anyOf": [ref("read_url"), ref("metrics")],
                    "description": "a Prometheus endpoint with the service's busy answers by "
                    "cause, scraped during runs (a URL, or {url, metric, cause_label, "
                    "instance_label})",
                },
            },
            "one service: its base URL(s), TLS settings, headers every request carries",
            oneOf=[{"required": ["url"]}, {"required": ["urls"]}],
        ),
        "base_url": {
            "type": "string",
            "pattern": BASE_URL,
            "description": "a base URL: http:// or https://, a host, an optional port and path; "
            "no credentials, query or fragment (use headers:)",
            "examples": ["https://shop.staging.internal:8443"],
        },
        "read_url": {
            "type": "string",
            "pattern": READ_URL,
            "description": "an http:// or https:// URL",
            "examples": ["https://shop.staging.internal:8443/healthz"],
        },
        "tls": obj(
            sy.TLS_KEYS,
            {
                "ca": _text(
                    "a CA bundle (PEM), relative to this file (default: the system's trust store)"
                ),
                "cert": _text("a client certificate (PEM) for mTLS, relative to this file"),
                "key": _text("the client certificate's key, relative to this file"),
                "verify": boolean(
                    "check the server's certificate (false only on purpose: reports say so)"
                ),
                "server_name": _text(
                    "SNI and the certificate's name, when it differs from the URL's host",
                    r"^[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$",
                ),
            },
            "how to talk TLS to the service's https:// URLs",
            dependencies={"cert": ["key"], "key": ["cert"]},
            # verify: false ignores a CA: one of them is a mistake
            **{"not": {"required": ["ca", "verify"], "properties": {"verify": {"const": False}}}},
        ),
        "headers": {
            "type": "object",
            "description": "headers every request carries; values may use {env.NAME} only, "
            "read when the run starts",
            "propertyNames": {
                "pattern": sy.HEADER_NAME.pattern,
                "not": {"pattern": RESERVED_HEADERS},
            },
            "additionalProperties": {
                "anyOf": [{"type": "string", "pattern": HEADER_VALUE}, {"type": "number"}],
            },
        },
        "metrics": obj(
            sy.METRICS_KEYS,
            {
                "url": ref("read_url"),
                "metric": _text(
                    f"the counter of busy answers (default {sy.DEFAULT_BUSY_METRIC})",
                    sy.PROM_NAME,
                ),
                "cause_label": _text("the label with the cause (default cause)", sy.PROM_NAME),
                "instance_label": _text(
                    "one instance per value of this label (default: the endpoint is the service)",
                    sy.PROM_NAME,
                ),
            },
            "a Prometheus endpoint and how to read the service's busy answers from it",
        ),
    }


def _chaos_definitions() -> Schema:
    argv_word = {"anyOf": [{"type": "string"}, {"type": "number"}]}
    first_word = {"anyOf": [{"type": "string", "minLength": 1}, {"type": "number"}]}
    return {
        "toxiproxy": obj(
            sc.TOXIPROXY_KEYS,
            {
                "url": ref("toxiproxy_url"),
                "urls": list_of(ref("toxiproxy_url"), "several Toxiproxy servers"),
                "proxies": list_of(
                    {"type": "string", "pattern": sc.PROXY_PATTERN},
                    "the proxies faults may touch: names or globs like shop-redis-*",
                ),
            },
            "your Toxiproxy server(s): network.* faults act on the proxies listed",
            oneOf=[{"required": ["url"]}, {"required": ["urls"]}],
        ),
        "toxiproxy_url": {
            "type": "string",
            "pattern": TOXIPROXY_URL,
            "description": "the Toxiproxy API, http://HOST:PORT",
            "examples": ["http://toxiproxy.staging.internal:8474"],
        },
        "docker": obj(
            sc.DOCKER_KEYS,
            {
                "engine": {
                    "type": "string",
                    "pattern": ENGINE,
                    "default": sc.LOCAL_ENGINE,
                    "description": "the Docker engine: a unix:// socket (default: this "
                    "machine's) or tcp://HOST:PORT (its host must be allowed)",
                },
                "labels": list_of(
                    {"type": "string", "pattern": sc.LABEL.pattern},
                    "container faults touch only containers carrying every one of these labels "
                    "(KEY=VALUE or KEY)",
                ),
            },
            "the Docker engine and the containers faults may touch",
        ),
        "postgres": obj(
            sc.POSTGRES_KEYS,
            {
                "dsn": {
                    "type": "string",
                    "pattern": DSN,
                    "description": "a URL DSN with a database and no password "
                    "(postgresql://chaos@db.staging:5432/shop)",
                },
                "password_env": _text(
                    "the environment variable holding the DSN role's password (default: "
                    "PGPASSWORD)",
                    sc.ENV_NAME,
                ),
            },
            "a role for the faults that need only SQL (row locks, read-only, statement "
            "timeouts, terminated backends, connection hogs, slow writes)",
        ),
        "commands": {
            "type": "object",
            "description": "your own faults by name (command.run, target NAME): inject / revert "
            "command pairs, run without a shell in this file's folder",
            "minProperties": 1,
            "propertyNames": {"pattern": sc.COMMAND_NAME},
            "additionalProperties": ref("command"),
        },
        "command": obj(
            sc.COMMAND_KEYS,
            {
                "inject": ref("argv"),
                "revert": ref("argv"),
                "check": ref("argv"),
                "timeout": duration(
                    "how long each command may take (default 30s)", examples=["30s"]
                ),
            },
            "one fault as a pair of commands",
        ),
        "argv": {
            "description": "a command: a list of words ([./flags.sh, set, cache, 'off']) or one "
            "line split like a shell would (no shell runs it)",
            "anyOf": [
                {"type": "string", "pattern": r"\S"},
                {
                    "type": "array",
                    "minItems": 1,
                    "items": [first_word],
                    "additionalItems": argv_word,
                },
            ],
        },
    }


def _other_definitions() -> Schema:
    integrity = profile_schema()["definitions"]["integrity"]  # the profile's block, as is
    return {
        "allow_entry": {
            "anyOf": [
                {"type": "string", "pattern": r"\S", "not": {"pattern": EVERY_ADDRESS}},
                {"type": "number"},
            ],
            "description": "a host name, an IP address, a CIDR network (not /0) or *.SUFFIX",
            "examples": ["shop.staging.internal", "10.20.0.0/24", "*.staging.internal"],
        },
        "integrity": integrity,
        "probe": obj(
            sy.PROBE_KEYS,
            {
                "name": _name("the probe's name"),
                "url": ref("read_url"),
                "status": integer("the status a healthy answer has (default 200)", 100, 599),
                "timeout": duration("how long to wait for it (default 5s)", examples=["5s"]),
                "headers": ref("headers"),
            },
            "a steady-state probe: GET url answers status within timeout",
        ),
    }
