"""Network faults through the stack's real Toxiproxy, on the client ↔ wallet links: the effect a
user sees while the toxic is on, and no toxic (nor a disabled proxy) left after."""

from __future__ import annotations

import socket
import statistics
import time
from urllib.parse import urlsplit

import httpx
import pytest

from loadkit.chaos import make_fault
from loadkit.chaos.faults.base import ChaosEnv


def _client_url(env: ChaosEnv, n: int = 1) -> str:
    return env.wallet(f"wallet-{n}").info.client_url


def _median_s(url: str, n: int = 5) -> float:
    samples = []
    with httpx.Client(timeout=10) as http:
        for _ in range(n):
            started = time.perf_counter()
            assert http.get(url).status_code == 200
            samples.append(time.perf_counter() - started)
    return statistics.median(samples)


@pytest.mark.parametrize("stream", ["downstream", "upstream"])
def test_latency_adds_about_its_amount(env: ChaosEnv, stream: str) -> None:
    url = f"{_client_url(env)}/healthz"
    base = _median_s(url)
    with make_fault(env, "network.latency", "client-wallet-1", latency="300ms", stream=stream):
        (toxic,) = env.toxiproxy.toxics("client-wallet-1")
        assert (toxic.type, toxic.stream, toxic.attributes["latency"]) == ("latency", stream, 300)
        slowed = _median_s(url, 3)
    assert 0.28 <= slowed - base <= 0.40, (base, slowed)
    assert env.toxiproxy.toxics("client-wallet-1") == []
    assert _median_s(url) < base + 0.05


def test_bandwidth_slows_a_large_answer(env: ChaosEnv) -> None:
    url = f"{_client_url(env)}/metrics"
    size = len(httpx.get(url).content)
    with make_fault(env, "network.bandwidth", "client-wallet-1", rate="64kbps"):
        took = _median_s(url, 1)
    assert took >= size / 8000 * 0.7, (size, took)  # 64 kbps = 8 KB/s
    assert _median_s(url, 1) < 0.5


def test_timeout_toxic_stops_all_data(env: ChaosEnv) -> None:
    with make_fault(env, "network.timeout", "client-wallet-1"), pytest.raises(httpx.ReadTimeout):
        httpx.get(f"{_client_url(env)}/healthz", timeout=0.5)
    assert httpx.get(f"{_client_url(env)}/healthz", timeout=2).status_code == 200


def test_reset_peer_resets_connections(env: ChaosEnv) -> None:
    with (
        make_fault(env, "network.reset-peer", "client-wallet-2"),
        pytest.raises((httpx.ReadError, httpx.RemoteProtocolError, httpx.ConnectError)),
    ):
        httpx.get(f"{_client_url(env, 2)}/healthz", timeout=2)
    assert httpx.get(f"{_client_url(env, 2)}/healthz", timeout=2).status_code == 200


def _seconds_to_close(url: str) -> float:
    """An HTTP/1.0 request (the server closes after answering): seconds until the close."""
    parts = urlsplit(url)
    assert parts.hostname is not None and parts.port is not None
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        started = time.perf_counter()
        sock.sendall(b"GET /healthz HTTP/1.0\r\nHost: x\r\n\r\n")
        while sock.recv(4096):
            pass
        return time.perf_counter() - started


def test_slow_close_delays_the_close(env: ChaosEnv) -> None:
    url = _client_url(env, 2)
    with make_fault(env, "network.slow-close", "client-wallet-2", delay="700ms"):
        slowed = _seconds_to_close(url)
    assert slowed >= 0.65, slowed
    assert _seconds_to_close(url) < 0.3


def test_slicer_delivers_answers_in_delayed_slices(env: ChaosEnv) -> None:
    url = f"{_client_url(env, 2)}/healthz"
    base = _median_s(url)
    with make_fault(
        env,
        "network.slicer",
        "client-wallet-2",
        average_size=16,
        size_variation=0,
        delay="30ms",
    ):
        sliced = _median_s(url, 3)
    # ~170 bytes of answer in 16-byte slices, 30 ms apart
    assert sliced - base >= 0.2, (base, sliced)


def test_limit_data_cuts_answers_short(env: ChaosEnv) -> None:
    with (
        make_fault(env, "network.limit-data", "client-wallet-1", bytes=40),
        pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)),
    ):
        httpx.get(f"{_client_url(env)}/healthz", timeout=2)
    assert httpx.get(f"{_client_url(env)}/healthz", timeout=2).status_code == 200


def test_proxy_down_refuses_connections_then_comes_back(env: ChaosEnv) -> None:
    with make_fault(env, "network.down", "client-wallet-1"):
        assert not env.toxiproxy.proxies()["client-wallet-1"].enabled
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{_client_url(env)}/healthz", timeout=2)
    assert env.toxiproxy.proxies()["client-wallet-1"].enabled
    assert httpx.get(f"{_client_url(env)}/healthz", timeout=2).status_code == 200


def test_toxicity_is_the_share_of_connections_affected(env: ChaosEnv) -> None:
    with make_fault(
        env, "network.latency", "wallet-2-postgres", latency="1s", toxicity="0%", stream="upstream"
    ):
        (toxic,) = env.toxiproxy.toxics("wallet-2-postgres")
        assert toxic.toxicity == 0.0
        assert _median_s(f"{env.wallet('wallet-2').info.url}/readyz", 3) < 0.5
