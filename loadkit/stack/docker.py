"""Docker: the engine connection, and containers found by name or label.

loadkit never starts an engine; it finds one the way the Docker CLI does (``DOCKER_HOST``, else
``unix:///var/run/docker.sock``) and fails with one line (exit 3) when there is none. The stack's
images are built in :mod:`loadkit.stack.docker_image`; the stack itself runs in
:mod:`loadkit.stack.backends.docker`::

    client = connect()                      # DockerUnavailable (exit 3) when no engine answers
    for c in select(client, "label:com.docker.compose.service=api"):
        print(c.name, c.status)
"""

from __future__ import annotations

import fnmatch
import hashlib
import importlib
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psutil

from loadkit.errors import ComponentFailed, ConfigError, EnvironmentProblem
from loadkit.stack.process import ProcessInfo

DEFAULT_HOST = "unix:///var/run/docker.sock"
#: labels on every container of a docker-backed stack (and on its image)
LABEL_STACK = "io.loadkit.stack"  # the stack directory
LABEL_COMPONENT = "io.loadkit.component"  # postgres | toxiproxy | wallet-1 …
LABEL_IMAGE = "io.loadkit.image"


class DockerUnavailable(EnvironmentProblem):
    """No Docker engine answers: exit 3, nothing attempted."""


# -- the engine -----------------------------------------------------------------------------------


def engine_url() -> str:
    """Where the Docker SDK looks for the engine (as the Docker CLI does)."""
    return os.environ.get("DOCKER_HOST") or DEFAULT_HOST


def _reason(exc: BaseException) -> str:
    text = str(exc)
    for known in (
        "No such file or directory",
        "Connection refused",
        "Permission denied",
        "timed out",
        "Name or service not known",
    ):
        if known.lower() in text.lower():
            return known.lower()
    return re.sub(r"\s+", " ", text)[:160]


def connect(timeout: float = 30.0, engine: str | None = None) -> Any:
    """A ``docker.DockerClient`` whose engine answered a ping; :class:`DockerUnavailable` (one
    line, exit 3) otherwise. ``engine``: this engine (``unix://…``, ``tcp://…``) instead of the
    one the environment names (``DOCKER_HOST``)."""
    try:
        # by name: a checkout's docker/ directory (Dockerfile, compose.yaml) is no package
        docker: Any = importlib.import_module("docker")
        from docker.errors import DockerException
    except ImportError as exc:  # a dependency of loadkit: only a broken install lacks it
        raise DockerUnavailable("the Docker SDK is missing: pip install docker") from exc
    fix = "start dockerd or set DOCKER_HOST" if engine is None else "start dockerd there"
    where = engine or engine_url()
    try:
        if engine is None:
            client = docker.from_env(timeout=timeout)
        else:
            client = docker.DockerClient(base_url=engine, timeout=int(timeout))
        client.ping()
    except (DockerException, OSError) as exc:
        raise DockerUnavailable(
            f"Docker engine not reachable at {where}: {_reason(exc)}; {fix}"
        ) from None
    except Exception as exc:  # requests' errors when the socket answers something odd
        raise DockerUnavailable(
            f"Docker engine not reachable at {where}: {_reason(exc)}; {fix}"
        ) from None
    return client


def remote_engine_host(url: str) -> str | None:
    """The host of an engine reached over the network (``tcp://``/``ssh://``), else None."""
    parts = urlsplit(url)
    return parts.hostname if parts.scheme in ("tcp", "ssh", "http", "https") else None


def engine_facts(client: Any) -> dict[str, Any]:
    """Version, storage driver, cgroup version and whether CPU quotas work (for ``doctor``)."""
    info = client.info()
    return {
        "version": info.get("ServerVersion", "?"),
        "storage_driver": info.get("Driver", "?"),
        "cgroup_version": info.get("CgroupVersion", "?"),
        "cpu_quota": bool(info.get("CpuCfsQuota")),
    }


# -- containers -----------------------------------------------------------------------------------


def container_name(stack_dir: str | Path, component: str) -> str:
    """The name of a stack component's container: one per stack directory and component."""
    key = hashlib.sha256(str(Path(stack_dir).absolute()).encode()).hexdigest()[:8]
    return f"loadkit-{key}-{component}"


def process_info(container: Any, component: str) -> ProcessInfo | None:
    """The container's main process as the host sees it (pid, start time), or None when the
    container does not run: process-level faults signal it like any process loadkit started."""
    container.reload()
    state = container.attrs.get("State", {})
    pid = int(state.get("Pid") or 0)
    if not state.get("Running") or pid <= 0:
        return None
    try:
        created = psutil.Process(pid).create_time()
    except psutil.Error:
        created = 0.0
    argv = [*(container.attrs["Config"].get("Entrypoint") or []), *container.attrs["Config"]["Cmd"]]
    return ProcessInfo(component, pid, created, argv, f"docker logs {container.name}")


def settle(container: Any, timeout: float = 10.0) -> None:
    """Until the engine has noticed what the kernel knows: a container whose main process was
    just killed (from the host, or by a fault) still shows ``running`` for a moment."""
    deadline = time.monotonic() + timeout
    while True:
        container.reload()
        state = container.attrs.get("State", {})
        pid = int(state.get("Pid") or 0)
        if container.status != "running" or _alive(pid) or time.monotonic() > deadline:
            return
        time.sleep(0.02)


def _alive(pid: int) -> bool:
    try:
        return pid > 0 and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def logs_tail(container: Any, lines: int = 20) -> str:
    from docker.errors import APIError

    try:
        data: bytes = container.logs(tail=lines)
    except APIError:
        return ""
    return data.decode("utf-8", "replace").rstrip()


def wait_running(container: Any, timeout: float = 30.0) -> None:
    """Until the engine reports the container running (ComponentFailed with its logs if not)."""
    deadline = time.monotonic() + timeout
    while True:
        container.reload()
        if container.status == "running":
            return
        if time.monotonic() > deadline:
            raise ComponentFailed(
                container.name,
                f"not running after {timeout:g}s (state {container.status})",
                log_tail=logs_tail(container),
            )
        time.sleep(0.05)


def parse_selector(target: str) -> tuple[str, str]:
    """``name:PATTERN`` → ("name", PATTERN); ``label:KEY=VALUE`` → ("label", "KEY=VALUE");
    a bare word is a component of the docker-backed stack (``wallet-1``)."""
    kind, sep, value = target.partition(":")
    if sep and kind in ("name", "label"):
        if not value:
            raise ConfigError(f"container target {target!r}: nothing after '{kind}:'")
        return kind, value
    if sep:
        raise ConfigError(
            f"container target {target!r}: expected name:PATTERN, label:KEY=VALUE or a "
            "component of the docker-backed stack (wallet-1, postgres, toxiproxy)"
        )
    return "component", target


def select(client: Any, target: str, stack_dir: str | Path | None = None) -> list[Any]:
    """Every container (running or not) that ``target`` names, sorted by name; a bare word is a
    component of the docker-backed stack in ``stack_dir`` (without one: a container's name)."""
    kind, value = parse_selector(target)
    if kind == "label":
        found = client.containers.list(all=True, filters={"label": value})
    elif kind == "name":
        found = [
            c
            for c in client.containers.list(all=True)
            if fnmatch.fnmatchcase(c.name, value) or c.name == value
        ]
    else:
        if stack_dir is None:  # a system's container, by its exact name
            return [c for c in client.containers.list(all=True) if c.name == value]
        labels = [f"{LABEL_STACK}={Path(stack_dir).absolute()}", f"{LABEL_COMPONENT}={value}"]
        found = client.containers.list(all=True, filters={"label": labels})
    return sorted(found, key=lambda c: str(c.name))


def stack_containers(client: Any, stack_dir: str | Path) -> Iterator[Any]:
    label = f"{LABEL_STACK}={Path(stack_dir).absolute()}"
    yield from client.containers.list(all=True, filters={"label": label})


JOURNALED_LABELS = ("io.loadkit.", "com.docker.compose.project", "com.docker.compose.service")


def describe(container: Any) -> dict[str, Any]:
    """What the journal keeps about one container (enough to put it back)."""
    host = container.attrs.get("HostConfig", {})
    return {
        "id": container.id,
        "name": container.name,
        "status": container.status,
        "cpu_quota": int(host.get("CpuQuota") or 0),
        "cpu_period": int(host.get("CpuPeriod") or 0),
        "nano_cpus": int(host.get("NanoCpus") or 0),
        # which stack or compose project it belongs to (not every label: they can be large)
        "labels": {
            k: str(v)
            for k, v in (container.labels or {}).items()
            if k.startswith(
                ("io.loadkit.", "com.docker.compose.project", "com.docker.compose.service")
            )
        },
    }


# -- the blast radius -----------------------------------------------------------------------------


def has_label(container: Any, selector: str) -> bool:
    """``KEY=VALUE``: the container carries that label with that value; ``KEY``: it has it."""
    labels = container.labels or {}
    key, sep, value = selector.partition("=")
    return key in labels and (not sep or str(labels[key]) == value)


@dataclass(frozen=True)
class ContainerScope:
    """The containers faults may touch. A container is in scope when it carries every one of
    ``labels`` (a stack's own label, or a system file's selector) and, when ``patterns``
    (a scenario's ``safety.allow``) are given, its name matches one of them too. ``widen``: the
    patterns replace the labels (a reference stack run that also names the user's own
    containers). ``engine``: where they run (None: the environment's engine)::

        scope = ContainerScope(labels=("com.docker.compose.project=shop",))
        inside, outside = scope.split(select(client, "name:*"))   # never touch ``outside``
    """

    labels: tuple[str, ...] = ()
    patterns: tuple[str, ...] = ()
    engine: str | None = None
    stack_dir: str | None = None  # bare targets name this docker-backed stack's components
    widen: bool = False

    def names(self, container: Any) -> list[str]:
        """What ``patterns`` match: the name, and a stack container's component name."""
        names = [str(container.name)]
        labels = container.labels or {}
        if self.stack_dir and labels.get(LABEL_STACK) == str(Path(self.stack_dir).absolute()):
            names.append(str(labels.get(LABEL_COMPONENT, "")))
        return names

    def allows(self, container: Any) -> bool:
        named = any(fnmatch.fnmatchcase(n, p) for n in self.names(container) for p in self.patterns)
        if self.widen and self.patterns:
            return named
        labelled = bool(self.labels) and all(has_label(container, s) for s in self.labels)
        return labelled and (named or not self.patterns)

    def split(self, containers: list[Any]) -> tuple[list[Any], list[Any]]:
        """(in scope, out of scope)."""
        inside = [c for c in containers if self.allows(c)]
        return inside, [c for c in containers if not self.allows(c)]

    def describe(self) -> str:
        if self.widen and self.patterns:
            return f"containers named {', '.join(self.patterns)} (safety.allow)"
        text = f"containers labelled {', '.join(self.labels) or '(nothing)'}"
        return text + (f" named {', '.join(self.patterns)}" if self.patterns else "")
