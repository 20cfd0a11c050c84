"""The reference wallet stack: PostgreSQL, Toxiproxy and N wallet instances on loopback.

Every link a fault needs goes through Toxiproxy: each wallet instance reaches PostgreSQL through
its own proxy (``wallet-1-postgres``), and load reaches each instance through a client-side proxy
(``client-wallet-1``). The stack is described by its manifest, so any later process can attach::

    stack = ReferenceStack.up(Path(".loadkit/stack"), StackOptions(instances=2))
    stack.wallet("wallet-1").kill()
    stack.wallet("wallet-1").start()
    ReferenceStack.attach(Path(".loadkit/stack")).down()

:class:`ReferenceStack` is the one facade for both ways of running it: it does what is the same
for both (manifest, schema, proxies, seed, the wallets' command lines, status) and hands the rest
to its backend (:mod:`loadkit.stack.backends`: ``process`` or ``docker``), chosen by
``StackOptions.backend`` when the stack starts and by the manifest when a process attaches.
Starting one needs the ``stack`` extra (``pip install 'loadkit[stack]'``); attaching to, stopping
or breaking a running one does not.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from loadkit.errors import ConfigError, LoadkitError, StackNotRunning
from loadkit.extras import require_extra
from loadkit.safety import Allowlist
from loadkit.stack.admin import WalletAdmin, wallet_ready
from loadkit.stack.backends import Backend, backend_class
from loadkit.stack.manifest import ProxyInfo, StackManifest, WalletInfo
from loadkit.stack.ports import free_port
from loadkit.stack.postgres import Postgres
from loadkit.stack.process import ManagedProcess, ProcessInfo
from loadkit.stack.tls import CA_CERT, CA_KEY, CERTS, StackCA
from loadkit.stack.toxiproxy import ToxiproxyClient
from loadkit.wallet.contract import (
    ADMIN_TOKEN_ENV,
    DB_PASSWORD_ENV,
    DEFAULT_PASSWORD,
    OTP_OUTBOX_TOKEN_ENV,
    SECRET_ENV,
    UnsafeMode,
    merchant_name,
    user_name,
)

DEFAULT_STACK_DIR = Path(".loadkit") / "stack"
#: the database role the wallets of an embedded-PostgreSQL stack connect as
WALLET_DB_ROLE = "wallet_app"


def stack_dir_from(explicit: str | Path | None = None) -> Path:
    """The stack directory a command means: the one it was given, else ``$LOADKIT_STACK_DIR``,
    else ``.loadkit/stack`` (every command resolves it this one way)."""
    if explicit:
        return Path(explicit)
    env = os.environ.get("LOADKIT_STACK_DIR")
    return Path(env) if env else DEFAULT_STACK_DIR


@dataclass
class StackOptions:
    """How ``loadkit stack up`` builds the stack."""

    instances: int = 2
    users: int = 1000
    merchants: int = 50
    balance: int = 1_000_000  # per user, in fen (10,000.00 CNY)
    pg_dsn: str | None = None  # an external PostgreSQL instead of the embedded one
    pool_size: int = 20
    max_inflight: int = 256
    ready_timeout: float = 60.0
    #: a deliberately unsafe wallet mode (``ack-before-commit``, ``ignore-idempotency``,
    #: ``misapply``) for
    #: demonstrating the integrity check; recorded in the manifest (each wallet's argv)
    unsafe: str | None = None
    #: "process" (the default) or "docker": the same stack as containers (stack/backends/)
    backend: str = "process"
    #: serve every wallet over HTTPS with a certificate from the stack's own CA (stack/tls.py)
    tls: bool = False
    image: str | None = None  # docker: use this image instead of building loadkit-stack:<hash>

    def validate(self) -> None:
        if self.backend not in ("process", "docker"):
            raise ConfigError(f"--backend: expected process or docker, got {self.backend!r}")
        if not 1 <= self.instances <= 16:
            raise ConfigError(f"--instances: expected 1 to 16, got {self.instances}")
        if self.users < 2:
            raise ConfigError(f"--users: expected at least 2, got {self.users}")
        if self.merchants < 1:
            raise ConfigError(f"--merchants: expected at least 1, got {self.merchants}")
        if self.balance < 0:
            raise ConfigError(f"--balance: expected a non-negative amount, got {self.balance}")
        if self.unsafe is not None:
            modes = [m.value for m in UnsafeMode]
            if self.unsafe not in modes:
                raise ConfigError(
                    f"--unsafe: expected one of {', '.join(modes)}, got {self.unsafe!r}"
                )
        if self.pg_dsn:  # loadkit crashes and restarts this database: loopback only
            Allowlist().check_dsn(self.pg_dsn, what="--pg-dsn")


def _replace_hostport(dsn: str, port: int) -> str:
    parts = urlsplit(dsn)
    userinfo = parts.netloc.rsplit("@", 1)[0] + "@" if "@" in parts.netloc else ""
    return urlunsplit(parts._replace(netloc=f"{userinfo}127.0.0.1:{port}"))


class WalletHandle:
    """Process-level control of one wallet instance (what the chaos controller calls)."""

    def __init__(self, stack: ReferenceStack, info: WalletInfo) -> None:
        self._stack = stack
        self.info = info

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def process(self) -> ManagedProcess | None:
        return ManagedProcess.from_info(self.info.process) if self.info.process else None

    def alive(self) -> bool:
        proc = self.process
        return proc is not None and proc.alive()

    def ready(self, timeout: float = 1.0) -> bool:
        return wallet_ready(self.info, timeout)

    def kill(self) -> bool:
        """SIGKILL: the instance vanishes mid-request."""
        proc = self.process
        return proc.kill() and proc.wait_gone(5.0) if proc else False

    def pause(self) -> bool:
        """SIGSTOP: the instance hangs with its connections open."""
        proc = self.process
        return proc.pause() if proc else False

    def resume(self) -> bool:
        proc = self.process
        return proc.resume() if proc else False

    def stop(self, timeout: float = 10.0) -> None:
        """Graceful stop (SIGTERM: in-flight requests finish), SIGKILL after ``timeout``."""
        proc = self.process
        if proc:
            proc.terminate(timeout=timeout)

    def start(self, timeout: float = 30.0) -> None:
        """Start the instance again (same port, same settings) and wait until it is ready."""
        if self.alive():
            return
        self._stack.spawn_wallet(self.info)
        self._stack.backend.wait_wallets_ready([self.info], timeout)

    def restart(self, timeout: float = 30.0) -> None:
        self.stop()
        self.start(timeout)


class ReferenceStack:
    """A running (or starting) reference stack, described by its manifest; its ``backend``
    (from the manifest) runs the components."""

    def __init__(self, manifest: StackManifest) -> None:
        self.manifest = manifest
        self.backend: Backend = backend_class(manifest.backend)(self)
        self._seen = self._mtime()

    def _mtime(self) -> int | None:
        try:
            return self.manifest.path.stat().st_mtime_ns
        except OSError:
            return None

    def refresh(self) -> None:
        """Read the manifest again when another object or process rewrote it since (a run's
        chaos controller restarts a wallet: the new process is only in the file)."""
        seen = self._mtime()
        if seen is None or seen == self._seen:
            return
        with contextlib.suppress(LoadkitError, OSError, ValueError, KeyError, TypeError):
            self.manifest = StackManifest.read(self.stack_dir)
            self._seen = seen

    # -- finding and starting -------------------------------------------------------------------

    @property
    def stack_dir(self) -> Path:
        return Path(self.manifest.stack_dir)

    @classmethod
    def attach(cls, stack_dir: Path = DEFAULT_STACK_DIR) -> ReferenceStack:
        """The stack described by ``stack_dir/manifest.json`` (whichever backend runs it)."""
        return cls(StackManifest.read(stack_dir))

    @classmethod
    def up(
        cls, stack_dir: Path = DEFAULT_STACK_DIR, options: StackOptions | None = None
    ) -> ReferenceStack:
        """Start everything, wait until ready, seed; on any failure (or Ctrl-C) stop what was
        started and re-raise, leaving nothing running. Exit 3 before anything starts when the
        ``stack`` extra is not installed, or the backend lacks what it needs."""
        opts = options or StackOptions()
        opts.validate()
        require_extra("stack", "the reference stack")
        opts = backend_class(opts.backend).prepare(opts)
        stack_dir = stack_dir.absolute()
        try:
            existing = cls.attach(stack_dir)  # whichever backend it used
        except StackNotRunning:
            pass
        else:
            if existing.any_alive():
                raise ConfigError(
                    f"a stack is already running in {stack_dir}; "
                    "use it, or stop it with `loadkit stack down`"
                )
            existing.down()  # leftovers of a stack that died: clear them first
        stack_dir.mkdir(parents=True, exist_ok=True)
        manifest = StackManifest(
            stack_dir=str(stack_dir),
            created_at=time.time(),
            admin_token=secrets.token_urlsafe(24),
            token_secret=secrets.token_urlsafe(32),
            otp_outbox_token=secrets.token_urlsafe(24),
            external_dsn=opts.pg_dsn,
            backend=opts.backend,
        )
        stack = cls(manifest)
        try:
            stack._start(opts)
        except BaseException:
            stack.down()
            raise
        return stack

    def _start(self, opts: StackOptions) -> None:
        m = self.manifest
        logs = self.stack_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        ca = StackCA.create(self.stack_dir) if opts.tls else None
        if ca is not None:  # the stack's own CA, beside the manifest (its key: owner-only)
            m.ca = str(ca.cert)
        self.save()

        # 1. PostgreSQL (the backend's own) or the user's server
        if opts.pg_dsn:
            base_dsn = opts.pg_dsn
            m.database = urlsplit(base_dsn).path.lstrip("/") or "postgres"
        else:
            base_dsn = self.backend.start_postgres(opts, logs)
        db_port = urlsplit(base_dsn).port or 5432

        from loadkit.wallet.schema import migrate, seed  # the server's side: the stack extra

        wallet_dsn = self._wallet_role(base_dsn)
        migrate(base_dsn, grant_to=m.wallet_db_user or None)

        # 2. Toxiproxy and a proxy on every link
        m.toxiproxy_port = free_port()
        self.save()

        self.backend.start_toxiproxy(opts, m.toxiproxy_port, logs)
        tp = self.toxiproxy
        for i in range(1, opts.instances + 1):
            name = f"wallet-{i}"
            wallet_port, client_port, db_proxy_port = free_port(), free_port(), free_port()
            db_proxy = ProxyInfo(
                f"{name}-postgres", db_proxy_port, f"127.0.0.1:{db_port}", f"{name} -> postgres"
            )
            client = ProxyInfo(
                f"client-{name}", client_port, f"127.0.0.1:{wallet_port}", f"client -> {name}"
            )
            for p in (db_proxy, client):
                tp.create_proxy(p.name, listen=p.listen_port, upstream=p.upstream)
                m.proxies.append(p)
            m.wallets.append(
                WalletInfo(
                    name=name,
                    port=wallet_port,
                    client_proxy=client.name,
                    client_port=client_port,
                    db_proxy=db_proxy.name,
                    dsn=_replace_hostport(wallet_dsn, db_proxy_port),
                    ca=m.ca,
                )
            )
            if ca is not None:
                ca.issue(name)
        self.save()

        # 3. wallet instances, all started before waiting on any
        for w in m.wallets:
            self.spawn_wallet(w, opts)
        self.backend.wait_wallets_ready(m.wallets, opts.ready_timeout)

        # 4. seed data through the real ledger
        m.seed = dict(seed(base_dsn, opts.users, opts.merchants, opts.balance))
        m.seed.update(
            users=opts.users,
            merchants=opts.merchants,
            balance=opts.balance,
            password=DEFAULT_PASSWORD,
            user_names=f"{user_name(1)} …",
            merchant_names=f"{merchant_name(1)} …",
        )
        m.status = "running"
        self.save()

    def _wallet_role(self, base_dsn: str) -> str:
        """On the embedded server, the wallets connect as their own role with only the rights
        the service needs (``loadkit`` stays the superuser of loadkit's own connections): create
        it; the base DSN of that role (no password: it reaches the wallets through their
        environment). Migrating grants the rights. An external server is the user's: its DSN
        is used as given."""
        m = self.manifest
        pg = self.postgres
        if pg is None:
            return base_dsn
        m.wallet_db_user, m.wallet_db_password = WALLET_DB_ROLE, secrets.token_urlsafe(24)
        self.save()
        pg.create_role(m.wallet_db_user, m.wallet_db_password)
        return pg.dsn(m.database, user=m.wallet_db_user)

    def _wallet_env(self) -> dict[str, str]:
        """The secrets a wallet instance reads from its environment (never from argv)."""
        m = self.manifest
        env = {
            SECRET_ENV: m.token_secret,
            ADMIN_TOKEN_ENV: m.admin_token,
            OTP_OUTBOX_TOKEN_ENV: m.otp_outbox_token,
        }
        if m.wallet_db_password:
            env[DB_PASSWORD_ENV] = m.wallet_db_password
        return env

    def _wallet_argv(self, w: WalletInfo, opts: StackOptions) -> list[str]:
        """How an instance is started the first time (a restart reuses the recorded argv)."""
        return [
            self.backend.python,
            "-m",
            "loadkit.wallet",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(w.port),
            "--dsn",
            w.dsn,
            "--name",
            w.name,
            "--pool-size",
            str(opts.pool_size),
            "--max-inflight",
            str(opts.max_inflight),
            *(["--unsafe", opts.unsafe] if opts.unsafe else []),
            *self._tls_argv(w),
        ]

    def _tls_argv(self, w: WalletInfo) -> list[str]:
        """``--tls-cert``/``--tls-key`` of ``w``'s certificate from the stack CA (HTTPS only)."""
        if not w.ca:
            return []
        folder = self.stack_dir / CERTS
        return [
            "--tls-cert",
            str(folder / f"{w.name}.pem"),
            "--tls-key",
            str(folder / f"{w.name}.key"),
        ]

    def spawn_wallet(self, w: WalletInfo, opts: StackOptions | None = None) -> None:
        """Start ``w``: the first time from ``opts``; again (a restart) with its recorded argv.
        Does not wait until it is ready."""
        old = w.process.argv if w.process else None
        argv = old or self._wallet_argv(w, opts or StackOptions())
        env = self._wallet_env()
        self.backend.spawn_wallet(w, argv, env, opts)

    def save(self) -> None:
        self.manifest.write()
        self._seen = self._mtime()

    # -- handles --------------------------------------------------------------------------------

    @property
    def postgres(self) -> Postgres | None:
        """The stack's own PostgreSQL (None when the stack uses an external server). Its
        :meth:`~Postgres.start` records the new postmaster in the manifest."""
        return self.backend.postgres()

    def record_postgres(self, pg: Postgres) -> None:
        """Record a (re)started PostgreSQL in the manifest (its ``on_started`` hook)."""
        self.manifest.postgres = pg.info()
        self.save()

    @property
    def toxiproxy(self) -> ToxiproxyClient:
        if self.manifest.toxiproxy_port is None:
            raise StackNotRunning("the stack has no Toxiproxy server")
        return ToxiproxyClient(port=self.manifest.toxiproxy_port)

    @property
    def wallets(self) -> list[WalletHandle]:
        self.refresh()
        return [WalletHandle(self, w) for w in self.manifest.wallets]

    def wallet(self, name: str) -> WalletHandle:
        self.refresh()
        for w in self.manifest.wallets:
            if w.name == name:
                return WalletHandle(self, w)
        known = ", ".join(w.name for w in self.manifest.wallets)
        raise ConfigError(f"no wallet instance named {name!r} (known: {known})")

    @property
    def admin(self) -> WalletAdmin:
        """The wallet admin API of every instance."""
        m = self.manifest
        verify = m.wallets[0].verify if m.wallets else True
        return WalletAdmin([w.url for w in m.wallets], m.admin_token, verify=verify)

    @property
    def ca(self) -> Path | None:
        """The stack CA's certificate when the wallets serve HTTPS (``stack up --tls``)."""
        return Path(self.manifest.ca) if self.manifest.ca else None

    @property
    def dsn(self) -> str:
        """Direct DSN of the wallet database (not through Toxiproxy)."""
        if self.manifest.external_dsn:
            return self.manifest.external_dsn
        pg = self.postgres
        if pg is None:
            raise StackNotRunning("the stack has no database")
        return pg.dsn(self.manifest.database)

    @property
    def unsafe(self) -> str | None:
        """The wallets' deliberately unsafe mode, if any (from their recorded command lines)."""
        for w in self.manifest.wallets:
            argv = w.process.argv if w.process else []
            if "--unsafe" in argv[:-1]:
                return str(argv[argv.index("--unsafe") + 1])
        return None

    @property
    def password(self) -> str:
        return str(self.manifest.seed.get("password", ""))

    # -- state ----------------------------------------------------------------------------------

    def processes(self) -> list[ProcessInfo]:
        """Every component's main process the manifest records (a container's, as the host
        sees it, with the docker backend)."""
        m = self.manifest
        procs = [w.process for w in m.wallets if w.process]
        if m.toxiproxy:
            procs.append(m.toxiproxy)
        if m.postgres and m.postgres.process:
            procs.append(m.postgres.process)
        return procs

    def pids(self) -> list[int]:
        return [p.pid for p in self.processes()]

    def any_alive(self) -> bool:
        return self.backend.any_alive()

    def status(self) -> dict[str, Any]:
        """Each component: running or not, pid, port, ready; JSON-ready."""
        self.refresh()
        m = self.manifest
        components: list[dict[str, Any]] = []
        pg = self.postgres
        if pg is not None:
            alive = pg.alive()
            components.append(
                {
                    "name": "postgres",
                    "kind": "postgres",
                    "pid": pg.process.pid if pg.process else None,
                    "port": pg.port,
                    "running": alive,
                    "ready": alive and pg.ready(),
                    "log": str(pg.log_path),
                }
            )
        elif m.external_dsn:
            components.append({"name": "postgres", "kind": "external", "dsn": m.external_dsn})
        if m.toxiproxy:
            proc = ManagedProcess.from_info(m.toxiproxy)
            alive = proc.alive()
            components.append(
                {
                    "name": "toxiproxy",
                    "kind": "toxiproxy",
                    "pid": proc.pid,
                    "port": m.toxiproxy_port,
                    "running": alive,
                    "ready": alive and self.toxiproxy.ping(),
                    "log": m.toxiproxy.log,
                }
            )
        for handle in self.wallets:
            w = handle.info
            alive = handle.alive()
            components.append(
                {
                    "name": w.name,
                    "kind": "wallet",
                    "pid": w.process.pid if w.process else None,
                    "port": w.port,
                    "client_url": w.client_url,
                    "running": alive,
                    "ready": alive and handle.ready(),
                    "log": w.process.log if w.process else None,
                }
            )
        status = {
            "stack_dir": m.stack_dir,
            "status": m.status,
            "healthy": all(c.get("ready", True) for c in components),
            "unsafe": self.unsafe,
            "tls": {"ca": m.ca} if m.ca else None,
            "components": components,
            "proxies": [p.to_dict() for p in m.proxies],
            "seed": {k: v for k, v in m.seed.items()},
        }
        self.backend.annotate_status(status)
        return status

    # -- stopping -------------------------------------------------------------------------------

    def down(self) -> list[str]:
        """Stop every component of the stack, delete its database; returns what was stopped.
        Safe to call on a half-started or half-dead stack."""
        # the manifest on disk is the truth: another process (a run's chaos controller) may have
        # restarted a wallet or the database since this object read it
        with contextlib.suppress(LoadkitError, OSError, ValueError, KeyError, TypeError):
            if self.manifest.path.exists():
                self.manifest = StackManifest.read(self.stack_dir)
        m = self.manifest
        m.status = "stopping"
        if self.stack_dir.exists():
            self.save()
        stopped = self.backend.stop()
        m.path.unlink(missing_ok=True)
        if m.ca:  # the CA and its certificates served this stack only: its keys go with it
            for name in (CA_CERT, CA_KEY):
                (self.stack_dir / name).unlink(missing_ok=True)
            shutil.rmtree(self.stack_dir / CERTS, ignore_errors=True)
        return stopped
