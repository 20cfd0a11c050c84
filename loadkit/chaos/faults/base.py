"""What every fault shares: its catalog entry (:class:`FaultType`), its parameters, the live
:class:`Fault` that injects and reverts, and the :class:`ChaosEnv` it acts on.

A fault acts in two halves so that the journal can record what a revert needs *before* anything
is touched: :meth:`Fault.prepare` (no side effect: pids, toxic names, the previous policy…),
:meth:`Fault.apply` (the injection), then :meth:`Fault.revert`. The revert of a live fault and
``loadkit chaos rollback`` after a killed controller run the same code, :meth:`Fault.restore`,
from the journaled state only, and it is idempotent (reverting twice, or reverting a fault that
never took effect, is fine). A fault is also a context manager that always reverts::

    with StackEnv(ReferenceStack.attach(Path(".loadkit/stack"))) as env:   # loadkit.chaos.env
        with make_fault(env, "network.latency", "wallet-1-postgres", latency="200ms"):
            ...  # every query of wallet-1 is 200 ms slower; the toxic is gone after the block
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar, Self

import httpx

from loadkit.errors import ConfigError, EnvironmentProblem
from loadkit.spec.values import format_duration
from loadkit.stack.admin import WalletAdmin
from loadkit.stack.docker import ContainerScope
from loadkit.stack.postgres import Postgres
from loadkit.stack.reference import WalletHandle
from loadkit.stack.system_chaos import CommandSpec
from loadkit.stack.toxiproxy import ToxiproxyClient

#: the target that names every wallet instance of the stack at once
ALL_WALLETS = "wallets"
#: the target that names the stack's PostgreSQL
POSTGRES = "postgres"

State = dict[str, Any]


class TargetKind(StrEnum):
    """What a fault type acts on (and so which names its ``target`` accepts)."""

    WALLET = "wallet"  # one wallet instance ('wallet-1'), or 'wallets' for all of them
    WALLETS = "wallets"  # every wallet instance (the target may be left out)
    POSTGRES = "postgres"  # the stack's PostgreSQL (the target may be left out)
    PROXY = "proxy"  # one Toxiproxy proxy, e.g. 'wallet-1-postgres' or 'client-wallet-1'
    #: containers: 'name:PATTERN', 'label:KEY=VALUE' or a docker-backed stack's 'wallet-1'
    CONTAINER = "container"
    COMMAND = "command"  # a command pair of the system file ('cache-off')


class Window(StrEnum):
    """Sustained faults last from ``at`` for ``duration`` (or ``until``); instant faults are
    one action (a rolling restart, a killed backend) whose revert checks that all is back."""

    SUSTAINED = "sustained"
    INSTANT = "instant"


REQUIRED = object()  # a Param's default when the parameter must be given


@dataclass(frozen=True)
class Param:
    """One parameter of a fault type: how it is read from YAML and what it defaults to.

    ``parse`` takes the YAML value and returns it in base units (seconds, fractions, ms where
    the name says so) or raises :class:`~loadkit.spec.errors.Invalid`; ``shown`` is the default
    as ``loadkit chaos list`` prints it."""

    name: str
    parse: Callable[[object], object]
    default: object
    help: str
    shown: str = ""
    unit: str = ""  # of the parsed value: s, ms, us, %, KB/s, /s (for plans and journals)

    @property
    def required(self) -> bool:
        return self.default is REQUIRED

    def format(self, value: object) -> str:
        """The parsed ``value`` as a person reads it: ``0.5`` s → ``500ms``, ``0.3`` % → ``30%``."""
        if not isinstance(value, int | float) or isinstance(value, bool):
            return str(value)
        if self.unit == "s":
            return format_duration(float(value)) if value else "0s"
        if self.unit == "%":
            return f"{value * 100:g}%"
        return f"{value:g}{self.unit}"


#: cross-parameter checks: the parsed parameters → (parameter, message) problems
Check = Callable[[Mapping[str, object]], list[tuple[str, str]]]


@dataclass(frozen=True)
class FaultType:
    """One entry of the fault catalog (``loadkit chaos list`` prints them all)."""

    name: str  # "network.latency": backend, then what it does
    summary: str
    target: TargetKind
    window: Window
    fault: type[Fault]
    params: tuple[Param, ...] = ()
    #: faults of the same slot on the same target are run one after the other, never together
    #: (two maintenance windows on one instance would restore each other's state wrongly)
    slot: str | None = None
    check: Check | None = None
    #: the target when the scenario names none (None: a target is required)
    default_target: str | None = None

    @property
    def backend(self) -> str:
        return self.name.split(".", 1)[0]

    @property
    def target_default(self) -> str | None:
        if self.target is TargetKind.WALLETS:
            return ALL_WALLETS
        if self.target is TargetKind.POSTGRES:
            return POSTGRES
        return self.default_target

    def param(self, name: str) -> Param | None:
        return next((p for p in self.params if p.name == name), None)

    def describe_params(self, params: Mapping[str, object]) -> str:
        """``latency=300ms, jitter=100ms, …`` for plans and dashboards (unset ones left out)."""
        shown = []
        for p in self.params:
            if params.get(p.name) is not None:
                shown.append(f"{p.name}={p.format(params[p.name])}")
        return ", ".join(shown)


class ChaosEnv:
    """What faults act on: the reference stack (:class:`~loadkit.chaos.env.StackEnv`) or the
    components of a system file (:class:`~loadkit.chaos.env.SystemEnv`). A fault only ever asks
    its environment (a proxy's Toxiproxy server, the database DSN, the containers in scope, a
    wallet instance, a command); what an environment does not have is a clear error, never a
    guess. ``tag`` names what a run creates (toxics, database sessions, triggers) so that a
    later rollback finds exactly those again; ``patterns`` are the scenario's ``safety.allow``."""

    #: "stack" or "system" (journaled: ``loadkit chaos rollback`` builds the same one again)
    kind: ClassVar[str] = "env"

    def __init__(self, tag: str = "adhoc", patterns: tuple[str, ...] = ()) -> None:
        self.tag = re.sub(r"[^A-Za-z0-9_]", "_", tag)[:40]
        self.patterns = patterns
        #: what the system looked like before this run touched it (see :meth:`baseline`)
        self.baselines: dict[str, Any] = {}
        self._http: httpx.Client | None = None
        self._lock = threading.Lock()

    # -- identity ---------------------------------------------------------------------------

    @property
    def name(self) -> str:
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        """What the journal keeps to build this environment again (rollback)."""
        raise NotImplementedError

    def lock_path(self) -> Path:
        """The file whose lock one chaos controller at a time holds (loadkit.chaos.lock)."""
        raise NotImplementedError

    def baseline(self, key: str, read: Callable[[], Any]) -> Any:
        """The value of ``key`` before this run changed anything: read once (the first fault
        that touches it), then the same for every later fault, whatever state an earlier
        fault's failed revert left behind. Restores put back this, not the last "before"."""
        with self._lock:
            if key not in self.baselines:
                self.baselines[key] = read()
            return self.baselines[key]

    # -- the components -----------------------------------------------------------------------

    def wallet_names(self, target: str) -> list[str]:
        raise ConfigError(
            f"{self.name}: no wallet instances here: wallet and process faults need the "
            "reference stack"
        )

    def wallet(self, name: str) -> WalletHandle:
        raise ConfigError(f"{self.name}: no wallet instance {name!r} (reference stack only)")

    def admin(self, name: str) -> WalletAdmin:
        raise ConfigError(f"{self.name}: no wallet admin API (reference stack only)")

    def postgres(self) -> Postgres:
        raise EnvironmentProblem(
            f"{self.name}: process-level database faults need the embedded PostgreSQL of the "
            "reference stack: loadkit never stops a server it did not start"
        )

    @property
    def dsn(self) -> str:
        """The database, directly (not through Toxiproxy)."""
        raise ConfigError(f"{self.name}: no PostgreSQL to act on")

    def toxiproxy_for(self, proxy: str) -> ToxiproxyClient:
        """The Toxiproxy server holding ``proxy``."""
        raise ConfigError(f"{self.name}: no Toxiproxy server")

    def proxies(self) -> dict[str, tuple[ToxiproxyClient, Any]]:
        """Every proxy of the environment's server(s): name → (its server, the proxy)."""
        return {}

    def containers(self) -> ContainerScope:
        """The containers faults may touch (and on which engine)."""
        raise ConfigError(f"{self.name}: no containers to act on")

    def command(self, name: str) -> CommandSpec:
        raise ConfigError(f"{self.name}: no command {name!r} (commands come from a system file)")

    # -- connections ------------------------------------------------------------------------

    def http(self) -> httpx.Client:
        with self._lock:
            if self._http is None:  # one client for every call: building one costs ~60 ms
                self._http = httpx.Client()
            return self._http

    def close(self) -> None:
        """Close pooled connections (the environment stays usable: they reopen)."""
        with self._lock:
            if self._http is not None:
                self._http.close()
                self._http = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Fault:
    """A live fault on one target. Subclasses implement :meth:`apply` and :meth:`restore`
    (and :meth:`prepare` when a revert needs to know something from before)."""

    kind: ClassVar[FaultType]

    def __init__(
        self, env: ChaosEnv, target: str, params: Mapping[str, object], name: str = "fault"
    ) -> None:
        self.env = env
        self.target = target
        self.params = dict(params)
        self.name = name
        self.state: State = {}

    @classmethod
    def targets(cls, env: ChaosEnv, target: str, params: Mapping[str, object]) -> list[str]:
        """What this fault would touch now, resolved (the blast radius a plan shows before
        anything is injected): container names, proxies and their servers, backends…"""
        return [target]

    # -- the two halves of an injection -----------------------------------------------------

    def prepare(self) -> State:
        """What the revert will need, found out without changing anything (journaled first)."""
        return {"target": self.target}

    def apply(self, state: State) -> State | None:
        """Inject; may return additions to the state (journaled when the injection ends)."""
        raise NotImplementedError

    def revert(self, state: State) -> str:
        """Undo this live fault (releasing what this process holds), then :meth:`restore`."""
        return type(self).restore(self.env, state)

    @classmethod
    def restore(cls, env: ChaosEnv, state: State) -> str:
        """Put the target back from ``state`` alone; idempotent; a short description back."""
        raise NotImplementedError

    # -- context manager ------------------------------------------------------------------

    def __enter__(self) -> Fault:
        self.state = self.prepare()
        try:
            self.state.update(self.apply(self.state) or {})
        except BaseException:
            self.revert(self.state)
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.revert(self.state)


def param_int(params: Mapping[str, object], name: str) -> int:
    value = params[name]
    assert isinstance(value, int | float)
    return int(value)


def param_float(params: Mapping[str, object], name: str) -> float:
    value = params[name]
    assert isinstance(value, int | float)
    return float(value)


def param_str(params: Mapping[str, object], name: str) -> str:
    return str(params[name])


@dataclass
class Described:
    """What ``loadkit chaos list`` shows for one fault type (also its ``--json``)."""

    type: str
    backend: str
    target: str
    window: str
    summary: str
    params: list[dict[str, str]] = field(default_factory=list)
