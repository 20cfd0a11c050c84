"""The test hosts of tests/netns.py: reachable, isolated, distinct, always deleted."""

from __future__ import annotations

import ipaddress
import subprocess
import sys

import httpx
import pytest

from tests.netns import RANGE, TestHost, available, run, test_host, wait_port


@pytest.fixture(autouse=True)
def _needs_namespaces() -> None:
    reason = available()
    if reason is not None:
        pytest.skip(reason)


def _ip(*args: str) -> str:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=True).stdout


def _connect_from(host: TestHost, address: str) -> str:
    """What a TCP connection from inside ``host`` to ``address``:1 ends in (its stderr)."""
    code = "import socket, sys; socket.create_connection((sys.argv[1], 1), 2)"
    proc = run(host, [sys.executable, "-c", code, address], stderr=subprocess.PIPE, text=True)
    _, err = proc.communicate(timeout=10)
    assert proc.returncode != 0
    return str(err)


def test_a_host_serves_from_its_own_address_and_is_gone_afterwards() -> None:
    with test_host() as host:
        assert ipaddress.ip_address(host.address) in RANGE
        net = ipaddress.ip_network(f"{host.gateway}/30", strict=False)
        assert ipaddress.ip_address(host.address) in net and net.subnet_of(RANGE)  # type: ignore[arg-type]
        server = run(
            host,
            [sys.executable, "-m", "http.server", "18099", "--bind", host.address],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_port(host, 18099, server)
        assert httpx.get(f"http://{host.address}:18099/", timeout=5).status_code == 200
        # nothing inside can go beyond the pair: the /30 is its only route
        routes = _ip("-n", host.name, "route", "show").splitlines()
        assert len(routes) == 1 and routes[0].startswith(f"{net} dev eth0 "), routes
        name, veth = host.name, host.veth
    assert server.poll() is not None  # stopped with the host
    assert name not in _ip("netns", "list")
    assert veth not in _ip("-br", "link")
    assert host.address not in _ip("-o", "addr")


def test_hosts_at_once_do_not_collide_and_a_failure_still_cleans_up() -> None:
    names: list[str] = []
    with pytest.raises(RuntimeError, match="boom"), test_host() as a, test_host() as b:
        names += [a.name, b.name]
        assert a.name != b.name and a.veth != b.veth
        assert a.address != b.address and a.gateway != b.gateway
        # a host reaches its own gateway (refused: nothing listens), not the other host
        assert "ConnectionRefusedError" in _connect_from(a, a.gateway)
        assert "Network is unreachable" in _connect_from(a, b.address)
        raise RuntimeError("boom")
    listed = _ip("netns", "list")
    assert not [n for n in names if n in listed]


def test_the_host_of_a_killed_process_is_swept_by_the_next_one() -> None:
    stale = "lkt9999999n0"  # pid 9999999 is beyond pid_max: never alive
    subprocess.run(["ip", "netns", "add", stale], check=True)
    try:
        with test_host():
            assert stale not in _ip("netns", "list")
    finally:
        subprocess.run(["ip", "netns", "del", stale], capture_output=True, check=False)
