"""What every fault shares: its catalog entry (:class:`FaultType`), its parameters, the live
:class:`Fault` that injects and reverts, and the :class:`ChaosEnv` it acts on.

A fault acts in two halves so that the journal can record what a revert needs *before* anything
is touched: :meth:`Fault.prepare` (no side effect: pids, toxic names, the previous policy…),
:meth:`Fault.apply` (the injection), then :meth:`Fault.revert`. The revert of a live fault and
``loadkit chaos rollback`` after a killed controller run the same code, :meth:`Fault.restore`,
from the journaled state only, and it is idempotent (reverting twice, or reverting a fault that
never took effect, is fine). A fault is also a context manager that always reverts::

    with ChaosEnv(ReferenceStack.attach(Path(".loadkit/stack"))) as env:
        with make_fault(env, "network.latency", "wallet-1-postgres", latency="200ms"):
            ...  # every query of wallet-1 is 200 ms slower; the toxic is gone after the block
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import TracebackType
from typing import Any, ClassVar

import httpx

from loadkit.errors import ConfigError, EnvironmentProblem
from loadkit.spec.values import format_duration
from loadkit.stack.admin import WalletAdmin
from loadkit.stack.postgres import Postgres
from loadkit.stack.reference import ReferenceStack, WalletHandle
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
    """The stack a fault acts on, and the tag that names what a run creates (toxics, database
    sessions, triggers), so that a later rollback can find exactly those again."""

    def __init__(self, stack: ReferenceStack, tag: str = "adhoc") -> None:
        self.stack = stack
        self.tag = re.sub(r"[^A-Za-z0-9_]", "_", tag)[:40]
        self._http: httpx.Client | None = None
        self._lock = threading.Lock()

    def wallet_names(self, target: str) -> list[str]:
        names = [w.name for w in self.stack.manifest.wallets]
        if target == ALL_WALLETS:
            return names
        if target not in names:
            raise ConfigError(f"no wallet instance named {target!r} (known: {', '.join(names)})")
        return [target]

    def wallet(self, name: str) -> WalletHandle:
        return self.stack.wallet(name)

    def admin(self, name: str) -> WalletAdmin:
        """The admin API of one instance, reached directly (network faults never block it)."""
        info = self.wallet(name).info
        with self._lock:
            if self._http is None:  # one client for every call: building one costs ~60 ms
                self._http = httpx.Client(verify=info.verify)  # the stack CA's, over HTTPS
        url = info.url
        return WalletAdmin([url], self.stack.manifest.admin_token, client=self._http)

    def close(self) -> None:
        """Close the admin API's connections (the environment stays usable: they reopen)."""
        with self._lock:
            if self._http is not None:
                self._http.close()
                self._http = None

    def __enter__(self) -> ChaosEnv:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def postgres(self) -> Postgres:
        pg = self.stack.postgres
        if pg is None:
            raise EnvironmentProblem(
                "the stack uses an external PostgreSQL: process-level database faults need the "
                "embedded one"
            )
        return pg

    @property
    def toxiproxy(self) -> ToxiproxyClient:
        return self.stack.toxiproxy

    @property
    def dsn(self) -> str:
        """The wallet database, directly (not through Toxiproxy)."""
        return self.stack.dsn


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
