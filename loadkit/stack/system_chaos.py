"""The sections of a system file that faults act on: the team's own Toxiproxy server(s), Docker
engine and containers, PostgreSQL, and commands (docs/game-day.md).

Each is optional; a fault on a component the system file does not describe is refused before
anything is injected. Everything here is validated with ``file:line:col`` like the rest of the
system file, and every address is checked against the allowlist when a run starts::

    toxiproxy:
      url: http://toxiproxy.staging.internal:8474      # or urls: [...] (several servers)
      proxies: [shop-postgres, "shop-redis-*"]          # the proxies faults may touch
    docker:
      engine: unix:///var/run/docker.sock               # the default; tcp://HOST:PORT if allowed
      labels: [com.docker.compose.project=shop]         # containers carrying every label
    postgres:
      dsn: postgresql://chaos@db.staging.internal:5432/shop
      password_env: SHOP_CHAOS_PG_PASSWORD              # the password, from the environment
    commands:
      cache-off:                                        # a fault: command.run, target cache-off
        inject: [./flags.sh, set, cache, "off"]         # argv (no shell); relative to this file
        revert: [./flags.sh, set, cache, "on"]
        check: [./flags.sh, is, cache, "on"]            # optional: exit 0 once reverted
        timeout: 30s
"""

from __future__ import annotations

import os
import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

from loadkit.errors import ConfigError
from loadkit.safety import Allowlist
from loadkit.spec.errors import Invalid
from loadkit.spec.loader import Map, Node
from loadkit.spec.schema import Context, Fields, Keys, items_of
from loadkit.spec.values import describe, parse_duration, parse_text

TOXIPROXY_KEYS = Keys(required=("proxies",), optional=("url", "urls"))
DOCKER_KEYS = Keys(required=("labels",), optional=("engine",))
POSTGRES_KEYS = Keys(required=("dsn",), optional=("password_env",))
COMMAND_KEYS = Keys(required=("inject", "revert"), optional=("check", "timeout"))
#: the engine the Docker CLI uses when DOCKER_HOST is unset: a system names another explicitly
LOCAL_ENGINE = "unix:///var/run/docker.sock"
COMMAND_NAME = r"^[a-z][a-z0-9_-]{0,62}$"
ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"
#: a proxy name or a glob over names (toxiproxy names are free text; ours stay simple)
PROXY_PATTERN = r"^[A-Za-z0-9*?\[\]_.:-]+$"
LABEL = re.compile(r"^[A-Za-z0-9._/-]+(=.*)?$")


@dataclass(frozen=True)
class ToxiproxySection:
    """The team's Toxiproxy server(s) (API URLs) and the proxies faults may touch (names or
    globs such as ``shop-*``)."""

    urls: tuple[str, ...]
    proxies: tuple[str, ...]


@dataclass(frozen=True)
class DockerSection:
    """The engine (``unix://`` socket or ``tcp://HOST:PORT``) and the label selector every
    container faults may touch must match (all labels, like ``docker ps --filter``)."""

    labels: tuple[str, ...]
    engine: str = LOCAL_ENGINE

    @property
    def remote_host(self) -> str | None:
        """The engine's host when it is reached over TCP (it must be allowed), else None."""
        parts = urlsplit(self.engine)
        return parts.hostname if parts.scheme == "tcp" else None


@dataclass(frozen=True)
class PostgresSection:
    """A DSN without a password, for the faults that need only SQL; the password comes from
    the environment variable ``password_env`` (or libpq's own ``PGPASSWORD``)."""

    dsn: str
    password_env: str | None = None

    def resolved_dsn(self) -> str:
        """The DSN with the password filled in; ConfigError when its variable is unset."""
        if self.password_env is None:
            password = os.environ.get("PGPASSWORD")
        else:
            password = os.environ.get(self.password_env)
            if password is None:
                raise ConfigError(
                    f"postgres.password_env: the environment variable {self.password_env} is "
                    "not set; set it to the password of the DSN's role before the run"
                )
        if password is None:
            return self.dsn
        parts = urlsplit(self.dsn)
        user, _, host = parts.netloc.rpartition("@")
        netloc = f"{user}:{quote(password, safe='')}@{host}" if user else parts.netloc
        return urlunsplit(parts._replace(netloc=netloc))

    @property
    def where(self) -> str:
        """``host:port/database``, for plans and messages."""
        parts = urlsplit(self.dsn)
        return f"{parts.netloc.rpartition('@')[2]}{parts.path}"


@dataclass(frozen=True)
class CommandSpec:
    """A user-supplied fault: ``inject`` and ``revert`` commands (argv, run without a shell,
    in ``cwd``), each given ``timeout_s``; ``check`` exits 0 once the revert took effect."""

    name: str
    inject: tuple[str, ...]
    revert: tuple[str, ...]
    check: tuple[str, ...] | None = None
    timeout_s: float = 30.0
    cwd: str = "."


def check_sections(
    allow: Allowlist,
    source: str,
    toxiproxy: ToxiproxySection | None,
    docker: DockerSection | None,
    postgres: PostgresSection | None,
) -> None:
    """Every address the sections name, against ``allow`` (ConfigError before anything)."""
    if toxiproxy is not None:
        for url in toxiproxy.urls:
            allow.check_url(url, what=f"{source}: toxiproxy", schemes=("http",))
    if docker is not None and docker.remote_host is not None:
        allow.check_host(docker.remote_host, what=f"{source}: docker.engine")
    if postgres is not None:
        allow.check_dsn(postgres.dsn, what=f"{source}: postgres.dsn")


def read_toxiproxy(ctx: Context, node: Node) -> ToxiproxySection:
    fields = Fields(ctx, node, TOXIPROXY_KEYS, "toxiproxy block")
    urls: tuple[str, ...] = ()
    if fields.has("url") and fields.has("urls"):
        fields.error("urls", "give 'url' (one server) or 'urls' (several), not both")
    elif fields.has("url"):
        urls = (fields.get("url", _api_url, ""),)
    elif fields.has("urls"):
        child = fields.child("urls")
        assert child is not None
        urls = tuple(ctx.read(i, _api_url, "") for i in items_of(ctx, child, "URLs", "URL"))
    elif fields.ok:
        fields.error("url", "name the Toxiproxy API: url: http://toxiproxy.staging:8474")
    proxies: list[str] = []
    child = fields.child("proxies")
    if child is not None:
        for item in items_of(ctx, child, "proxy names or patterns", "proxy"):
            proxies.append(ctx.read(item, _proxy_pattern, ""))
    return ToxiproxySection(tuple(u for u in urls if u), tuple(p for p in proxies if p))


def _api_url(value: object) -> str:
    text = parse_text(value)
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise Invalid(f"expected a URL like http://toxiproxy.staging:8474, got {text!r}") from exc
    if parts.scheme != "http" or not parts.hostname or port == 0:
        raise Invalid(
            f"expected the Toxiproxy API as http://HOST:PORT (like http://127.0.0.1:8474), "
            f"got {text!r}"
        )
    if parts.path not in ("", "/") or parts.query or parts.username:
        raise Invalid(f"expected http://HOST:PORT with nothing after it, got {text!r}")
    return text.rstrip("/")


def _proxy_pattern(value: object) -> str:
    text = value if isinstance(value, str) else ""
    if not re.match(PROXY_PATTERN, text):
        raise Invalid(f"expected a proxy name or a pattern like 'shop-*', got {describe(value)}")
    return text


def read_docker(ctx: Context, node: Node) -> DockerSection:
    fields = Fields(ctx, node, DOCKER_KEYS, "docker block")
    engine = fields.get("engine", _engine, LOCAL_ENGINE)
    labels: list[str] = []
    child = fields.child("labels")
    if child is not None:
        for item in items_of(ctx, child, "labels (KEY=VALUE or KEY)", "label"):
            labels.append(ctx.read(item, _label, ""))
    return DockerSection(tuple(label for label in labels if label), engine)


def _engine(value: object) -> str:
    text = parse_text(value)
    parts = urlsplit(text)
    if parts.scheme == "unix" and parts.path:
        return text
    if parts.scheme == "tcp" and parts.hostname:
        try:
            port = parts.port
        except ValueError:
            port = None
        if port:
            return text
    raise Invalid(f"expected unix:///var/run/docker.sock or tcp://HOST:PORT, got {describe(value)}")


def _label(value: object) -> str:
    text = value if isinstance(value, str) else ""
    if not LABEL.match(text):
        raise Invalid(
            f"expected a label like com.docker.compose.project=shop (or just the key), "
            f"got {describe(value)}"
        )
    return text


def read_postgres(ctx: Context, node: Node) -> PostgresSection:
    fields = Fields(ctx, node, POSTGRES_KEYS, "postgres block")
    dsn = fields.get("dsn", _dsn, "")
    password_env = fields.get(
        "password_env",
        lambda v: parse_text(v, pattern=ENV_NAME, hint="an environment variable's name"),
        None,
    )
    return PostgresSection(dsn, password_env)


def _dsn(value: object) -> str:
    text = parse_text(value)
    parts = urlsplit(text)
    if parts.scheme not in ("postgresql", "postgres") or not parts.path.strip("/"):
        raise Invalid(
            f"expected a URL DSN like postgresql://chaos@db.staging:5432/shop, got {text!r}"
        )
    if parts.password is not None:
        raise Invalid(
            "a DSN in a system file has no password (files get shared); give password_env: "
            "NAME and set that variable"
        )
    if "password" in parts.query:
        raise Invalid("a DSN in a system file has no password; give password_env: NAME")
    return text


def read_commands(ctx: Context, node: Node, base: Path) -> tuple[CommandSpec, ...]:
    if not isinstance(node, Map):
        ctx.error(
            node,
            f"expected commands by name ('cache-off: {{inject: …}}'), got {describe(node.plain())}",
        )
        return ()
    if not node.items:
        ctx.error(node, "expected at least one command")
    commands = []
    for key, child in node.items.items():
        if not re.match(COMMAND_NAME, key):
            ctx.error_at(
                node.key_marks[key],
                child.path,
                f"command name '{key}': lower-case letters, digits, '-' and '_', starting with "
                "a letter",
            )
            continue
        fields = Fields(ctx, child, COMMAND_KEYS, "command")
        empty: tuple[str, ...] = ()
        inject = fields.get("inject", _argv, empty)
        revert = fields.get("revert", _argv, empty)
        check = fields.get("check", _argv, None)
        timeout = fields.get("timeout", parse_duration, 30.0)
        commands.append(CommandSpec(key, inject, revert, check or None, timeout, str(base)))
    return tuple(commands)


def _argv(value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        try:
            argv = shlex.split(value)
        except ValueError as exc:
            raise Invalid(f"cannot split {value!r} into words: {exc}") from None
    elif isinstance(value, list) and all(
        isinstance(v, str | int | float) and not isinstance(v, bool) for v in value
    ):
        argv = [str(v) for v in value]
    else:
        raise Invalid(
            f"expected a command as a list of words ([./flags.sh, set, cache, 'off']) or one "
            f"line, got {describe(value)}"
        )
    if not argv or not argv[0]:
        raise Invalid("expected a command, got an empty one")
    return tuple(argv)
