"""The embedded PostgreSQL server: start, crash, crash recovery, backend kill, stop modes."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from loadkit.errors import ComponentFailed, EnvironmentProblem
from loadkit.stack.ports import free_port
from loadkit.stack.postgres import PG_OS_USER, Postgres, PostgresInfo, StopMode


@pytest.fixture
def own_pg(scratch_root: Path) -> Iterator[Postgres]:
    """A server of this test's own, free to be crashed."""
    server = Postgres(scratch_root / f"pg-{free_port()}", port=free_port())
    server.start()
    yield server
    server.destroy()


def test_committed_rows_survive_a_postmaster_crash(own_pg: Postgres) -> None:
    own_pg.psql("CREATE TABLE t (v int); INSERT INTO t VALUES (1), (2), (3)")
    pid = own_pg.process.pid if own_pg.process else None
    own_pg.crash()
    assert not own_pg.alive() and not own_pg.ready()
    assert (pid is not None and not psutil.pid_exists(pid)) or psutil.Process(
        pid
    ).status() == "zombie"
    own_pg.start()
    assert own_pg.psql("SELECT sum(v) FROM t").strip() == "6"
    assert "automatic recovery in progress" in own_pg.log_tail(200)


def test_killed_backend_forces_recovery_but_postmaster_stays(own_pg: Postgres) -> None:
    import subprocess

    sleeper = subprocess.Popen(
        [
            str(own_pg.bin_dir / "psql"),
            "-h",
            "127.0.0.1",
            "-p",
            str(own_pg.port),
            "-U",
            "loadkit",
            "-d",
            "postgres",
            "-c",
            "SELECT pg_sleep(30)",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=own_pg.client_env(),
    )
    try:
        own_pg.process.wait_ready(  # type: ignore[union-attr]
            lambda: own_pg.kill_backend() is not None, timeout=10, what="running a backend"
        )
        assert sleeper.wait(timeout=10) != 0, "the client's backend was killed"
        own_pg.process.wait_ready(own_pg.ready, timeout=20, what="recovered")  # type: ignore[union-attr]
        assert own_pg.alive()
        assert "terminated by signal 9" in own_pg.log_tail(200)
    finally:
        sleeper.kill()


@pytest.mark.parametrize("mode", list(StopMode))
def test_stop_modes_then_restart(own_pg: Postgres, mode: StopMode) -> None:
    own_pg.stop(mode)
    assert not own_pg.alive()
    own_pg.start()
    assert own_pg.ready()


def test_runs_as_unprivileged_user_when_root(own_pg: Postgres) -> None:
    assert own_pg.process is not None
    user = psutil.Process(own_pg.process.pid).username()
    if os.geteuid() == 0:
        assert user == PG_OS_USER
    else:
        assert user == psutil.Process().username()


def test_found_again_from_manifest_info(own_pg: Postgres) -> None:
    again = Postgres.from_info(PostgresInfo.from_dict(own_pg.info().to_dict()))
    assert again.alive() and again.ready()
    assert own_pg.password and again.password == own_pg.password
    assert again.dsn("x") == f"postgresql://loadkit:{own_pg.password}@127.0.0.1:{own_pg.port}/x"
    assert again.dsn("x", user="app") == f"postgresql://app@127.0.0.1:{own_pg.port}/x"
    assert again.psql("SELECT 1").strip() == "1"


def test_port_in_use_fails_with_log_tail(own_pg: Postgres, scratch_root: Path) -> None:
    clash = Postgres(scratch_root / f"pg-clash-{free_port()}", port=own_pg.port)
    try:
        with pytest.raises(ComponentFailed) as err:
            clash.start(timeout=20)
        assert "postgres failed" in str(err.value)
        assert "already in use" in str(err.value)
    finally:
        clash.destroy()


def test_missing_binaries_are_reported(tmp_path: Path) -> None:
    with pytest.raises(EnvironmentProblem, match="PostgreSQL binaries not found"):
        Postgres(tmp_path / "pg", port=free_port(), bin_dir=tmp_path)


def test_a_stale_manifest_finds_the_running_postmaster(own_pg: Postgres) -> None:
    stale = own_pg.info()
    own_pg.crash()
    own_pg.start()  # started again by someone else: the old info names a dead pid
    found = Postgres.from_info(stale)
    assert found.process is not None and own_pg.process is not None
    assert found.process.pid == own_pg.process.pid and found.alive()


def _psql_as(user: str, pg: Postgres, role: str, password: str | None = None) -> str:
    """``psql -c 'SELECT 1'`` run as the OS user ``user`` (no supplementary groups); its stderr
    ('' on success)."""
    import pwd
    import subprocess

    account = pwd.getpwnam(user)
    env = {"PATH": "/usr/bin:/bin", "HOME": "/"}
    if password is not None:
        env["PGPASSWORD"] = password
    done = subprocess.run(
        [
            str(pg.bin_dir / "psql"),
            *("-X", "-w", "-h", "127.0.0.1", "-p", str(pg.port), "-U", role, "-d", "postgres"),
            *("-c", "SELECT 1"),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
        check=False,
        user=account.pw_uid,
        group=account.pw_gid,
        extra_groups=[],
        cwd="/",
    )
    return "" if done.returncode == 0 else done.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="switching OS users needs root")
def test_a_local_user_without_the_password_cannot_connect(own_pg: Postgres) -> None:
    """The cluster used to run with --auth=trust: `nobody` got in as the superuser."""
    assert own_pg.password
    for role in ("loadkit", "postgres", "nobody"):
        err = _psql_as("nobody", own_pg, role)
        assert "password" in err, err  # fe_sendauth: no password supplied
    err = _psql_as("nobody", own_pg, "loadkit", password="guess")
    assert "password authentication failed" in err, err
    assert _psql_as("nobody", own_pg, "loadkit", password=own_pg.password) == ""
    own_pg.create_role("app_t", "app-secret")
    assert _psql_as("nobody", own_pg, "app_t", password="app-secret") == ""
    hba = own_pg.psql("SELECT DISTINCT auth_method FROM pg_hba_file_rules").split()
    assert hba == ["scram-sha-256"]
    assert not (own_pg.data_dir.parent / f".{own_pg.data_dir.name}.pw").exists()


def test_role_names_are_checked(own_pg: Postgres) -> None:
    for bad in ("loadkit", "Robert'); DROP TABLE x;--", "a b", ""):
        with pytest.raises(ValueError, match="not a role name"):
            own_pg.create_role(bad, "x")
