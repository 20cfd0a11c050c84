"""Container faults through the Docker engine: kill (with a signal), stop, pause, restart and CPU
throttling, on the reference stack's containers or on any of the user's own.

A target selects containers: ``name:PATTERN`` (a glob on container names, e.g.
``name:shop-api-*``), ``label:KEY=VALUE`` (e.g. ``label:com.docker.compose.service=api``, so a
compose stack can be pointed at), or a bare component of a docker-backed reference stack
(``wallet-1``, ``postgres``). ``count`` limits the blast radius: ``1`` (the default), ``N``,
``all`` or a share such as ``30%`` of the running matches, drawn at random (seeded by the run, so
a run is repeatable). Only containers in the environment's scope are ever candidates: the reference
stack's own (labelled with its directory; ``safety.allow`` names others), or those a system
file's label selector picks (``safety.allow`` narrows them); ``name:*`` with ``count: all`` never
reaches beyond that set. Any network mode works (host, bridge, none): every action goes through
the engine's API. The journal records every container chosen (id, name, CPU limits, engine), and
the restore — also ``loadkit chaos rollback`` after a killed controller — starts, unpauses or
resets exactly those::

    with make_fault(env, "container.pause", "label:com.docker.compose.service=api", count="50%"):
        ...  # half of the api containers are frozen (cgroup freezer); unpaused after the block
"""

from __future__ import annotations

import math
import random
import re
import signal as _signal
import time
from collections.abc import Iterator, Mapping
from typing import Any

from loadkit.chaos.faults.base import (
    ChaosEnv,
    Fault,
    FaultType,
    Param,
    State,
    TargetKind,
    Window,
    param_float,
)
from loadkit.errors import ConfigError, EnvironmentProblem
from loadkit.spec.errors import Invalid
from loadkit.spec.values import describe, parse_duration, parse_int
from loadkit.stack import docker as dk
from loadkit.stack.docker import ContainerScope

#: how long a container brought back may take to run (and to become healthy or ready)
READY_TIMEOUT = 60.0
CPU_PERIOD = 100_000  # µs: the CFS period a CPU limit is expressed in


# -- parameters -----------------------------------------------------------------------------------


def _count(value: object) -> object:
    if value == "all":
        return "all"
    if isinstance(value, str) and value.strip().endswith("%"):
        try:
            share = float(value.strip()[:-1]) / 100
        except ValueError:
            share = -1.0
        if not 0 < share <= 1:
            raise Invalid(f"expected a share between 1% and 100%, got {describe(value)}")
        return f"{share * 100:g}%"
    if isinstance(value, int) and not isinstance(value, bool):
        return parse_int(value, minimum=1, maximum=10_000)
    raise Invalid(
        f"expected a number of containers, 'all' or a share like '30%', got {describe(value)}"
    )


def _signal_name(value: object) -> str:
    text = str(value).strip().upper() if isinstance(value, str | int) else ""
    if text.isdigit():
        try:
            return _signal.Signals(int(text)).name
        except ValueError:
            pass
    name = text if text.startswith("SIG") else f"SIG{text}"
    if name not in _signal.Signals.__members__:
        raise Invalid(f"expected a signal like SIGKILL, SIGTERM or HUP, got {describe(value)}")
    return name


def _cpus(value: object) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool) and 0.01 <= value <= 64:
        return float(value)
    raise Invalid(f"expected CPUs like 0.2 (a fifth of one core), got {describe(value)}")


COUNT = Param(
    "count",
    _count,
    1,
    "how many of the running containers matched: N, 'all' or a share like 30%",
    "1",
)
GRACE = Param("grace", parse_duration, 10.0, "SIGKILL a container not stopped by then", "10s", "s")


def how_many(count: object, matched: int) -> int:
    """The blast radius: ``count`` ('all', '30%' or N) of ``matched`` containers, at least one."""
    if matched == 0:
        return 0
    if count == "all":
        return matched
    if isinstance(count, str) and count.endswith("%"):
        return max(1, min(matched, math.ceil(matched * float(count[:-1]) / 100 - 1e-9)))
    return min(matched, int(str(count)))


# -- safety ---------------------------------------------------------------------------------------


def _engine(env: ChaosEnv) -> tuple[ContainerScope, Any]:
    """The environment's container scope and a client of its engine (a remote engine only when
    allowed: :class:`ConfigError` before anything is asked of it)."""
    scope = env.containers()
    check = getattr(env, "check_engine", None)
    if check is not None:
        check()
    return scope, dk.connect(engine=scope.engine)


def resolve(env: ChaosEnv, target: str) -> tuple[list[Any], list[Any]]:
    """(containers of ``target`` in the environment's scope, those matched outside it)."""
    scope, client = _engine(env)
    try:
        return scope.split(dk.select(client, target, scope.stack_dir))
    finally:
        client.close()


def refusals(env: ChaosEnv | None, target: str) -> list[str]:
    """Why ``target`` may not be acted on (empty: it may). Asks the engine, so no engine means
    :class:`~loadkit.stack.docker.DockerUnavailable` (exit 3) before anything is injected.
    Containers matched outside the scope are never touched; a target that matches only such
    containers is refused, naming them."""
    if env is None:
        return ["no environment to act on"]
    try:
        scope = env.containers()
    except ConfigError as exc:
        return [exc.message]
    inside, outside = resolve(env, target)
    if inside:
        return []
    if outside:
        names = ", ".join(str(c.name) for c in outside[:5]) + (" …" if len(outside) > 5 else "")
        return [
            f"'{target}' matches only containers outside the blast radius ({names}); faults "
            f"may touch {scope.describe()}"
        ]
    kind, _ = dk.parse_selector(target)
    hint = (
        " (a bare name is a container of a docker-backed stack: `loadkit stack up "
        "--backend docker`; or use name:PATTERN / label:KEY=VALUE)"
        if kind == "component" and scope.stack_dir
        else ""
    )
    return [f"no container matches '{target}'{hint}"]


# -- the faults -----------------------------------------------------------------------------------


class ContainerFault(Fault):
    """Chooses its containers in :meth:`prepare` (journaled before anything is touched), among
    those in the environment's scope only: the selection is checked again at injection."""

    @classmethod
    def targets(cls, env: ChaosEnv, target: str, params: Mapping[str, object]) -> list[str]:
        inside, outside = resolve(env, target)
        running = [c for c in inside if c.status == "running"]
        n = how_many(params.get("count", 1), len(running))
        shown = [f"container {c.name} ({str(c.id)[:12]}, {c.status})" for c in inside]
        if n < len(running):
            shown.append(f"{n} of these {len(running)} running, drawn when injected")
        if outside:
            shown.append(f"left alone: {len(outside)} matching container(s) outside the scope")
        return shown

    def prepare(self) -> State:
        inside, _ = resolve(self.env, self.target)
        matched = [c for c in inside if c.status == "running"]
        if not matched:
            raise EnvironmentProblem(
                f"{self.kind.name}: no running container in scope matches '{self.target}' "
                f"({self.env.containers().describe()})"
            )
        n = how_many(self.params.get("count", 1), len(matched))
        chosen = random.Random(f"{self.env.tag}/{self.name}").sample(matched, n)
        scope = self.env.containers()
        return {
            "target": self.target,
            "engine": scope.engine,
            "stack_dir": scope.stack_dir,
            "containers": [dk.describe(c) for c in sorted(chosen, key=lambda c: str(c.name))],
        }

    def apply(self, state: State) -> State | None:
        client = dk.connect(engine=state.get("engine"))
        try:
            done = []
            for entry in state["containers"]:
                container = client.containers.get(entry["id"])
                self.act(container)
                done.append(entry["name"])
            return {"affected": done}
        finally:
            client.close()

    def act(self, container: Any) -> None:
        raise NotImplementedError

    @classmethod
    def restore(cls, env: ChaosEnv, state: State) -> str:
        return bring_back(env, state)


def bring_back(env: ChaosEnv, state: State) -> str:
    """Unpause or start every container of ``state`` that is not running; wait until each runs
    (healthy, when it has a health check; ready, when it is a wallet of the stack)."""
    client = dk.connect(engine=state.get("engine"))
    done: list[str] = []
    try:
        for entry, container in _journaled(client, state, done):
            dk.settle(container)
            if container.status == "paused":
                container.unpause()
                done.append(f"{entry['name']} unpaused")
            elif container.status != "running":
                container.start()
                done.append(f"{entry['name']} started")
            dk.wait_running(container, READY_TIMEOUT)
            _wait_healthy(container)
        _follow_stack(env, client, state)
    finally:
        client.close()
    return ", ".join(done) or "already running"


def _journaled(client: Any, state: State, done: list[str]) -> Iterator[tuple[Any, Any]]:
    """(journal entry, container) for every container a fault's state names; one that no
    longer exists is reported in ``done`` as gone."""
    from docker.errors import NotFound

    for entry in state["containers"]:
        try:
            yield entry, client.containers.get(entry["id"])
        except NotFound:
            done.append(f"{entry['name']} gone")


def _wait_healthy(container: Any) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while True:
        health = container.attrs.get("State", {}).get("Health")
        if not health or health.get("Status") in ("healthy", None):
            return
        if time.monotonic() > deadline:
            raise EnvironmentProblem(f"container {container.name} not healthy after restart")
        time.sleep(0.2)
        container.reload()


def _follow_stack(env: ChaosEnv, client: Any, state: State) -> None:
    """Containers of the chaos run's own docker-backed stack: record their new main processes in
    the manifest, and wait until restarted wallets and PostgreSQL serve again."""
    from loadkit.stack.backends.docker import DockerBackend

    stack = getattr(env, "stack", None)
    if stack is None:
        return
    mine = [
        e
        for e in state["containers"]
        if e.get("labels", {}).get(dk.LABEL_STACK) == str(stack.stack_dir)
    ]
    if not mine or not isinstance(stack.backend, DockerBackend):
        return
    stack.backend.sync()
    components = {e["labels"].get(dk.LABEL_COMPONENT) for e in mine}
    deadline = time.monotonic() + READY_TIMEOUT
    pg = stack.postgres
    if "postgres" in components and pg is not None:
        while not pg.ready() and time.monotonic() < deadline:
            time.sleep(0.1)
    if pg is not None and not pg.alive():
        return  # a wallet cannot be ready without its database (another fault, reverted later)
    for w in stack.wallets:
        if w.name in components:
            while not w.ready() and time.monotonic() < deadline:
                time.sleep(0.1)


class Kill(ContainerFault):
    """Send ``signal`` (SIGKILL: the container dies at once); started again at the end."""

    def act(self, container: Any) -> None:
        sig = str(self.params["signal"])
        container.kill(signal=sig)
        if sig == "SIGKILL":
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                container.reload()
                if container.status != "running":
                    break
                time.sleep(0.05)


class Stop(ContainerFault):
    """``docker stop``: SIGTERM, SIGKILL after ``grace``; started again at the end."""

    def act(self, container: Any) -> None:
        container.stop(timeout=max(1, round(param_float(self.params, "grace"))))


class Pause(ContainerFault):
    """``docker pause`` (cgroup freezer: every process frozen, sockets open); unpaused after."""

    def act(self, container: Any) -> None:
        container.pause()


class Restart(ContainerFault):
    """``docker restart`` (stop, then start); its revert checks the container runs again."""

    def act(self, container: Any) -> None:
        container.restart(timeout=max(1, round(param_float(self.params, "grace"))))


class Cpu(ContainerFault):
    """Throttle to ``cpus`` CPUs (a CFS quota); the previous limits come back at the end."""

    def act(self, container: Any) -> None:
        if container.attrs.get("HostConfig", {}).get("NanoCpus"):
            raise EnvironmentProblem(
                f"container.cpu: {container.name} has a CPU limit set with --cpus; its quota "
                "cannot be changed on top of that"
            )
        quota = max(1000, int(param_float(self.params, "cpus") * CPU_PERIOD))
        container.update(cpu_period=CPU_PERIOD, cpu_quota=quota)

    @classmethod
    def restore(cls, env: ChaosEnv, state: State) -> str:
        client = dk.connect(engine=state.get("engine"))
        done: list[str] = []
        try:
            for entry, container in _journaled(client, state, done):
                quota, period = int(entry.get("cpu_quota", 0)), int(entry.get("cpu_period", 0))
                if quota > 0:
                    container.update(cpu_period=period or CPU_PERIOD, cpu_quota=quota)
                else:
                    container.update(cpu_quota=-1)  # no limit, as before
                done.append(f"{entry['name']} CPU limit reset")
        finally:
            client.close()
        return ", ".join(done)


def cpu_quota_supported() -> bool:
    """Whether the engine enforces CFS CPU quotas (``docker info``: CpuCfsQuota)."""
    client = dk.connect()
    try:
        return bool(dk.engine_facts(client)["cpu_quota"])
    finally:
        client.close()


TYPES = (
    FaultType(
        "container.kill",
        "send a signal to containers (SIGKILL: they die); started again after 'duration'",
        TargetKind.CONTAINER,
        Window.SUSTAINED,
        Kill,
        params=(COUNT, Param("signal", _signal_name, "SIGKILL", "the signal to send", "SIGKILL")),
        slot="container",
    ),
    FaultType(
        "container.stop",
        "docker stop (SIGTERM, SIGKILL after 'grace'); started again after 'duration'",
        TargetKind.CONTAINER,
        Window.SUSTAINED,
        Stop,
        params=(COUNT, GRACE),
        slot="container",
    ),
    FaultType(
        "container.pause",
        "freeze containers (docker pause: cgroup freezer, sockets open); unpaused after 'duration'",
        TargetKind.CONTAINER,
        Window.SUSTAINED,
        Pause,
        params=(COUNT,),
        slot="container",
    ),
    FaultType(
        "container.restart",
        "docker restart of containers (one action, no duration)",
        TargetKind.CONTAINER,
        Window.INSTANT,
        Restart,
        params=(COUNT, GRACE),
        slot="container",
    ),
    FaultType(
        "container.cpu",
        "throttle containers to 'cpus' CPUs (CFS quota); limits restored after 'duration'",
        TargetKind.CONTAINER,
        Window.SUSTAINED,
        Cpu,
        params=(COUNT, Param("cpus", _cpus, 0.2, "CPUs the containers may use", "0.2")),
        slot="container-cpu",
    ),
)


def check_selector(text: str) -> str:
    """A scenario's container target, checked without the engine (:class:`Invalid` if bad)."""
    try:
        kind, value = dk.parse_selector(text)
    except ConfigError as exc:
        raise Invalid(exc.message) from None
    if kind == "label" and not re.fullmatch(r"[A-Za-z0-9._/-]+(=.*)?", value):
        raise Invalid(f"expected label:KEY or label:KEY=VALUE, got {describe(text)}")
    return text
