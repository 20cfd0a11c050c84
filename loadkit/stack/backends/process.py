"""The reference stack as local OS processes: the embedded PostgreSQL, ``toxiproxy-server`` and
``python -m loadkit.wallet serve`` per instance, each in its own session, found again from the
manifest by pid and start time (:mod:`loadkit.stack.process`)::

    stack = ReferenceStack.up(Path(".loadkit/stack"))     # backend "process", the default
    stack.backend.name                                   # 'process'
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from loadkit.errors import ComponentFailed
from loadkit.stack.admin import wallet_ready
from loadkit.stack.manifest import WalletInfo
from loadkit.stack.ports import free_port
from loadkit.stack.postgres import Postgres, StopMode
from loadkit.stack.process import ManagedProcess, ProcessInfo
from loadkit.stack.toxiproxy import start_server

if TYPE_CHECKING:
    from loadkit.stack.reference import ReferenceStack, StackOptions


class ProcessBackend:
    """Components as processes of this machine (see the module docstring)."""

    name: ClassVar[str] = "process"
    python: ClassVar[str] = sys.executable

    def __init__(self, stack: ReferenceStack) -> None:
        self.stack = stack

    @classmethod
    def prepare(cls, opts: StackOptions) -> StackOptions:
        return opts  # binaries are found as each component starts (exit 3 naming the missing one)

    def start_postgres(self, opts: StackOptions, logs: Path) -> str:
        m = self.stack.manifest
        pg = Postgres(self.stack.stack_dir / "postgres", port=free_port())
        pg.log_path = logs / "postgres.log"
        pg.on_started = self.stack.record_postgres
        m.postgres = pg.info()
        self.stack.save()
        pg.start(timeout=opts.ready_timeout)
        return pg.create_database(m.database)

    def start_toxiproxy(self, opts: StackOptions, port: int, logs: Path) -> None:
        def record(info: ProcessInfo) -> None:
            self.stack.manifest.toxiproxy = info
            self.stack.save()

        start_server(port, logs / "toxiproxy.log", on_spawn=record)

    def spawn_wallet(
        self, w: WalletInfo, argv: list[str], env: dict[str, str], opts: StackOptions | None
    ) -> None:
        def record(info: ProcessInfo) -> None:
            w.process = info
            self.stack.save()

        log = self.stack.stack_dir / "logs" / f"{w.name}.log"
        ManagedProcess.spawn(w.name, argv, log, env=env, on_spawn=record)

    def wait_wallets_ready(self, wallets: Iterable[WalletInfo], timeout: float) -> None:
        for w in wallets:
            assert w.process is not None

            def ready(w: WalletInfo = w) -> bool:
                return wallet_ready(w)

            ManagedProcess.from_info(w.process).wait_ready(
                ready, timeout=timeout, what="ready (/readyz)", interval=0.1
            )

    def postgres(self) -> Postgres | None:
        info = self.stack.manifest.postgres
        if info is None:
            return None
        pg = Postgres.from_info(info)
        pg.on_started = self.stack.record_postgres
        return pg

    def any_alive(self) -> bool:
        return any(ManagedProcess.from_info(p).alive() for p in self.stack.processes())

    def annotate_status(self, status: dict[str, Any]) -> None:
        return None  # the facade's answer is the processes' own

    def stop(self) -> list[str]:
        m = self.stack.manifest
        stopped: list[str] = []
        for w in m.wallets:
            if w.process:
                proc = ManagedProcess.from_info(w.process)
                if proc.alive():
                    proc.terminate(timeout=10)
                    stopped.append(w.name)
        if m.toxiproxy:
            proc = ManagedProcess.from_info(m.toxiproxy)
            if proc.alive():
                proc.terminate(timeout=5)
                stopped.append("toxiproxy")
        pg = self.postgres()
        if pg is not None:
            if pg.alive():
                pg.stop(StopMode.FAST, timeout=20)
                stopped.append("postgres")
            shutil.rmtree(pg.data_dir, ignore_errors=True)
        leftovers = [p for p in self.stack.processes() if ManagedProcess.from_info(p).alive()]
        if leftovers:
            names = ", ".join(f"{p.name} (pid {p.pid})" for p in leftovers)
            raise ComponentFailed("stack", f"could not stop: {names}")
        return stopped


if TYPE_CHECKING:
    from loadkit.stack.backends import Backend

    _: type[Backend] = ProcessBackend  # mypy checks the class against the protocol
