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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loadkit.errors import ConfigError, StackNotRunning
from loadkit.load.runconfig import Target, WalletTarget
from loadkit.profile.model import Profile
from loadkit.run.network import NetworkRouting, has_toxics
from loadkit.rundir import RunDir
from loadkit.safety import Allowlist
from loadkit.stack.ports import free_port
from loadkit.stack.reference import ReferenceStack, StackOptions, stack_dir_from
from loadkit.stack.toxiproxy import ToxiproxyClient, start_server

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


@dataclass
class TargetResolver:
    """How a run finds its target (see the module docstring)."""

    profile: Profile
    urls: list[str] | None  # --target; None = the reference stack
    stack_dir: Path | None = None  # a running stack to use (--stack-dir)
    own_stack: bool = False  # always start a stack of the run's own
    instances: int = 2  # wallet instances of a stack the run starts
    wallet_unsafe: str | None = None  # the run's own stack runs a deliberately unsafe wallet

    def resolve(self, cleanup: contextlib.ExitStack, rd: RunDir) -> Resolved:
        profile = self.profile
        needs_net = any(has_toxics(c) for c in profile.network)
        toxiproxy: ToxiproxyClient | None = None
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
            about: dict[str, Any] = {"kind": "reference", "stack_dir": str(stack.stack_dir)}
            toxiproxy = stack.toxiproxy
        else:
            urls = self.urls
            about = {"kind": "http"}
            if needs_net:
                toxiproxy = self._own_toxiproxy(cleanup, rd)
        network: dict[str, tuple[str, ...]] = {}
        if needs_net and toxiproxy is not None:
            # user -> class proxy (its toxics) -> target (for the stack: the client-side proxy)
            routing = NetworkRouting(toxiproxy, profile.network, urls, prefix=f"net-{rd.name}")
            network = {k: tuple(v) for k, v in cleanup.enter_context(routing).urls.items()}
        target = Target(
            urls=tuple(urls),
            kind="reference" if wallet is not None else "http",
            network=network,
            wallet=wallet,
            instances=instances,
        )
        about.update(urls=list(urls), network={k: list(v) for k, v in network.items()})
        if instances:
            about["instances"] = dict(instances)
        return Resolved(target, about, stack)

    def _stack(self, cleanup: contextlib.ExitStack, rd: RunDir) -> ReferenceStack:
        stack_dir = self.stack_dir
        if stack_dir is None and not self.own_stack and not self.wallet_unsafe:
            # a stack the user brought up with `loadkit stack up` (and that still runs)
            with contextlib.suppress(StackNotRunning):
                if ReferenceStack.attach(stack_dir_from()).any_alive():
                    stack_dir = stack_dir_from()
        if stack_dir is not None:
            return ReferenceStack.attach(stack_dir)
        stack = ReferenceStack.up(
            rd.stack,
            StackOptions(
                instances=self.instances,
                users=self.profile.users.accounts,
                unsafe=self.wallet_unsafe,
            ),
        )
        cleanup.callback(stack.down)
        return stack

    def _own_toxiproxy(self, cleanup: contextlib.ExitStack, rd: RunDir) -> ToxiproxyClient:
        port = free_port()
        proc = start_server(port, rd.log("toxiproxy"))
        cleanup.callback(proc.terminate, 5.0)
        return ToxiproxyClient(port=port)


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
