"""The reference stack as containers: the same PostgreSQL, Toxiproxy and wallet instances, each in
a container with host networking, from the image :mod:`loadkit.stack.docker_image` builds here.

The manifest is the same as the process backend's (``backend: docker``), and each component's
``process`` is the container's main process as the host sees it. So every existing fault works
unchanged: ``process.crash`` SIGKILLs the wallet container's main process (the container exits)
and its revert starts the container again; ``postgres.crash`` stops the database container and
starts it again with crash recovery. Containers are named ``loadkit-<hash of the stack dir>-<
component>`` and labelled with the stack directory, so ``down`` finds them all::

    stack = ReferenceStack.up(Path(".loadkit/docker"), StackOptions(backend="docker"))
    stack.backend.containers()          # {'postgres': <Container>, 'toxiproxy': …, 'wallet-1': …}
    stack.wallet("wallet-1").kill()     # the container exits (137)
    stack.wallet("wallet-1").start()    # the same container runs again, ready
    ReferenceStack.attach(Path(".loadkit/docker")).down()   # containers removed
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import shutil
import time
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import asyncpg

from loadkit.errors import ComponentFailed, EnvironmentProblem
from loadkit.stack import docker as dk
from loadkit.stack import docker_image as img
from loadkit.stack.admin import wallet_ready
from loadkit.stack.manifest import WalletInfo
from loadkit.stack.ports import free_port, port_open
from loadkit.stack.postgres import Postgres as _Postgres
from loadkit.stack.postgres import PostgresInfo, StopMode, find_bin_dir
from loadkit.stack.process import ManagedProcess
from loadkit.stack.tls import CERTS
from loadkit.stack.toxiproxy import ToxiproxyClient

if TYPE_CHECKING:
    from loadkit.stack.reference import ReferenceStack, StackOptions

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


class DockerBackend:
    """Components as containers of the local engine (see the module docstring)."""

    name: ClassVar[str] = "docker"
    python: ClassVar[str] = "python3"  # the image's interpreter, not this one

    def __init__(self, stack: ReferenceStack) -> None:
        self.stack = stack
        self._client: Any = None

    @property
    def client(self) -> Any:
        """The engine (connected on first use; :class:`~loadkit.stack.docker.DockerUnavailable`
        when it does not answer)."""
        if self._client is None:
            self._client = dk.connect()
        return self._client

    @classmethod
    def prepare(cls, opts: StackOptions) -> StackOptions:
        """Check the engine (exit 3 and nothing else when none answers), make sure the image
        exists (built here once per content hash); the options with that image."""
        client = dk.connect()
        image = opts.image or img.ensure_image(client)
        if not img.image_exists(client, img.role_image(image, "wallet")):
            raise EnvironmentProblem(f"docker image {image} not found (build it: docs/docker.md)")
        return replace(opts, image=image)

    def _name(self, component: str) -> str:
        return dk.container_name(self.stack.stack_dir, component)

    def _run(
        self,
        component: str,
        role: str,
        command: list[str],
        opts: StackOptions | None,
        *,
        user: str | None = None,
        **kw: Any,
    ) -> Any:
        """Create and start one component's container (host network, no restart policy: a
        crash stays a crash until a fault's revert starts it again). Only while the stack
        starts (``opts`` names the image): later, a container that is gone stays gone."""
        if opts is None or opts.image is None:
            raise EnvironmentProblem(
                f"{component}: container {self._name(component)} is gone; restart the stack"
            )
        image = img.role_image(opts.image, role)
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
                dk.LABEL_STACK: str(self.stack.stack_dir),
                dk.LABEL_COMPONENT: component,
                dk.LABEL_IMAGE: image,
            },
            **kw,
        )
        container.start()
        return container

    # -- the three kinds of component ---------------------------------------------------------

    def _secret_file(self) -> Path:
        """The superuser's password for the container's initdb: a file in a directory only its
        owner can enter (the file itself readable, so that the container's ``postgres`` user
        reads it through its read-only mount)."""
        return self.stack.stack_dir / "postgres-secret" / "password"

    def start_postgres(self, opts: StackOptions, logs: Path) -> str:
        m = self.stack.manifest
        port = free_port()
        bin_dir = find_bin_dir()
        password = secrets.token_urlsafe(24)  # scram-sha-256, as the process backend's
        m.postgres = PostgresInfo(
            port=port,
            data_dir=img.PG_DATA,
            bin_dir=str(bin_dir or ""),
            log=f"docker logs {self._name('postgres')}",
            os_user="postgres",
            process=None,
            password=password,
        )
        self.stack.save()
        secret = self._secret_file()
        secret.parent.mkdir(mode=0o700, exist_ok=True)
        secret.parent.chmod(0o700)
        secret.write_text(password + "\n")
        secret.chmod(0o644)
        command = [
            "loadkit-postgres",
            *("-p", str(port), "-c", "listen_addresses=127.0.0.1"),
            *("-c", "unix_socket_directories=", "-c", "max_connections=300"),
            *("-c", "log_min_messages=warning"),
        ]
        user = f"{img.PG_UID}:{img.PG_UID}"
        mount = {str(secret): {"bind": img.PG_PWFILE, "mode": "ro"}}
        self._run("postgres", "postgres", command, opts, user=user, shm_size="256m", volumes=mount)
        pg = self.postgres()
        assert pg is not None
        pg.start(timeout=opts.ready_timeout)
        _create_database(pg.dsn("postgres"), m.database)
        return pg.dsn(m.database)

    def start_toxiproxy(self, opts: StackOptions, port: int, logs: Path) -> None:
        command = ["toxiproxy-server", "-host", "127.0.0.1", "-port", str(port)]
        container = self._run("toxiproxy", "toxiproxy", command, opts)
        dk.wait_running(container)
        self.stack.manifest.toxiproxy = dk.process_info(container, "toxiproxy")
        self.stack.save()
        client = ToxiproxyClient(port=port, timeout=1.0)
        deadline = time.monotonic() + 20
        while not client.ping():
            container.reload()
            if container.status != "running" or time.monotonic() > deadline:
                raise ComponentFailed(
                    "toxiproxy", "not answering on its API", log_tail=dk.logs_tail(container)
                )
            time.sleep(0.05)

    def spawn_wallet(
        self, w: WalletInfo, argv: list[str], env: dict[str, str], opts: StackOptions | None
    ) -> None:
        """Start ``w``'s container: created the first time, started again after a crash."""
        container = _container(self.client, self._name(w.name))
        if container is None:
            certs = self.stack.stack_dir / CERTS
            # HTTPS: the certificate and key at the paths the command line names, read-only
            mounts = {str(certs): {"bind": str(certs), "mode": "ro"}} if w.ca else {}
            container = self._run(w.name, "wallet", argv, opts, environment=env, volumes=mounts)
        else:
            dk.settle(container)
            if container.status == "paused":
                container.unpause()
            elif container.status != "running":
                container.start()
        dk.wait_running(container)
        w.process = dk.process_info(container, w.name)
        self.stack.save()

    def wait_wallets_ready(self, wallets: Iterable[WalletInfo], timeout: float) -> None:
        for w in wallets:
            container = _container(self.client, self._name(w.name))
            deadline = time.monotonic() + timeout
            while not wallet_ready(w, timeout=1.0):
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

    def postgres(self) -> _Postgres | None:
        info = self.stack.manifest.postgres
        if info is None:
            return None
        pg = DockerPostgres.for_container(info, self._name("postgres"), self.client)
        pg.on_started = self.stack.record_postgres
        return pg

    def containers(self) -> dict[str, Any]:
        """component → its container, for every container of this stack."""
        return {
            str(c.labels.get(dk.LABEL_COMPONENT)): c
            for c in dk.stack_containers(self.client, self.stack.stack_dir)
        }

    def sync(self) -> None:
        """Record every running container's current main process in the manifest (after
        something outside loadkit restarted one)."""
        m = self.stack.manifest
        found = self.containers()
        for w in m.wallets:
            if w.name in found:
                w.process = dk.process_info(found[w.name], w.name) or w.process
        if "toxiproxy" in found:
            m.toxiproxy = dk.process_info(found["toxiproxy"], "toxiproxy") or m.toxiproxy
        if m.postgres is not None and "postgres" in found:
            info = dk.process_info(found["postgres"], "postgres")
            if info is not None:
                m.postgres.process = info
        self.stack.save()
        if "toxiproxy" in found and found["toxiproxy"].status == "running":
            self._restore_proxies()

    def _restore_proxies(self, timeout: float = 20.0) -> None:
        """Toxiproxy keeps its proxies in memory: a restarted container has none. Create the
        manifest's proxies again (toxics are gone; faults that put them there revert anyway)."""
        tp = self.stack.toxiproxy
        deadline = time.monotonic() + timeout
        while not tp.ping():
            if time.monotonic() > deadline:
                raise ComponentFailed("toxiproxy", f"not answering {timeout:g}s after a restart")
            time.sleep(0.05)
        present = tp.proxies()
        for p in self.stack.manifest.proxies:
            if p.name not in present:
                tp.create_proxy(p.name, listen=p.listen_port, upstream=p.upstream)

    def any_alive(self) -> bool:
        return any(c.status in ("running", "paused") for c in self.containers().values())

    def annotate_status(self, status: dict[str, Any]) -> None:
        """Each component's container and its state; a container that is not running makes
        its component neither running nor ready, whatever its old main process says."""
        found = self.containers()
        status["backend"] = "docker"
        for component in status["components"]:
            container = found.get(component["name"])
            component["container"] = container.name if container is not None else None
            component["state"] = container.status if container is not None else "missing"
            if container is not None and container.status != "running":
                component["running"] = component["ready"] = False
        status["healthy"] = all(c.get("ready", True) for c in status["components"])

    def stop(self) -> list[str]:
        """Remove every container of the stack (its database with it)."""
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
        shutil.rmtree(self._secret_file().parent, ignore_errors=True)
        left = list(self.containers())
        if left:
            raise ComponentFailed("stack", f"could not remove containers: {', '.join(left)}")
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


if TYPE_CHECKING:
    from loadkit.stack.backends import Backend

    _: type[Backend] = DockerBackend  # mypy checks the class against the protocol
