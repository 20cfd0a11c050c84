"""System files (``systems/*.yaml``): a named description of a system loadkit did not start.

The team's own staging system: where its services are (one or more base URLs each, http or
https, TLS settings, headers every request carries), where loadkit may go (``allow``), how to
check money integrity, and the steady-state probes. ``loadkit run PROFILE --system FILE`` (and
``capacity``, ``chaos run``) aim at it; journeys pick a service by name (the first by default).
Faults on the system's own Toxiproxy, containers, PostgreSQL and commands have their sections
here too (docs/your-system.md); its chaos sections in :mod:`loadkit.stack.system_chaos`
(docs/game-day.md). A service's optional ``metrics:`` names a Prometheus endpoint
with its busy answers by cause, scraped during runs so reports show the server's causes beside
the client's (a URL, or ``{url, metric, cause_label, instance_label}``)::

    system = load_system("systems/staging.yaml")     # every mistake as file:line:col
    system.service("shop").urls, system.allowlist.texts

Relative paths (CA bundles, client certificates) are relative to the system file.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from loadkit.errors import ConfigError
from loadkit.profile.model import IntegrityCheck
from loadkit.profile.read import read_integrity
from loadkit.safety import Allowlist, Entry
from loadkit.spec.errors import Invalid
from loadkit.spec.loader import Document, Node, load_document
from loadkit.spec.schema import Context, Fields, Keys, items_of
from loadkit.spec.template import Template, parse_template
from loadkit.spec.values import describe, parse_bool, parse_duration, parse_int, parse_text
from loadkit.stack.system_chaos import (
    CommandSpec,
    DockerSection,
    PostgresSection,
    ToxiproxySection,
    check_sections,
    read_commands,
    read_docker,
    read_postgres,
    read_toxiproxy,
)

SYSTEM_KEYS = Keys(
    required=("services",),
    optional=(
        "name",
        "description",
        "allow",
        "integrity",
        "probes",
        "toxiproxy",
        "docker",
        "postgres",
        "commands",
    ),
)
SERVICE_KEYS = Keys(optional=("url", "urls", "tls", "headers", "metrics"))
METRICS_KEYS = Keys(required=("url",), optional=("metric", "cause_label", "instance_label"))
#: the counter the reference wallet exports its busy answers in, by ``cause``
DEFAULT_BUSY_METRIC = "wallet_busy_responses_total"
PROM_NAME = r"^[a-zA-Z_:][a-zA-Z0-9_:]*$"
TLS_KEYS = Keys(optional=("ca", "cert", "key", "verify", "server_name"))
PROBE_KEYS = Keys(required=("name", "url"), optional=("status", "timeout", "headers"))
NAME = r"^[a-z][a-z0-9_-]{0,62}$"
NAME_HINT = "lower-case letters, digits, '-' and '_', starting with a letter"
#: header names a system may set on every request (RFC 9110 token characters)
HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")


@dataclass(frozen=True)
class Tls:
    """How to talk TLS to a service: ``ca`` (a CA bundle; None = the system's trust store),
    a client certificate ``cert`` + ``key`` (mTLS), ``verify`` (off only on purpose: runs say
    so loudly), ``server_name`` (SNI and certificate name, when it differs from the URL's)."""

    ca: Path | None = None
    cert: Path | None = None
    key: Path | None = None
    verify: bool = True
    server_name: str | None = None


@dataclass(frozen=True)
class Metrics:
    """A Prometheus endpoint with the service's busy answers: the counter ``metric`` (its
    samples summed by ``cause_label``), one instance per value of ``instance_label`` (``None``:
    the whole endpoint is the service)."""

    url: str
    metric: str = DEFAULT_BUSY_METRIC
    cause_label: str = "cause"
    instance_label: str | None = None


@dataclass(frozen=True)
class Service:
    """One named service of the system: its base URLs, TLS settings and default headers
    (templates: ``{env.NAME}`` only, resolved when a run starts), and where its own busy
    causes can be scraped (``metrics``)."""

    name: str
    urls: tuple[str, ...]
    tls: Tls = field(default_factory=Tls)
    headers: Mapping[str, Template] = field(default_factory=dict)
    metrics: Metrics | None = None

    @property
    def https(self) -> bool:
        return any(u.startswith("https://") for u in self.urls)

    def env_names(self) -> list[str]:
        return sorted({v[4:] for t in self.headers.values() for v in t.variables})

    def rendered_headers(self) -> dict[str, str]:
        """The headers with ``{env.NAME}`` filled in; ConfigError naming unset variables."""
        import os

        missing = [n for n in self.env_names() if n not in os.environ]
        if missing:
            raise ConfigError(
                f"service '{self.name}': headers use unset environment variable(s) "
                f"{', '.join(missing)}; set them before the run"
            )
        env = {f"env.{n}": os.environ[n] for n in self.env_names()}
        return {k: str(t.render(env)) for k, t in self.headers.items()}


@dataclass(frozen=True)
class Probe:
    """A steady-state probe: ``GET url`` answers ``status`` within ``timeout_s``."""

    name: str
    url: str
    status: int = 200
    timeout_s: float = 5.0
    headers: Mapping[str, Template] = field(default_factory=dict)


@dataclass(frozen=True)
class System:
    name: str
    services: tuple[Service, ...]
    description: str = ""
    allow: tuple[Entry, ...] = ()
    integrity: IntegrityCheck | None = None
    probes: tuple[Probe, ...] = ()
    source: str = ""
    #: what faults may act on (loadkit.stack.system_chaos; docs/game-day.md)
    toxiproxy: ToxiproxySection | None = None
    docker: DockerSection | None = None
    postgres: PostgresSection | None = None
    commands: tuple[CommandSpec, ...] = ()

    @property
    def allowlist(self) -> Allowlist:
        return Allowlist(self.allow)

    def service(self, name: str | None = None) -> Service:
        """The service called ``name`` (the first when None); ConfigError with a close match."""
        if name is None:
            return self.services[0]
        for service in self.services:
            if service.name == name:
                return service
        from loadkit.spec.values import did_you_mean

        names = [s.name for s in self.services]
        raise ConfigError(
            f"{self.source}: no service named '{name}'{did_you_mean(name, names)} "
            f"(services: {', '.join(names)})"
        )

    def check(self, allow: Allowlist) -> None:
        """Every URL this system names, against ``allow`` (the system's own entries plus the
        command line's): ConfigError before anything starts."""
        for service in self.services:
            for url in service.urls:
                allow.check_url(url, what=f"{self.source}: services.{service.name}")
        for probe in self.probes:
            allow.check_url(probe.url, what=f"{self.source}: probes.{probe.name}")
        for service in self.services:
            if service.metrics is not None:
                allow.check_url(
                    service.metrics.url, what=f"{self.source}: services.{service.name}.metrics"
                )
        check = self.integrity
        if check is not None and check.http is not None:
            allow.check_url(check.http.url, what=f"{self.source}: integrity.http.url")
        if check is not None and check.sql is not None and check.sql.dsn:
            allow.check_dsn(check.sql.dsn, what=f"{self.source}: integrity.sql.dsn")
        check_sections(allow, self.source, self.toxiproxy, self.docker, self.postgres)

    def command(self, name: str) -> CommandSpec | None:
        return next((c for c in self.commands if c.name == name), None)


def load_system(path: str | Path) -> System:
    """Read and validate a system file; ``SpecError`` listing every mistake."""
    return read_system(load_document(path))


def read_system(doc: Document) -> System:
    ctx = Context(doc.file, doc.problems)
    base = Path(doc.file).parent
    fields = Fields(ctx, doc.root, SYSTEM_KEYS, "system file")
    name = fields.get("name", lambda v: parse_text(v, pattern=NAME, hint=NAME_HINT), "")
    description = fields.get("description", parse_text, "")
    allow = fields.sub("allow", lambda n: _allow(ctx, n, doc.file)) or ()
    services = fields.sub("services", lambda n: _services(ctx, n, base)) or ()
    integrity = fields.sub("integrity", lambda n: read_integrity(ctx, n))
    probes = fields.sub("probes", lambda n: _probes(ctx, n)) or ()
    toxiproxy = fields.sub("toxiproxy", lambda n: read_toxiproxy(ctx, n))
    docker = fields.sub("docker", lambda n: read_docker(ctx, n))
    postgres = fields.sub("postgres", lambda n: read_postgres(ctx, n))
    commands = fields.sub("commands", lambda n: read_commands(ctx, n, base)) or ()
    ctx.raise_if_any()
    return System(
        name=name or Path(doc.file).stem,
        services=services,
        description=description,
        allow=allow,
        integrity=integrity,
        probes=probes,
        source=doc.file,
        toxiproxy=toxiproxy,
        docker=docker,
        postgres=postgres,
        commands=commands,
    )


def _allow(ctx: Context, node: Node, file: str) -> tuple[Entry, ...]:
    entries = []
    for item in items_of(ctx, node, "hosts, addresses, networks or *.suffixes", "entry"):
        value = item.plain()
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            ctx.error(item, f"expected a host, address, CIDR or *.SUFFIX, got {describe(value)}")
            continue
        try:
            entries.append(Entry.parse(str(value), f"{file}:{item.mark.line}"))
        except ConfigError as exc:
            ctx.error(item, exc.message.split(": ", 1)[-1])
    return tuple(entries)


def _services(ctx: Context, node: Node, base: Path) -> tuple[Service, ...]:
    from loadkit.spec.loader import Map

    if not isinstance(node, Map):
        ctx.error(
            node, f"expected services by name ('shop: {{url: …}}'), got {describe(node.plain())}"
        )
        return ()
    if not node.items:
        ctx.error(node, "expected at least one service")
    services = []
    for key, child in node.items.items():
        if not re.match(NAME, key):
            ctx.error_at(node.key_marks[key], child.path, f"service name '{key}': {NAME_HINT}")
            continue
        services.append(_service(ctx, key, child, base))
    return tuple(services)


def _service(ctx: Context, name: str, node: Node, base: Path) -> Service:
    fields = Fields(ctx, node, SERVICE_KEYS, "service")
    urls: tuple[str, ...] = ()
    if fields.has("url") and fields.has("urls"):
        fields.error("urls", "give 'url' (one) or 'urls' (several), not both")
    elif fields.has("url"):
        urls = (fields.get("url", _base_url, ""),)
    elif fields.has("urls"):
        child = fields.child("urls")
        assert child is not None
        urls = tuple(ctx.read(item, _base_url, "") for item in items_of(ctx, child, "URLs", "URL"))
    else:
        fields.error("url", "a service needs 'url' (or 'urls'), like https://shop.staging:8443")
    tls = fields.sub("tls", lambda n: _tls(ctx, n, base)) or Tls()
    if tls != Tls() and urls and not any(u.startswith("https://") for u in urls):
        fields.error("tls", "tls settings on a service with no https:// URL")
    headers = fields.sub("headers", lambda n: _headers(ctx, n)) or {}
    metrics = fields.sub("metrics", lambda n: _metrics(ctx, n))
    return Service(name, tuple(u for u in urls if u), tls, headers, metrics)


def _metrics(ctx: Context, node: Node) -> Metrics | None:
    from loadkit.spec.loader import Map

    if not isinstance(node, Map):
        return Metrics(ctx.read(node, _probe_url, ""))
    fields = Fields(ctx, node, METRICS_KEYS, "metrics block")

    def name(value: object) -> str:
        return parse_text(value, pattern=PROM_NAME, hint="a Prometheus metric or label name")

    return Metrics(
        url=fields.get("url", _probe_url, ""),
        metric=fields.get("metric", name, DEFAULT_BUSY_METRIC),
        cause_label=fields.get("cause_label", name, "cause"),
        instance_label=fields.get("instance_label", name, None),
    )


def _base_url(value: object) -> str:
    text = parse_text(value)
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise Invalid(
            f"expected a URL like https://shop.staging:8443, got {text!r} ({exc})"
        ) from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise Invalid(
            f"expected an http:// or https:// URL like https://shop.staging:8443, got {text!r}"
        )
    if parts.query or parts.fragment or parts.username or parts.password:
        raise Invalid(
            f"a base URL has no query, fragment or credentials (use headers:), got {text!r}"
        )
    if port == 0:
        raise Invalid(f"port 0 is not a port, in {text!r}")
    return text.rstrip("/")


def _tls(ctx: Context, node: Node, base: Path) -> Tls:
    fields = Fields(ctx, node, TLS_KEYS, "tls block")

    def file(key: str) -> Path | None:
        def parse(value: object) -> Path:
            path = Path(parse_text(value))
            path = path if path.is_absolute() else base / path
            if not path.is_file():
                raise Invalid(f"no such file: {path}")
            return path

        return fields.get(key, parse, None)

    ca, cert, key = file("ca"), file("cert"), file("key")
    if (cert is None) != (key is None) and fields.has("cert") != fields.has("key"):
        fields.error(
            "cert" if fields.has("cert") else "key",
            "a client certificate needs both 'cert' and 'key'",
        )
    verify = fields.get("verify", parse_bool, True)
    if not verify and fields.has("ca"):
        fields.error("verify", "verify: false ignores the 'ca' given; drop one of them")
    server_name = fields.get("server_name", _server_name, None)
    return Tls(ca=ca, cert=cert, key=key, verify=verify, server_name=server_name)


def _server_name(value: object) -> str:
    text = parse_text(value)
    if not re.match(r"^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$", text):
        raise Invalid(f"expected a host name like shop.staging.internal, got {text!r}")
    return text


def _headers(ctx: Context, node: Node) -> dict[str, Template]:
    from loadkit.spec.loader import Map

    if not isinstance(node, Map):
        ctx.error(node, f"expected 'Header-Name: value' lines, got {describe(node.plain())}")
        return {}
    out: dict[str, Template] = {}
    for key, child in node.items.items():
        if not HEADER_NAME.match(key) or key.lower() in ("host", "content-length", "connection"):
            ctx.error_at(
                node.key_marks[key], child.path, f"'{key}' is not a header a system may set"
            )
            continue
        value = child.plain()
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            ctx.error(child, f"expected a header value (text), got {describe(value)}")
            continue
        text = str(value)
        if "\r" in text or "\n" in text:
            ctx.error(child, "a header value cannot contain a line break")
            continue
        try:
            template = parse_template(text)
        except Invalid as exc:
            ctx.error(child, exc.message)
            continue
        if other := [v for v in template.variables if not v.startswith("env.")]:
            ctx.error(child, f"a system's headers may use {{env.NAME}} only, not {{{other[0]}}}")
            continue
        out[key] = template
    return out


def _probes(ctx: Context, node: Node) -> tuple[Probe, ...]:
    probes = []
    seen: set[str] = set()
    for item in items_of(ctx, node, "probes", "probe"):
        fields = Fields(ctx, item, PROBE_KEYS, "probe")
        name = fields.get("name", lambda v: parse_text(v, pattern=NAME, hint=NAME_HINT), "")
        if name in seen:
            fields.error("name", f"probe name '{name}' is used twice")
        seen.add(name)
        url = fields.get("url", _probe_url, "")
        status = fields.get("status", lambda v: parse_int(v, minimum=100, maximum=599), 200)
        timeout = fields.get("timeout", parse_duration, 5.0)
        headers = fields.sub("headers", lambda n: _headers(ctx, n)) or {}
        probes.append(Probe(name, url, status, timeout, headers))
    return tuple(probes)


def _probe_url(value: object) -> str:
    text = parse_text(value)
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise Invalid(f"expected a URL like https://shop.staging:8443/healthz, got {text!r}")
    return text


def summary(system: System, file: str | Path) -> str:
    """The one-line summary ``loadkit validate`` prints for a valid system file."""
    services = ", ".join(
        f"{s.name} ({len(s.urls)} URL{'s' if len(s.urls) != 1 else ''})" for s in system.services
    )
    return (
        f"{file}: system '{system.name}': services {services}; "
        f"{len(system.allow)} allow entr{'y' if len(system.allow) == 1 else 'ies'}, "
        f"{len(system.probes)} probe{'s' if len(system.probes) != 1 else ''}"
        + (", integrity check" if system.integrity else "")
        + (f"; faults on: {', '.join(parts)}" if (parts := _fault_parts(system)) else "")
    )


def _fault_parts(system: System) -> list[str]:
    parts = []
    if system.toxiproxy is not None:
        parts.append(f"toxiproxy ({len(system.toxiproxy.proxies)} proxy pattern(s))")
    if system.docker is not None:
        parts.append(f"containers labelled {', '.join(system.docker.labels)}")
    if system.postgres is not None:
        parts.append(f"postgres {system.postgres.where}")
    if system.commands:
        parts.append(f"commands {', '.join(c.name for c in system.commands)}")
    return parts
