"""The hot-path HTTP client against real sockets: outcomes, retries, deadlines, keep-alive."""

from __future__ import annotations

import email.utils
import re
import socket
import threading
import time
from collections.abc import Iterator
from types import SimpleNamespace

import gevent
import pytest

from loadkit.load.client import (
    Action,
    Deadline,
    DeadlinePassed,
    Endpoint,
    HttpClient,
    KeyMaker,
    Target,
    retry_after_s,
)
from loadkit.load.recorder import REQUEST, Recorder
from loadkit.load.schedule import Piece
from loadkit.profile.model import Retries
from loadkit.profile.outcome import BUSY, CAUSES, OK, Cause, StatusTable
from tests.conftest import PlainService


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A server that accepts connections and reads, but never answers (a hung process)."""
    server = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    server.close()


def make_client(retries: Retries, events: list[dict[str, object]]) -> tuple[HttpClient, Recorder]:
    recorder = Recorder()

    def fire(**event: object) -> None:
        events.append(event)

    client = HttpClient(
        recorder=recorder,
        fire=fire,
        clock=time.perf_counter,
        retries=retries,
        run_end=time.perf_counter() + 60,
        new_key=KeyMaker(0),
    )
    return client, recorder


def action(timeout_s: float) -> Action:
    a = Action(timeout_s)
    a.begin(time.perf_counter(), Piece(0, "p", 0, 0.0, 1.0), SimpleNamespace(net=0, where=0))
    return a


def test_a_throttled_answer_is_retried_and_every_attempt_counted(
    plain_service: PlainService,
) -> None:
    events: list[dict[str, object]] = []
    client, recorder = make_client(Retries(attempts=3, backoff_s=0.01), events)
    target = Target(plain_service.url)
    ep = client_endpoint(recorder, "GET /throttle")
    a = action(2.0)
    before = plain_service.stats().get("GET /throttle", 0)
    gevent.spawn(client.call, a, ep, target, "/throttle").get()
    assert (a.status, a.outcome, CAUSES[a.cause]) == (429, BUSY, Cause.THROTTLED)
    assert plain_service.stats()["GET /throttle"] - before == 3
    assert [e["exception"] for e in events] == ["busy throttled (HTTP 429)"] * 3
    assert [e["name"] for e in events] == ["/throttle"] * 3
    cells = recorder.drain()["cells"]
    assert [c[5] for c in cells] == [[0, 0, 3, 0]]
    ok = action(2.0)
    healthz = client_endpoint(recorder, "GET /healthz")
    gevent.spawn(client.call, ok, healthz, target, "/healthz").get()
    assert (ok.status, ok.outcome, ok.body) == (200, OK, b'{"ok": true}')
    assert len(target._idle) == 1  # the keep-alive connection went back for the next request
    target.close()


def test_each_attempt_gets_the_whole_deadline(silent_port: int) -> None:
    events: list[dict[str, object]] = []
    client, recorder = make_client(Retries(attempts=3, backoff_s=0.0, max_backoff_s=0.0), events)
    a = action(0.3)
    start = time.perf_counter()
    target = Target(f"http://127.0.0.1:{silent_port}")
    gevent.spawn(client.call, a, client_endpoint(recorder, "GET /"), target, "/").get()
    took = time.perf_counter() - start
    assert (a.status, a.outcome, CAUSES[a.cause]) == (0, BUSY, Cause.TIMEOUT)
    assert len(events) == 3 and 0.85 <= took <= 3.0, took  # 3 × 0.3 s, not 0.3 s once


def test_a_deadline_restarts_its_full_period_every_time() -> None:
    deadline = Deadline(0.2)

    def passed(seconds: float) -> bool:
        deadline.arm()
        try:
            gevent.sleep(seconds)
        except DeadlinePassed as exc:
            assert exc.deadline is deadline
            return True
        finally:
            deadline.disarm()
        return False

    # a gevent.Timeout restarted after cancel() keeps only its remaining time: F, T, T, T
    assert [passed(0.15) for _ in range(4)] == [False] * 4
    assert passed(0.3) and passed(0.3) and not passed(0.15)


def test_a_refused_connection_is_busy_connection() -> None:
    port = socket.create_server(("127.0.0.1", 0))
    closed = port.getsockname()[1]
    port.close()
    events: list[dict[str, object]] = []
    client, recorder = make_client(Retries(), events)
    a = action(1.0)
    target = Target(f"http://127.0.0.1:{closed}")
    gevent.spawn(client.call, a, client_endpoint(recorder, "GET /"), target, "/").get()
    assert (a.outcome, CAUSES[a.cause]) == (BUSY, Cause.CONNECTION)
    assert events[0]["exception"] == "busy connection"


def test_request_heads() -> None:
    target = Target("http://127.0.0.1:8080")
    assert HttpClient.head("GET", target, "/v1/balance", "Authorization: Bearer t\r\n") == (
        b"GET /v1/balance HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: loadkit\r\n"
        b"Authorization: Bearer t\r\n\r\n"
    )
    assert HttpClient.head("POST", target, "/x", "", b'{"a":1}').endswith(
        b'Content-Type: application/json\r\nContent-Length: 7\r\n\r\n{"a":1}'
    )
    assert b"Content-Length: 0\r\n" in HttpClient.head("POST", target, "/x")


def test_retry_after_and_keys() -> None:
    assert retry_after_s("3") == 3.0
    future = email.utils.formatdate(time.time() + 30, usegmt=True)
    after = retry_after_s(future)
    assert after is not None and 28 <= after <= 31
    assert retry_after_s("soon") is None
    keys = KeyMaker(3)
    made = [keys() for _ in range(1000)]
    assert len(set(made)) == 1000
    assert all(re.fullmatch(r"[A-Za-z0-9._:-]{1,128}", k) for k in made)  # the wallet's rule
    assert KeyMaker(3)() != made[0]  # a new process, a new prefix


def client_endpoint(recorder: Recorder, label: str) -> Endpoint:
    method, path = label.split(" ", 1)
    return Endpoint(label, method, recorder.series("j", label, REQUEST), path, StatusTable())
