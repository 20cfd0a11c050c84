"""The Toxiproxy server and client adapter, against a real toxiproxy-server and PostgreSQL."""

from __future__ import annotations

import socket
import statistics
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from loadkit.errors import ConfigError, EnvironmentProblem
from loadkit.stack.ports import free_port
from loadkit.stack.postgres import Postgres
from loadkit.stack.toxiproxy import ToxiproxyClient, find_server_binary, start_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ToxiproxyClient]:
    port = free_port()
    proc = start_server(port, tmp_path_factory.mktemp("toxiproxy") / "toxiproxy.log")
    yield ToxiproxyClient(port=port)
    proc.terminate(timeout=5)


@pytest.fixture
def pg_proxy(server: ToxiproxyClient, pg: Postgres) -> Iterator[tuple[str, int]]:
    name, port = f"pg-{free_port()}", free_port()
    server.create_proxy(name, listen=port, upstream=pg.port)
    yield name, port
    server.reset()


def _query_ms(pg: Postgres, port: int, n: int = 5) -> float:
    """Median wall time of a one-statement psql session through ``port``."""
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        subprocess.run(
            [
                str(pg.bin_dir / "psql"),
                "-X",
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
                "-U",
                "loadkit",
                "-d",
                "postgres",
                "-c",
                "SELECT 1",
            ],
            check=True,
            capture_output=True,
            timeout=30,
            env=pg.client_env(),
        )
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def test_latency_toxic_adds_latency_and_is_removed(
    server: ToxiproxyClient, pg: Postgres, pg_proxy: tuple[str, int]
) -> None:
    name, port = pg_proxy
    base = _query_ms(pg, port)
    with server.toxic(name, "latency", attributes={"latency": 100}) as toxic:
        assert [t.name for t in server.toxics(name)] == [toxic]
        slowed = _query_ms(pg, port)
    after = _query_ms(pg, port)
    # a psql session makes several round trips (startup, auth, query, terminate): each waits 100 ms
    assert slowed - base >= 200, (base, slowed)
    assert after - base < 50, (base, after)
    assert server.toxics(name) == []


def test_toxic_removed_when_the_block_raises(
    server: ToxiproxyClient, pg_proxy: tuple[str, int]
) -> None:
    name, _ = pg_proxy
    with pytest.raises(RuntimeError), server.toxic(name, "timeout", attributes={"timeout": 0}):
        raise RuntimeError("fault body failed")
    assert server.toxics(name) == []
    assert not server.remove_toxic(name, "timeout_downstream"), (
        "second removal reports nothing to do"
    )


def test_disabled_proxy_refuses_connections(
    server: ToxiproxyClient, pg_proxy: tuple[str, int]
) -> None:
    name, port = pg_proxy
    server.set_enabled(name, False)
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    server.set_enabled(name, True)
    socket.create_connection(("127.0.0.1", port), timeout=1).close()


def test_unknown_proxy_and_toxic_are_config_errors(
    server: ToxiproxyClient, pg_proxy: tuple[str, int]
) -> None:
    name, _ = pg_proxy
    with pytest.raises(ConfigError, match=rf"no proxy named 'nope' \(known: .*{name}"):
        server.add_toxic("nope", "latency")
    with pytest.raises(ConfigError, match="unknown toxic type 'lag'"):
        server.add_toxic(name, "lag")
    with pytest.raises(ConfigError, match="proxy already exists"):
        server.create_proxy(name, listen=free_port(), upstream=1)


def test_every_api_call_has_a_timeout() -> None:
    """A server that accepts but never answers must not hang loadkit."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        client = ToxiproxyClient(port=silent.getsockname()[1], timeout=0.3)
        t0 = time.monotonic()
        with pytest.raises(EnvironmentProblem, match="did not answer"):
            client.proxies()
        assert time.monotonic() - t0 < 3
        assert not client.ping()


def test_two_clients_two_servers(server: ToxiproxyClient, tmp_path: Path) -> None:
    """toxiproxy-python keeps one address per process; the adapter keeps one per client."""
    port = free_port()
    other_proc = start_server(port, tmp_path / "other.log")
    try:
        other = ToxiproxyClient(port=port)
        other.create_proxy("only-on-other", listen=free_port(), upstream=1)
        assert "only-on-other" in other.proxies()
        assert "only-on-other" not in server.proxies()
    finally:
        other_proc.terminate(timeout=5)


def test_server_binary_override(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fake = tmp_path / "my-toxiproxy"
    monkeypatch.setenv("LOADKIT_TOXIPROXY", str(fake))
    assert find_server_binary() == fake


def test_server_on_a_taken_port_is_refused(tmp_path: Path, server: ToxiproxyClient) -> None:
    from loadkit.errors import ComponentFailed

    with pytest.raises(ComponentFailed) as err:
        start_server(server.port, tmp_path / "clash.log")  # port taken by the module's server
    assert "toxiproxy failed" in str(err.value)
    assert "already in use" in str(err.value)
