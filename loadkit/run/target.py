"""Where a run's load goes: the reference stack (started for the run, or one already running),
or the user's own service (``--target URL``), with network classes routed through Toxiproxy.

:class:`TargetResolver` turns a run's options into the :class:`~loadkit.load.runconfig.Target`
every Locust process gets, and what ``run.json`` says about it. Whatever it starts (a stack,
a Toxiproxy server, proxies) goes on the run's clean-up stack::

    with contextlib.ExitStack() as cleanup:
        resolved = TargetResolver(profile, urls=None, stack_dir=None).resolve(cleanup, rd)
        resolved.target.urls, resolved.stack
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from loadkit.errors import ConfigError, StackNotRunning
from loadkit.load.runconfig import Target, WalletTarget
from loadkit.load.tls import Tls
from loadkit.profile.model import Profile
from loadkit.run.network import NetworkRouting, has_toxics
from loadkit.rundir import RunDir
from loadkit.safety import Allowlist
from loadkit.stack.ports import free_port
from loadkit.stack.reference import ReferenceStack, StackOptions, stack_dir_from
from loadkit.stack.system import System
from loadkit.stack.toxiproxy import ToxiproxyClient, start_server
from loadkit.stack.watchdog import Watchdog

Accounts = list[tuple[int, str]]


def parse_targets(target: str, allow: Allowlist | None = None) -> list[str]:
    """``--target`` URLs (comma-separated); each host on loopback or in ``allow``."""
    urls = [u.strip().rstrip("/") for u in target.split(",") if u.strip()]
    if not urls:
        raise ConfigError("--target: expected a URL like http://127.0.0.1:8080")
    for url in urls:
        (allow or Allowlist()).check_url(url, what="--target")
    return urls


@dataclass
class Resolved:
    """The target of one run, and the stack behind it (None for the user's own service)."""

    target: Target
    about: dict[str, Any] = field(default_factory=dict)  # run.json's "target"
    stack: ReferenceStack | None = None
    #: a system file's services by name (``target`` is the first of them)
    services: dict[str, Target] = field(default_factory=dict)


@dataclass
class Service:
    """One service load goes to: its base URLs, TLS settings and default headers (templates)."""

    name: str
    urls: list[str]
    tls: Tls | None = None
    headers: dict[str, str] = field(default_factory=dict)


def services_of(system: System) -> list[Service]:
    """A system file's services as the run resolves them."""
    out = []
    for s in system.services:
        t = s.tls
        tls = Tls(
            verify=t.verify,
            ca=None if t.ca is None else str(t.ca),
            cert=None if t.cert is None else str(t.cert),
            key=None if t.key is None else str(t.key),
            server_name=t.server_name,
        )
        headers = {name: template.source for name, template in s.headers.items()}
        out.append(Service(s.name, list(s.urls), tls if s.https else None, headers))
    return out


@dataclass
class TargetResolver:
    """How a run finds its target (see the module docstring)."""

    profile: Profile
    urls: list[str] | None  # --target; None = the reference stack (or ``services``)
    stack_dir: Path | None = None  # a running stack to use (--stack-dir)
    own_stack: bool = False  # always start a stack of the run's own
    instances: int = 2  # wallet instances of a stack the run starts
    wallet_unsafe: str | None = None  # the run's own stack runs a deliberately unsafe wallet
    tls: Tls | None = None  # --ca and friends: the TLS of --target's https URLs
    services: list[Service] = field(default_factory=list)  # --system: its services, in order
    #: told about a stack the run starts, so that the stack dies with the run (SIGKILL too)
    watchdog: Watchdog | None = None
    #: the run's own stack serves HTTPS (its own CA; the run verifies with it)
    stack_tls: bool = False

    def resolve(self, cleanup: contextlib.ExitStack, rd: RunDir) -> Resolved:
        profile = self.profile
        needs_net = any(has_toxics(c) for c in profile.network)
        toxiproxy: ToxiproxyClient | None = None
        if self.services:
            if needs_net:
                toxiproxy = self._own_toxiproxy(cleanup, rd)
            named = {s.name: self._service_target(cleanup, rd, s, toxiproxy) for s in self.services}
            target = named[self.services[0].name]
            about: dict[str, Any] = {
                "kind": "system",
                "services": {n: _about(t) for n, t in named.items()},
                **_about(target),
            }
            return Resolved(target, about, None, named)
        instances: dict[str, str] = {}
        wallet: WalletTarget | None = None
        stack: ReferenceStack | None = None
        if self.urls is None or self.stack_dir is not None:
            stack = self._stack(cleanup, rd)
            users, merchants = wallet_accounts(stack.dsn)
            wallet = WalletTarget(
                stack.password,
                tuple(users),
                tuple(merchants),
                otp_outbox_token=stack.manifest.otp_outbox_token,
            )
            # through each instance's client-side proxy, where client network faults go
            urls = self.urls or [w.client_url for w in stack.manifest.wallets]
            if not self.urls:  # the timeline names each instance as the stack does
                instances = {w.client_url: w.name for w in stack.manifest.wallets}
            about = {"kind": "reference", "stack_dir": str(stack.stack_dir)}
            toxiproxy = stack.toxiproxy
            if stack.ca is not None:
                about["tls"] = {"ca": str(stack.ca)}
        else:
            urls = self.urls
            about = {"kind": "http"}
            if needs_net:
                toxiproxy = self._own_toxiproxy(cleanup, rd)
        service = Service("target", list(urls), self.tls if _https(urls) else None)
        target = self._service_target(cleanup, rd, service, toxiproxy)
        tls, by_url = _stack_tls(stack, urls, target.network)
        if tls is not None:  # the stack's own CA, and each wallet's name through its proxies
            target = replace(target, tls=tls, tls_by_url={**target.tls_by_url, **by_url})
        target = replace(target, kind="reference" if wallet is not None else "http", wallet=wallet)
        target = replace(target, instances=instances)
        about.update(_about(target))
        if instances:
            about["instances"] = dict(instances)
        return Resolved(target, about, stack)

    def _service_target(
        self,
        cleanup: contextlib.ExitStack,
        rd: RunDir,
        service: Service,
        toxiproxy: ToxiproxyClient | None,
    ) -> Target:
        """A service's target: its URLs, and for every network class with toxics a proxy in
        front of each (an https URL keeps its TLS through the proxy: same settings, the real
        host as the name to check)."""
        network: dict[str, tuple[str, ...]] = {}
        tls_by_url: dict[str, Tls] = {}
        if toxiproxy is not None and any(has_toxics(c) for c in self.profile.network):
            # user -> class proxy (its toxics) -> target (for the stack: the client-side proxy)
            prefix = f"net-{rd.name}" + ("" if service.name == "target" else f"-{service.name}")
            routing = NetworkRouting(toxiproxy, self.profile.network, service.urls, prefix=prefix)
            routes = cleanup.enter_context(routing).urls
            for cls, proxied in routes.items():
                network[cls] = tuple(proxied)
                for original, url in zip(service.urls, proxied, strict=True):
                    if url.startswith("https://"):
                        base = service.tls or Tls()
                        name = base.server_name or urlsplit(original).hostname
                        tls_by_url[url] = replace(base, server_name=name)
        return Target(
            urls=tuple(service.urls),
            network=network,
            tls=service.tls,
            tls_by_url=tls_by_url,
            headers=dict(service.headers),
        )

    def _stack(self, cleanup: contextlib.ExitStack, rd: RunDir) -> ReferenceStack:
        stack_dir = self.stack_dir
        if stack_dir is None and not (self.own_stack or self.wallet_unsafe or self.stack_tls):
            # a stack the user brought up with `loadkit stack up` (and that still runs)
            with contextlib.suppress(StackNotRunning):
                if ReferenceStack.attach(stack_dir_from()).any_alive():
                    stack_dir = stack_dir_from()
        if stack_dir is not None:
            return ReferenceStack.attach(stack_dir)
        if self.watchdog is not None:
            self.watchdog.watch_stack(rd.stack)
        stack = ReferenceStack.up(
            rd.stack,
            StackOptions(
                instances=self.instances,
                users=self.profile.users.accounts,
                unsafe=self.wallet_unsafe,
                tls=self.stack_tls,
            ),
        )
        cleanup.callback(stack.down)
        return stack

    def _own_toxiproxy(self, cleanup: contextlib.ExitStack, rd: RunDir) -> ToxiproxyClient:
        port = free_port()
        proc = start_server(port, rd.log("toxiproxy"))
        cleanup.callback(proc.terminate, 5.0)
        return ToxiproxyClient(port=port)


def _https(urls: list[str]) -> bool:
    return any(u.startswith("https://") for u in urls)


def _about(target: Target) -> dict[str, Any]:
    """What run.json says about a target (no secrets: headers by name only)."""
    about: dict[str, Any] = {
        "urls": list(target.urls),
        "network": {k: list(v) for k, v in target.network.items()},
    }
    if target.tls is not None or target.tls_by_url:
        tls = target.tls or Tls()
        about["tls"] = {"verify": tls.verify, "ca": tls.ca, "client_certificate": bool(tls.cert)}
    if target.insecure_urls:
        about["insecure_urls"] = target.insecure_urls
    if target.headers:
        about["headers"] = sorted(target.headers)
    return about


def _stack_tls(
    stack: ReferenceStack | None, urls: list[str], network: Mapping[str, tuple[str, ...]]
) -> tuple[Tls | None, dict[str, Tls]]:
    """For a stack that serves HTTPS: the target's TLS (its CA, ``Tls.ca``), and for each URL
    that reaches one wallet through a proxy (its client-side proxy, a network class's proxy in
    front of that) the wallet's name as ``server_name``, so that the load client checks it
    reached the wallet it meant to (every wallet's certificate also names 127.0.0.1)."""
    if stack is None or stack.ca is None:
        return None, {}
    ca = str(stack.ca)
    by_url: dict[str, Tls] = {}
    names = {w.client_url: w.name for w in stack.manifest.wallets}
    for i, url in enumerate(urls):
        name = names.get(url)
        if name is None or not url.startswith("https://"):
            continue
        by_url[url] = Tls(ca=ca, server_name=name)
        for class_urls in network.values():  # NetworkRouting keeps the order of ``urls``
            if i < len(class_urls):
                by_url[class_urls[i]] = Tls(ca=ca, server_name=name)
    return Tls(ca=ca), by_url


def wallet_accounts(dsn: str) -> tuple[Accounts, Accounts]:
    """Seeded users and merchants as ``(account_id, name)``, read from the wallet database."""
    import asyncpg

    async def fetch() -> tuple[Accounts, Accounts]:
        conn = await asyncpg.connect(dsn, timeout=10)
        try:
            rows = await conn.fetch(
                "SELECT id, name, kind FROM accounts WHERE kind IN ('user', 'merchant') ORDER BY id"
            )
        finally:
            await conn.close()
        users = [(int(r["id"]), str(r["name"])) for r in rows if r["kind"] == "user"]
        merchants = [(int(r["id"]), str(r["name"])) for r in rows if r["kind"] == "merchant"]
        return users, merchants

    return asyncio.run(fetch())
