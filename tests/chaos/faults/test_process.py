"""Process faults on real wallet instances: the effect while injected, and the revert."""

from __future__ import annotations

import contextlib
import threading
import time

import httpx
import pytest

from loadkit.chaos import make_fault
from loadkit.chaos.faults.base import ChaosEnv
from loadkit.stack.reference import ReferenceStack


def _pid(env: ChaosEnv, name: str) -> int:
    info = env.wallet(name).info.process
    assert info is not None
    return info.pid


def test_crash_refuses_connections_then_restarts_and_serves(env: ChaosEnv) -> None:
    w = env.wallet("wallet-1")
    old = _pid(env, "wallet-1")
    with make_fault(env, "process.crash", "wallet-1") as fault:
        assert fault.state["killed"] == ["wallet-1"]
        assert fault.state["processes"][0]["process"]["pid"] == old, "journaled before acting"
        with pytest.raises(httpx.ConnectError):  # connection refused: nothing listens
            httpx.get(f"{w.info.url}/healthz", timeout=2)
    assert w.ready()
    again = ReferenceStack.attach(env.stack.stack_dir).wallet("wallet-1")
    assert again.info.process and again.info.process.pid not in (old, None)
    assert httpx.get(f"{again.info.client_url}/readyz", timeout=5).status_code == 200


def test_hang_times_out_then_answers_again(env: ChaosEnv) -> None:
    w = env.wallet("wallet-2")
    pid = _pid(env, "wallet-2")
    with make_fault(env, "process.hang", "wallet-2"):
        assert w.process and w.process.stopped()
        with pytest.raises(httpx.ReadTimeout):
            httpx.get(f"{w.info.url}/healthz", timeout=0.5)
    assert w.process and not w.process.stopped()
    assert _pid(env, "wallet-2") == pid, "the same process, resumed"
    assert httpx.get(f"{w.info.url}/healthz", timeout=5).status_code == 200


def test_graceful_stop_then_started_again(env: ChaosEnv) -> None:
    w = env.wallet("wallet-2")
    with make_fault(env, "process.stop", "wallet-2", grace="5s"):
        assert not w.alive()
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{w.info.url}/healthz", timeout=2)
    assert w.ready()


def test_rolling_restart_keeps_one_instance_serving(env: ChaosEnv) -> None:
    before = {name: _pid(env, name) for name in ("wallet-1", "wallet-2")}
    urls = [w.info.url for w in env.stack.wallets]
    samples: list[int] = []  # instances answering, sampled while the restart runs
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            up = 0
            for url in urls:
                with contextlib.suppress(httpx.HTTPError):
                    up += httpx.get(f"{url}/healthz", timeout=0.5).status_code == 200
            samples.append(up)
            time.sleep(0.02)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        with make_fault(env, "process.rolling-restart", interval="200ms") as fault:
            assert fault.state["restarted"] == ["wallet-1", "wallet-2"]
    finally:
        done.set()
        sampler.join()
    after = {name: _pid(env, name) for name in ("wallet-1", "wallet-2")}
    assert all(after[n] != before[n] for n in before), (before, after)
    assert min(samples) >= 1, "never both instances down at once"
    assert 1 in samples, "each instance was down for a while"
    assert all(w.ready() for w in env.stack.wallets)
