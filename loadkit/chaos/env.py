"""The two environments faults act on: the reference stack loadkit started, and the components
of a system file (the team's own Toxiproxy, containers, PostgreSQL and commands).

The controller, the safety checks and ``loadkit chaos rollback`` only ever talk to a
:class:`~loadkit.chaos.faults.base.ChaosEnv`; :func:`make_env` builds the right one from what a
run was given, and :func:`env_from_journal` builds the same one again from a journal header::

    env = make_env(load_system("systems/staging.yaml"), tag="gameday-1")
    env.toxiproxy_for("shop-postgres")       # the server of the system that holds this proxy
    env.containers().describe()              # 'containers labelled com.docker.compose.project=shop'
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from loadkit.chaos.faults.base import ALL_WALLETS, ChaosEnv
from loadkit.errors import ConfigError, EnvironmentProblem
from loadkit.safety import Allowlist
from loadkit.stack import docker as dk
from loadkit.stack.admin import WalletAdmin
from loadkit.stack.docker import ContainerScope
from loadkit.stack.postgres import Postgres
from loadkit.stack.reference import ReferenceStack, WalletHandle
from loadkit.stack.system import System, load_system
from loadkit.stack.system_chaos import CommandSpec
from loadkit.stack.toxiproxy import ToxiproxyClient

#: where the locks of system files live (a stack's lock lives in its own directory)
LOCK_DIR_ENV = "LOADKIT_LOCK_DIR"


def lock_dir() -> Path:
    """``$LOADKIT_LOCK_DIR``, else ``<tmp>/loadkit-locks``: one directory per machine, so that
    every controller on it sees the others' locks."""
    return Path(os.environ.get(LOCK_DIR_ENV) or Path(tempfile.gettempdir()) / "loadkit-locks")


class StackEnv(ChaosEnv):
    """The reference stack: its wallet instances, its PostgreSQL, its Toxiproxy server, and the
    containers labelled with its directory (a docker-backed stack)."""

    kind = "stack"

    def __init__(
        self,
        stack: ReferenceStack,
        tag: str = "adhoc",
        patterns: tuple[str, ...] = (),
        hosts: Allowlist | None = None,
    ) -> None:
        super().__init__(tag, patterns)
        self.stack = stack
        #: where faults may reach beyond loopback (--allow): a remote Docker engine, say
        self.hosts = hosts or Allowlist()

    @property
    def name(self) -> str:
        return f"the reference stack in {self.stack.stack_dir}"

    def describe(self) -> dict[str, Any]:
        stack_dir = str(self.stack.stack_dir)
        return {"kind": self.kind, "stack_dir": stack_dir, "allow": self.hosts.texts}

    def lock_path(self) -> Path:
        return self.stack.stack_dir / "chaos.lock"

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
        url = self.wallet(name).info.url
        return WalletAdmin([url], self.stack.manifest.admin_token, client=self.http())

    def http(self) -> httpx.Client:
        """One client for the stack's admin APIs; over HTTPS it verifies with the stack's CA."""
        with self._lock:
            if self._http is None:  # one client for every call: building one costs ~60 ms
                wallets = self.stack.manifest.wallets
                self._http = httpx.Client(verify=wallets[0].verify if wallets else True)
            return self._http

    def postgres(self) -> Postgres:
        pg = self.stack.postgres
        if pg is None:
            raise EnvironmentProblem(
                "the stack uses an external PostgreSQL: process-level database faults need "
                "the embedded one"
            )
        return pg

    @property
    def dsn(self) -> str:
        return self.stack.dsn

    @property
    def toxiproxy(self) -> ToxiproxyClient:
        return self.stack.toxiproxy

    def toxiproxy_for(self, proxy: str) -> ToxiproxyClient:
        return self.stack.toxiproxy

    def proxies(self) -> dict[str, tuple[ToxiproxyClient, Any]]:
        tp = self.stack.toxiproxy
        return {name: (tp, proxy) for name, proxy in tp.proxies().items()}

    def containers(self) -> ContainerScope:
        stack_dir = str(self.stack.stack_dir.absolute())
        return ContainerScope(
            labels=(f"{dk.LABEL_STACK}={stack_dir}",),
            patterns=self.patterns,
            stack_dir=stack_dir,
            widen=True,
        )

    def check_engine(self) -> None:
        """The engine ``DOCKER_HOST`` names: a remote one only when --allow allows its host."""
        host = dk.remote_engine_host(dk.engine_url())
        if host is not None:
            self.hosts.check_host(host, what=f"DOCKER_HOST ({dk.engine_url()})")


class SystemEnv(ChaosEnv):
    """A system file's components: its Toxiproxy server(s) and the proxies it lists, the
    containers its label selector picks on its engine, its PostgreSQL (SQL only), its commands.
    Every address is checked against the system's ``allow`` (plus ``hosts``) when it is made."""

    kind = "system"

    def __init__(
        self,
        system: System,
        tag: str = "adhoc",
        patterns: tuple[str, ...] = (),
        hosts: Allowlist | None = None,
    ) -> None:
        super().__init__(tag, patterns)
        self.system = system
        self.hosts = system.allowlist + hosts if hosts else system.allowlist
        system.check(self.hosts)
        self._servers: list[ToxiproxyClient] = []
        section = system.toxiproxy
        for url in section.urls if section else ():
            parts = urlsplit(url)
            self._servers.append(ToxiproxyClient(parts.hostname or "", parts.port or 8474))

    @property
    def name(self) -> str:
        return f"system '{self.system.name}' ({self.system.source})"

    def describe(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.system.name,
            "path": str(Path(self.system.source).absolute()),
            "allow": self.hosts.texts,
        }

    def lock_path(self) -> Path:
        # keyed by the system's name: two copies of one system file are one system
        return lock_dir() / f"system-{self.system.name}.lock"

    @property
    def dsn(self) -> str:
        section = self.system.postgres
        if section is None:
            raise ConfigError(
                f"{self.system.source}: no postgres: section, so no database faults (add "
                "postgres: {dsn: …, password_env: …})"
            )
        return section.resolved_dsn()

    def proxy_patterns(self) -> tuple[str, ...]:
        return self.system.toxiproxy.proxies if self.system.toxiproxy else ()

    def proxies(self) -> dict[str, tuple[ToxiproxyClient, Any]]:
        found: dict[str, tuple[ToxiproxyClient, Any]] = {}
        for server in self._servers:
            for name, proxy in server.proxies().items():
                found.setdefault(name, (server, proxy))
        return found

    def toxiproxy_for(self, proxy: str) -> ToxiproxyClient:
        if not self._servers:
            raise ConfigError(f"{self.system.source}: no toxiproxy: section, so no network faults")
        if len(self._servers) == 1:
            return self._servers[0]
        holders = [s for s in self._servers if proxy in s.proxies()]
        if len(holders) != 1:
            where = "none" if not holders else ", ".join(f"{s.host}:{s.port}" for s in holders)
            raise ConfigError(
                f"{self.system.source}: proxy {proxy!r} must be on exactly one of the system's "
                f"Toxiproxy servers (found on: {where})"
            )
        return holders[0]

    def containers(self) -> ContainerScope:
        section = self.system.docker
        if section is None:
            raise ConfigError(
                f"{self.system.source}: no docker: section, so no container faults (add docker: "
                "{labels: [KEY=VALUE]} naming the containers faults may touch)"
            )
        return ContainerScope(labels=section.labels, patterns=self.patterns, engine=section.engine)

    def check_engine(self) -> None:
        """Checked when the system was made (its engine's host against its allowlist)."""

    def command(self, name: str) -> CommandSpec:
        found = self.system.command(name)
        if found is None:
            from loadkit.spec.values import did_you_mean

            names = [c.name for c in self.system.commands]
            raise ConfigError(
                f"{self.system.source}: no command named {name!r}{did_you_mean(name, names)} "
                f"(commands: {', '.join(names) or 'none'})"
            )
        return found


def make_env(
    target: ReferenceStack | System | ChaosEnv,
    tag: str = "adhoc",
    *,
    patterns: tuple[str, ...] = (),
    hosts: Allowlist | None = None,
) -> ChaosEnv:
    """The environment of a reference stack or a system file (an environment as it is)."""
    if isinstance(target, ChaosEnv):
        return target
    if isinstance(target, System):
        return SystemEnv(target, tag, patterns, hosts)
    return StackEnv(target, tag, patterns, hosts)


def env_from_journal(
    info: dict[str, Any],
    *,
    stack_dir: Path | None = None,
    system: Path | None = None,
) -> ChaosEnv:
    """The environment a journal's header describes (``env``; older journals: ``stack_dir``),
    or the one given instead (``--stack-dir``, ``--system``)."""
    about = info.get("env") or {"kind": "stack", "stack_dir": info.get("stack_dir")}
    tag = str(info.get("tag") or "adhoc")
    patterns = tuple(str(p) for p in info.get("patterns") or ())
    hosts = Allowlist.parse([str(a) for a in about.get("allow") or ()], source="the journal")
    if system is not None or (about.get("kind") == "system" and stack_dir is None):
        path = system or Path(str(about.get("path") or ""))
        if not path.is_file():
            raise ConfigError(f"the run's system file {path} is gone; give it with --system FILE")
        return SystemEnv(load_system(path), tag, patterns, hosts)
    where = stack_dir or Path(str(about.get("stack_dir") or ""))
    return StackEnv(ReferenceStack.attach(where), tag, patterns, hosts)
