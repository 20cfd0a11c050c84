"""The reference stack as containers: the same PostgreSQL, Toxiproxy and wallet instances, each in
a container with host networking, from the image :mod:`loadkit.stack.docker` builds here.

The manifest is the same as the process backend's (``backend: docker``), and each component's
``process`` is the container's main process as the host sees it. So every existing fault works
unchanged: ``process.crash`` SIGKILLs the wallet container's main process (the container exits)
and its revert starts the container again; ``postgres.crash`` stops the database container and
starts it again with crash recovery. Containers are named ``loadkit-<hash of the stack dir>-<
component>`` and labelled with the stack directory, so ``down`` finds them all::

    stack = ReferenceStack.up(Path(".loadkit/docker"), StackOptions(backend="docker"))
    stack.wallet("wallet-1").kill()     # the container exits (137)
    stack.wallet("wallet-1").start()    # the same container runs again, ready
    ReferenceStack.attach(Path(".loadkit/docker")).down()   # containers removed
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any

import asyncpg

from loadkit.errors import ComponentFailed, EnvironmentProblem
from loadkit.stack import docker as dk
from loadkit.stack import docker_image as img
from loadkit.stack.manifest import WalletInfo
from loadkit.stack.ports import port_open
from loadkit.stack.postgres import Postgres as _Postgres
from loadkit.stack.postgres import PostgresInfo, StopMode, find_bin_dir
from loadkit.stack.process import ManagedProcess
from loadkit.stack.reference import DEFAULT_STACK_DIR, ReferenceStack, StackOptions, WalletHandle
from loadkit.stack.toxiproxy import ToxiproxyClient

_STOP_SIGNALS = {
    StopMode.SMART: "SIGTERM",
    StopMode.FAST: "SIGINT",
    StopMode.IMMEDIATE: "SIGQUIT",
}


def _container(client: Any, name: str) -> Any | None:
    from docker.errors import NotFound

    try:
        return client.containers.get(name)
    except NotFound:
        return None


class DockerPostgres(_Postgres):
    """The stack's PostgreSQL in its container: started, stopped and crashed through the engine;
    SQL and ``pg_isready`` over TCP from the host, as with the process backend."""

    container_name: str
    _client: Any

    @classmethod
    def for_container(cls, info: PostgresInfo, container_name: str, client: Any) -> DockerPostgres:
        pg = cls._restored(info)
        pg.container_name = container_name
        pg._client = client
        return pg

    def _get(self) -> Any:
        found = _container(self._client, self.container_name)
        if found is None:
            raise EnvironmentProblem(f"postgres: container {self.container_name} is gone")
        return found

    def _refresh(self, container: Any) -> None:
        info = dk.process_info(container, "postgres")
        self.process = ManagedProcess.from_info(info) if info else None
        if info and self.on_started:
            self.on_started(self)

    def alive(self) -> bool:
        container = _container(self._client, self.container_name)
        if container is None:
            return False
        dk.settle(container)
        if container.status != "running":
            return False
        pid = int(container.attrs["State"].get("Pid") or 0)
        if self.process is None or self.process.pid != pid:
            self._refresh(container)  # restarted by someone else: follow its new pid
        return True

    def ready(self) -> bool:
        if (self.bin_dir / "pg_isready").exists():
            return super().ready()
        return port_open(self.port) and self._sql_ready()

    def _sql_ready(self) -> bool:
        async def go() -> None:
            conn = await asyncpg.connect(self.dsn("postgres"), timeout=2)
            await conn.close()

        try:
            asyncio.run(go())
        except (OSError, asyncpg.PostgresError, TimeoutError):
            return False
        return True

    def start(self, timeout: float = 60.0) -> None:
        """Start the container (initdb the first time, crash recovery after a crash)."""
        if self.alive() and self.ready():
            return
        container = self._get()
        container.start()
        dk.wait_running(container, timeout)
        self._refresh(container)
        deadline = time.monotonic() + timeout
        while not self.ready():
            container.reload()
            if container.status != "running":
                raise ComponentFailed(
                    "postgres",
                    f"container {container.name} exited before accepting connections",
                    log_tail=dk.logs_tail(container),
                )
            if time.monotonic() > deadline:
                raise ComponentFailed(
                    "postgres",
                    f"not accepting connections after {timeout:g}s",
                    log_tail=self.log_tail(),
                )
            time.sleep(0.05)

    def stop(self, mode: StopMode = StopMode.FAST, timeout: float = 30.0) -> None:
        container = _container(self._client, self.container_name)
        if container is None:
            return
        container.reload()
        if container.status == "paused":
            container.unpause()
        if container.status in ("running", "paused"):
            container.kill(signal=_STOP_SIGNALS[mode])
            if not _wait_exited(container, timeout):
                container.kill()
                _wait_exited(container, 10)
        if self.process is not None:
            self.process.wait_gone(5.0)

    def crash(self) -> None:
        """SIGKILL the postmaster (the container's main process): the container exits."""
        container = _container(self._client, self.container_name)
        if container is None:
            return
        container.reload()
        if container.status == "running":
            container.kill(signal="SIGKILL")
            _wait_exited(container, 10)

    def log_tail(self, lines: int = 20) -> str:
        container = _container(self._client, self.container_name)
        return dk.logs_tail(container, lines) if container is not None else ""

    def destroy(self) -> None:
        container = _container(self._client, self.container_name)
        if container is not None:
            container.remove(force=True, v=True)


def _wait_exited(container: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        container.reload()
        if container.status not in ("running", "paused", "restarting"):
            return True
        time.sleep(0.05)
    return False


class DockerStack(ReferenceStack):
    """A reference stack whose components are containers (see the module docstring)."""

    _client: Any = None
    _image: str | None = None  # while starting: the image every container is created from

    @property
    def client(self) -> Any:
        """The engine (connected on first use; :class:`~loadkit.stack.docker.DockerUnavailable`
        when it does not answer)."""
        if self._client is None:
            self._client = dk.connect()
        return self._client

    @classmethod
    def up(
        cls, stack_dir: Path = DEFAULT_STACK_DIR, options: StackOptions | None = None
    ) -> ReferenceStack:
        """Check the engine (exit 3 and nothing else when none answers), make sure the image
        exists (built here once per content hash), then start the stack as containers."""
        opts = replace(options or StackOptions(), backend="docker")
        opts.validate()
        client = dk.connect()
        image = opts.image or img.ensure_image(client)
        if not img.image_exists(client, img.role_image(image, "wallet")):
            raise EnvironmentProblem(f"docker image {image} not found (build it: docs/docker.md)")
        return super().up(stack_dir, replace(opts, image=image))

    def _name(self, component: str) -> str:
        return dk.container_name(self.stack_dir, component)

    def _run(
        self, component: str, role: str, command: list[str], *, user: str | None = None, **kw: Any
    ) -> Any:
        """Create and start one component's container (host network, no restart policy: a
        crash stays a crash until a fault's revert starts it again)."""
        if self._image is None:
            raise EnvironmentProblem(
                f"{component}: container {self._name(component)} is gone; restart the stack"
            )
        image = img.role_image(self._image, role)
        if not img.image_exists(self.client, image):  # never let the engine try to pull it
            raise EnvironmentProblem(f"docker image {image} not found (docs/docker.md)")
        stale = _container(self.client, self._name(component))
        if stale is not None:
            stale.remove(force=True, v=True)
        container = self.client.containers.create(
            image,
            command,
            name=self._name(component),
            network_mode="host",
            user=user,
            labels={
                dk.LABEL_STACK: str(self.stack_dir),
                dk.LABEL_COMPONENT: component,
                dk.LABEL_IMAGE: image,
            },
            **kw,
        )
        container.start()
        return container

    # -- the three kinds of component ---------------------------------------------------------

    def _start_postgres(self, opts: StackOptions, logs: Path) -> str:
        from loadkit.stack.ports import free_port

        m = self.manifest
        port = free_port()
        bin_dir = find_bin_dir()
        m.postgres = PostgresInfo(
            port=port,
            data_dir=img.PG_DATA,
            bin_dir=str(bin_dir or ""),
            log=f"docker logs {self._name('postgres')}",
            os_user="postgres",
            process=None,
        )
        self.save()
        command = [
            "loadkit-postgres",
            *("-p", str(port), "-c", "listen_addresses=127.0.0.1"),
            *("-c", "unix_socket_directories=", "-c", "max_connections=300"),
            *("-c", "log_min_messages=warning"),
        ]
        self._run(
            "postgres", "postgres", command, user=f"{img.PG_UID}:{img.PG_UID}", shm_size="256m"
        )
        pg = self.postgres
        assert pg is not None
        pg.start(timeout=opts.ready_timeout)
        _create_database(pg.dsn("postgres"), m.database)
        return pg.dsn(m.database)

    def _start_toxiproxy(self, port: int, logs: Path) -> None:
        container = self._run(
            "toxiproxy",
            "toxiproxy",
            ["toxiproxy-server", "-host", "127.0.0.1", "-port", str(port)],
        )
        dk.wait_running(container)
        self.manifest.toxiproxy = dk.process_info(container, "toxiproxy")
        self.save()
        client = ToxiproxyClient(port=port, timeout=1.0)
        deadline = time.monotonic() + 20
        while not client.ping():
            container.reload()
            if container.status != "running" or time.monotonic() > deadline:
                raise ComponentFailed(
                    "toxiproxy", "not answering on its API", log_tail=dk.logs_tail(container)
                )
            time.sleep(0.05)

    def _start(self, opts: StackOptions) -> None:
        self._image = opts.image
        super()._start(opts)

    def _spawn_wallet(self, w: WalletInfo, opts: StackOptions | None = None) -> None:
        """Start ``w``'s container: created the first time, started again after a crash."""
        container = _container(self.client, self._name(w.name))
        if container is None:
            argv = ["python3", *self._wallet_argv(w, opts or StackOptions())[1:]]
            env = self._wallet_env()
            container = self._run(w.name, "wallet", argv, environment=env)
        else:
            dk.settle(container)
            if container.status == "paused":
                container.unpause()
            elif container.status != "running":
                container.start()
        dk.wait_running(container)
        w.process = dk.process_info(container, w.name)
        self.save()

    def _wait_wallets_ready(self, wallets: Iterable[WalletInfo], timeout: float) -> None:
        for w in wallets:
            handle = WalletHandle(self, w)
            container = _container(self.client, self._name(w.name))
            deadline = time.monotonic() + timeout
            while not handle.ready(timeout=1.0):
                if container is not None:
                    container.reload()
                if container is None or container.status != "running":
                    raise ComponentFailed(
                        w.name,
                        "its container exited before it was ready (/readyz)",
                        log_tail=dk.logs_tail(container) if container is not None else None,
                    )
                if time.monotonic() > deadline:
                    raise ComponentFailed(
                        w.name,
                        f"not ready (/readyz) after {timeout:g}s",
                        log_tail=dk.logs_tail(container),
                    )
                time.sleep(0.1)

    # -- handles and state ---------------------------------------------------------------------

    @property
    def postgres(self) -> _Postgres | None:
        if self.manifest.postgres is None:
            return None
        pg = DockerPostgres.for_container(
            self.manifest.postgres, self._name("postgres"), self.client
        )
        pg.on_started = self._postgres_started
        return pg

    def containers(self) -> dict[str, Any]:
        """component → its container, for every container of this stack."""
        return {
            str(c.labels.get(dk.LABEL_COMPONENT)): c
            for c in dk.stack_containers(self.client, self.stack_dir)
        }

    def sync(self) -> None:
        """Record every running container's current main process in the manifest (after
        something outside loadkit restarted one)."""
        found = self.containers()
        for w in self.manifest.wallets:
            if w.name in found:
                w.process = dk.process_info(found[w.name], w.name) or w.process
        if "toxiproxy" in found:
            self.manifest.toxiproxy = (
                dk.process_info(found["toxiproxy"], "toxiproxy") or self.manifest.toxiproxy
            )
        if self.manifest.postgres is not None and "postgres" in found:
            info = dk.process_info(found["postgres"], "postgres")
            if info is not None:
                self.manifest.postgres.process = info
        self.save()
        if "toxiproxy" in found and found["toxiproxy"].status == "running":
            self._restore_proxies()

    def _restore_proxies(self, timeout: float = 20.0) -> None:
        """Toxiproxy keeps its proxies in memory: a restarted container has none. Create the
        manifest's proxies again (toxics are gone; faults that put them there revert anyway)."""
        tp = self.toxiproxy
        deadline = time.monotonic() + timeout
        while not tp.ping():
            if time.monotonic() > deadline:
                raise ComponentFailed("toxiproxy", f"not answering {timeout:g}s after a restart")
            time.sleep(0.05)
        present = tp.proxies()
        for p in self.manifest.proxies:
            if p.name not in present:
                tp.create_proxy(p.name, listen=p.listen_port, upstream=p.upstream)

    def any_alive(self) -> bool:
        return any(c.status in ("running", "paused") for c in self.containers().values())

    def status(self) -> dict[str, Any]:
        found = self.containers()
        status = super().status()
        status["backend"] = "docker"
        for component in status["components"]:
            container = found.get(component["name"])
            component["container"] = container.name if container is not None else None
            component["state"] = container.status if container is not None else "missing"
            if container is not None and container.status != "running":
                component["running"] = component["ready"] = False
        status["healthy"] = all(c.get("ready", True) for c in status["components"])
        return status

    def down(self) -> list[str]:
        """Remove every container of the stack (its database with it)."""
        m = self.manifest
        m.status = "stopping"
        if self.stack_dir.exists():
            self.save()
        found = self.containers()
        stopped = []
        for component, container in found.items():
            container.reload()
            if container.status in ("running", "paused", "restarting"):
                stopped.append(component)
        # SIGTERM to the wallets and Toxiproxy at once (wallets drain; a few seconds at most);
        # the database is deleted anyway, so it is killed rather than waited for
        graceful = [c for n, c in found.items() if n != "postgres"]
        for container in graceful:
            with contextlib.suppress(Exception):
                if container.status == "paused":
                    container.unpause()
                if container.status in ("running", "paused"):
                    container.kill(signal="SIGTERM")
        deadline = time.monotonic() + 5
        for container in graceful:
            _wait_exited(container, max(0.0, deadline - time.monotonic()))
        for container in found.values():
            container.remove(force=True, v=True)
        order = {"toxiproxy": 1, "postgres": 2}
        stopped.sort(key=lambda n: (order.get(n, 0), n))
        left = list(self.containers())
        if left:
            raise ComponentFailed("stack", f"could not remove containers: {', '.join(left)}")
        m.path.unlink(missing_ok=True)
        return stopped


def _create_database(admin_dsn: str, name: str) -> None:
    async def go() -> None:
        conn = await asyncpg.connect(admin_dsn, timeout=10)
        try:
            exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
            if not exists:
                await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    asyncio.run(go())


def remove_leftovers(stack_dir: Path) -> list[str]:
    """Remove the containers of a docker-backed stack whose manifest is gone; their names."""
    client = dk.connect()
    removed = []
    for container in dk.stack_containers(client, stack_dir):
        container.remove(force=True, v=True)
        removed.append(str(container.name))
    return sorted(removed)
