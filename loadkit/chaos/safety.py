"""Safety: faults only go to allowlisted targets, checked for the whole plan before anything is
injected, and again by each fault when it is injected.

The candidates are the environment's own components. On the reference stack: its wallet
instances, its embedded PostgreSQL (or an external one on loopback, for the SQL-level faults
only), the proxies of its Toxiproxy server whose listen and upstream addresses are loopback, and
the containers labelled with its directory. On a system file: the proxies it lists on its
Toxiproxy server(s), its PostgreSQL (SQL only), the containers its label selector picks and its
commands. By default the allowlist is exactly that set; a scenario's ``safety.allow`` patterns
(``wallet-*``) narrow it (on a stack they may also add the user's own containers by name, or a
run's network-class proxies)::

    allowlist = Allowlist.for_env(env)
    allowlist.enforce(plan)            # TargetRefused (exit 4) naming every refused fault
    blast_radius(plan, env)            # {'f01': ['container shop-api-1 (3f2a…, running)'], …}
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from loadkit.chaos.catalog import FAULTS
from loadkit.chaos.faults.base import ALL_WALLETS, POSTGRES, ChaosEnv, TargetKind
from loadkit.chaos.probes import check_probe
from loadkit.chaos.scenario import AbortCondition, AbortWhen, FaultSpec, Plan, ProbeKind
from loadkit.errors import EnvironmentProblem, LoadkitError, SafetyAbort
from loadkit.safety import is_loopback
from loadkit.spec.values import did_you_mean
from loadkit.stack.reference import ReferenceStack
from loadkit.stack.toxiproxy import ToxiproxyClient

if TYPE_CHECKING:
    from loadkit.chaos.controller import Controller

#: docs/design.md: recovered = the 10 s busy rate back within the limit, and staying there 10 s
RECOVERY_HOLD = 10.0
#: fault types that need the PostgreSQL server loadkit itself started (they stop its processes)
PROCESS_LEVEL_DB = ("postgres.crash", "postgres.kill-backend")


class TargetRefused(SafetyAbort):
    """A fault names a target outside the allowlist: nothing was injected (exit 4)."""


@dataclass(frozen=True)
class Component:
    """Something a fault may act on."""

    name: str
    kind: str  # wallet | postgres | proxy | command
    address: str
    in_manifest: bool = True


class Allowlist:
    """The components faults may act on, in one environment."""

    def __init__(
        self,
        candidates: dict[str, Component],
        patterns: tuple[str, ...],
        embedded_pg: bool,
        env: ChaosEnv | None = None,
    ) -> None:
        self.candidates = candidates
        self.patterns = patterns
        self.embedded_pg = embedded_pg
        self.env = env
        #: a system file's ``toxiproxy.proxies`` (for messages)
        self.own_proxies: tuple[str, ...] = ()
        #: a stack's patterns may reach beyond its manifest; a system's only narrow its set
        widen = env is None or env.kind == "stack"
        self.allowed = {
            n
            for n, c in candidates.items()
            if (c.in_manifest or (widen and patterns))
            and (not patterns or any(fnmatch.fnmatchcase(n, p) for p in patterns))
        }

    @classmethod
    def for_stack(cls, stack: ReferenceStack, patterns: tuple[str, ...] = ()) -> Allowlist:
        from loadkit.chaos.env import StackEnv

        return cls.for_env(StackEnv(stack, patterns=patterns))

    @classmethod
    def for_env(cls, env: ChaosEnv) -> Allowlist:
        from loadkit.chaos.env import StackEnv, SystemEnv

        found: dict[str, Component] = {}
        if isinstance(env, StackEnv):
            m = env.stack.manifest
            for w in m.wallets:
                found[w.name] = Component(w.name, "wallet", f"127.0.0.1:{w.port}")
            if m.postgres is not None:
                found[POSTGRES] = Component(POSTGRES, "postgres", f"127.0.0.1:{m.postgres.port}")
            elif m.external_dsn and is_loopback(urlsplit(m.external_dsn).hostname or ""):
                found[POSTGRES] = Component(POSTGRES, "postgres", urlsplit(m.external_dsn).netloc)
            listed = {p.name for p in m.proxies}
            for name, (_, proxy) in _proxies(env).items():
                listen, upstream = str(proxy.listen), str(proxy.upstream)
                hosts = [urlsplit(f"//{a}").hostname or "" for a in (listen, upstream)]
                if all(is_loopback(h) for h in hosts):
                    address = f"{listen} -> {upstream}"
                    found[name] = Component(name, "proxy", address, name in listed)
            return cls(found, env.patterns, m.postgres is not None, env)
        assert isinstance(env, SystemEnv)
        system = env.system
        if system.postgres is not None:
            found[POSTGRES] = Component(POSTGRES, "postgres", system.postgres.where)
        own = env.proxy_patterns()
        for name, (server, proxy) in _proxies(env).items():
            mine = any(fnmatch.fnmatchcase(name, p) for p in own)
            address = f"{proxy.listen} -> {proxy.upstream} on {server.host}:{server.port}"
            found[name] = Component(name, "proxy", address, mine)
        for command in system.commands:
            found[command.name] = Component(command.name, "command", " ".join(command.inject))
        allowlist = cls(found, env.patterns, False, env)
        allowlist.own_proxies = own
        return allowlist

    def problems(self, plan: Plan) -> list[str]:
        """One message per fault whose target is refused."""
        return [why for planned in plan.faults for why in self.fault_problems(planned.spec)]

    def fault_problems(self, spec: FaultSpec) -> list[str]:
        """Why one fault's target is refused (empty: it is allowed)."""
        kind = FAULTS[spec.type]
        label = f"fault '{spec.name}' ({spec.type})"
        if kind.target is TargetKind.CONTAINER:  # asks the engine (none: exit 3)
            from loadkit.chaos.faults.docker import refusals

            return [f"{label}: {why}" for why in refusals(self.env, spec.target)]
        names = [spec.target]
        if kind.target in (TargetKind.WALLET, TargetKind.WALLETS) and spec.target == ALL_WALLETS:
            names = [c.name for c in self.candidates.values() if c.kind == "wallet"] or names
        refused = []
        for name in names:
            why = self._why_not(name, kind.target, spec.type)
            if why:
                refused.append(f"{label}: {why}")
        return refused

    def _why_not(self, name: str, target: TargetKind, type_name: str) -> str | None:
        wanted = {
            TargetKind.WALLET: "wallet",
            TargetKind.WALLETS: "wallet",
            TargetKind.POSTGRES: "postgres",
            TargetKind.PROXY: "proxy",
            TargetKind.COMMAND: "command",
        }[target]
        component = self.candidates.get(name)
        system = self.env is not None and self.env.kind == "system"
        if component is None or component.kind != wanted:
            same = sorted(n for n, c in self.candidates.items() if c.kind == wanted)
            hint = did_you_mean(name, same)
            if wanted == "postgres":
                if system:
                    return "the system file has no postgres: section"
                return "the stack has no PostgreSQL on loopback that loadkit may touch"
            if wanted == "wallet" and system:
                return "wallet and process faults need the reference stack (a system has none)"
            where = "the system's components" if system else "the stack's components on loopback"
            if wanted == "command" and not system:
                return "command faults need a system file (--system) that defines them"
            return (
                f"no {wanted} named '{name}' among {where}{hint} "
                f"(known: {', '.join(same) or 'none'})"
            )
        if name not in self.allowed:
            if system and not component.in_manifest:
                return (
                    f"'{name}' is not one of the system's proxies (toxiproxy.proxies: "
                    f"{', '.join(self.own_proxies)})"
                )
            listing = ", ".join(self.patterns) if self.patterns else "the stack's own components"
            return f"'{name}' is not in the allowlist (safety.allow: {listing})"
        if type_name in PROCESS_LEVEL_DB and not self.embedded_pg:
            what = "the system's" if system else "the stack's"
            return (
                f"{what} PostgreSQL is external: loadkit never stops a server it did not start "
                "(SQL-level faults only)"
            )
        return None

    def enforce(self, plan: Plan) -> None:
        """Raise :class:`TargetRefused` listing every refused fault (nothing is injected)."""
        refused = self.problems(plan)
        if refused:
            raise TargetRefused(
                "refused before injecting anything: "
                + "\n".join(refused)
                + f"\nallowed targets: {', '.join(sorted(self.allowed)) or 'none'}"
            )


def _proxies(env: ChaosEnv) -> dict[str, tuple[ToxiproxyClient, Any]]:
    try:
        return env.proxies()
    except (EnvironmentProblem, LoadkitError):
        return {}


def blast_radius(plan: Plan, env: ChaosEnv) -> dict[str, list[str]]:
    """Each planned fault's targets as they resolve now (fault id → descriptions): which
    containers, which proxies on which server, which database backends, which command. Shown by
    ``--dry-run``, the dashboard and the journal before anything is injected."""
    found: dict[str, list[str]] = {}
    for planned in plan.faults:
        spec = planned.spec
        kind = FAULTS[spec.type]
        try:
            found[planned.id] = kind.fault.targets(env, spec.target, spec.params)
        except LoadkitError as exc:
            found[planned.id] = [f"(cannot resolve now: {exc.message})"]
    return found


class AbortWatch:
    """Abort conditions, the busy rate and recovery, evaluated on every tick of the controller's
    main thread. A condition fires when it has held for its ``for`` (busy rate over its window
    above the limit, p95 above the limit, a probe failing); windows with no answers never fire."""

    def __init__(self, controller: Controller) -> None:
        self.c = controller
        self.since: dict[str, float | None] = {a.name: None for a in controller.scenario.abort}
        self.next_probe: dict[str, float] = {}
        self.states = controller.watch_states
        self.streak: float | None = None
        limit = next(
            (
                p.max
                for p in controller.scenario.steady_state.probes
                if p.kind is ProbeKind.BUSY_RATE
            ),
            None,
        )
        self.limit = 0.05 if limit is None else limit

    def tick(self) -> None:
        c = self.c
        assert c.source is not None
        now = c.now()
        c.stats = c.source.window(now, 10.0)
        self._recovery(now)
        if c.halted:
            return
        for cond in c.scenario.abort:
            holds, text = self._holds(cond, now)
            if holds is None:
                continue
            if not holds:
                self.since[cond.name] = None
                self.states[cond.name] = f"ok ({text})"
                continue
            since = self.since[cond.name] = self.since[cond.name] or now
            self.states[cond.name] = f"TRIPPED for {now - since:.0f}s ({text})"
            if now - since >= cond.for_s:
                c.abort(f"abort condition '{cond.name}': {cond.describe()} ({text})", cond.name)
                return

    def _holds(self, cond: AbortCondition, now: float) -> tuple[bool | None, str]:
        c = self.c
        assert c.source is not None
        if cond.when is AbortWhen.PROBE:
            if now < self.next_probe.get(cond.name, 0.0):
                return None, ""
            self.next_probe[cond.name] = now + cond.every_s
            probe = c.scenario.probe(cond.probe or "")
            assert probe is not None
            result = check_probe(probe, c.env, c.source, now)
            if result.unknown:
                return None, result.detail  # cannot tell now: neither trips nor clears it
            return not result.ok, result.detail
        stats = c.source.window(now, cond.window_s)
        if not stats.answered:
            return False, "no answers yet"
        if cond.when is AbortWhen.BUSY_RATE:
            return stats.busy_rate > (cond.above or 0), f"busy {stats.busy_rate:.0%}"
        p95 = stats.p95_s or 0.0
        return p95 > (cond.above or 0), f"p95 {p95 * 1000:.0f}ms"

    def _recovery(self, now: float) -> None:
        c = self.c
        ended = [r.reverted_t for r in c.runs if r.reverted_t is not None]
        if not ended or any(r.injected_t and r.reverted_t is None for r in c.runs):
            self.streak, c.recovered_in = None, None
            return
        ok = not c.stats.answered or c.stats.busy_rate <= self.limit
        if not ok:
            self.streak, c.recovered_in = None, None
        elif self.streak is None:
            self.streak = now
        elif now - self.streak >= RECOVERY_HOLD:
            c.recovered_in = max(0.0, self.streak - max(ended))
