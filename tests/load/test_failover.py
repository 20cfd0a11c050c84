"""Client-side failover (``client.failover``) against real sockets: one instance of two is down.

Without failover the users of the dead instance see ``busy (connection)``; with it every action
is answered by the live one, the request that failed over carries the same bytes (the same
idempotency key), and the dead instance is skipped while it is ejected, then tried again.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import gevent
import pytest

from loadkit.load.client import Action, HttpClient, KeyMaker, Target, link
from loadkit.load.recorder import Recorder
from loadkit.load.runconfig import Target as RunTarget
from loadkit.profile.model import Failover, Retries
from loadkit.profile.outcome import BUSY, CAUSES, OK, Cause
from loadkit.stack.ports import free_port
from tests.conftest import PlainService
from tests.load.conftest import run_locust
from tests.load.test_client import action, client_endpoint


class Seen(BaseHTTPRequestHandler):
    """Answers 200 to everything and keeps each request's method, path, key and Host."""

    protocol_version = "HTTP/1.1"
    seen: list[tuple[str, str, str | None, str | None]]

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        key = self.headers.get("Idempotency-Key")
        self.seen.append((self.command, self.path, key, self.headers.get("Host")))
        data = json.dumps({"ok": True}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = _answer


@pytest.fixture
def live() -> Iterator[tuple[str, list[tuple[str, str, str | None, str | None]]]]:
    """A live instance: its URL and the requests it saw."""
    seen: list[tuple[str, str, str | None, str | None]] = []
    handler = type("Handler", (Seen,), {"seen": seen})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", seen
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture
def crashing() -> Iterator[tuple[str, list[bytes]]]:
    """An instance that reads each request and closes the connection without an answer (a
    process dying mid-request, or a proxy whose upstream is gone): its URL and what it read."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.1)
    read: list[bytes] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn = server.accept()[0]
            except OSError:
                continue
            with conn:
                conn.settimeout(2)
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                read.append(data)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}", read
    stop.set()
    thread.join()
    server.close()


def client_for(failover: Failover | None, retries: Retries | None = None) -> HttpClient:
    return HttpClient(
        recorder=Recorder(),
        fire=None,
        clock=time.perf_counter,
        retries=retries or Retries(),
        run_end=time.perf_counter() + 60,
        new_key=KeyMaker(0),
        failover=failover,
    )


OPEN: list[Target] = []


@pytest.fixture(autouse=True)
def _close_targets() -> Iterator[None]:
    yield
    while OPEN:
        OPEN.pop().close()


def ring(*urls: str) -> tuple[Target, ...]:
    targets = tuple(Target(url) for url in urls)
    link(targets)
    OPEN.extend(targets)
    return targets


def serve(client: HttpClient, users: tuple[Target, ...], n: int) -> list[Action]:
    """``n`` GET actions, one after the other, for users spread over ``users``."""
    ep = client_endpoint(client.recorder, "GET /x")
    done = []
    for i in range(n):
        a = action(2.0)
        gevent.spawn(client.call, a, ep, users[i % len(users)], "/x").get()
        done.append(a)
    return done


def request_counts(client: HttpClient) -> tuple[list[int], dict[str, int]]:
    """Request-level [ok, rejected, busy, …] and busy causes, summed over the recorder's cells."""
    total = [0, 0, 0, 0]
    causes: dict[str, int] = {}
    for cell in client.recorder.drain()["cells"]:
        total = [a + b for a, b in zip(total, cell[5], strict=True)]
        for index, count in enumerate(cell[6]):
            if count:
                causes[CAUSES[index]] = causes.get(CAUSES[index], 0) + count
    return total, causes


def test_without_failover_the_dead_instances_users_are_busy(
    live: tuple[str, list[tuple[str, str, str | None, str | None]]],
) -> None:
    url, seen = live
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens: refused
    actions = serve(client_for(None), ring(dead, url), 20)
    outcomes = [(a.outcome, CAUSES[a.cause] if a.outcome == BUSY else None) for a in actions]
    assert outcomes == [(BUSY, Cause.CONNECTION), (OK, None)] * 10
    assert len(seen) == 10


def test_with_failover_every_action_is_answered_and_the_dead_one_is_ejected(
    live: tuple[str, list[tuple[str, str, str | None, str | None]]],
) -> None:
    url, seen = live
    dead = f"http://127.0.0.1:{free_port()}"
    client = client_for(Failover(eject_s=30.0))
    targets = ring(dead, url)
    actions = serve(client, targets, 20)
    assert all(a.outcome == OK and a.status == 200 for a in actions)
    assert len(seen) == 20
    # one refused request, recorded as such; then the dead one was skipped while ejected
    counts, _ = request_counts(client)
    assert counts[:3] == [20, 0, 1], counts
    assert client.requests == 21
    assert targets[0].ejected_until > time.perf_counter() + 20
    assert targets[1].ejected_until == 0.0


def test_the_failed_over_request_is_the_same_request(
    live: tuple[str, list[tuple[str, str, str | None, str | None]]],
    crashing: tuple[str, list[bytes]],
) -> None:
    """Same idempotency key (with the client's own retries off), the live one's Host header —
    also for a prebuilt request."""
    url, seen = live
    down, read = crashing
    client = client_for(Failover(), Retries(attempts=1, reuse_idempotency_key=False))
    first, second = ring(down, url)
    ep = client_endpoint(client.recorder, "POST /pay")
    a = action(2.0)
    gevent.spawn(client.call, a, ep, first, "/pay", "", b'{"amount": 1}', "key-1").get()
    assert (a.outcome, a.status, a.key, a.superseded) == (OK, 200, "key-1", [])
    assert len(read) == 1 and b"\r\nIdempotency-Key: key-1\r\n" in read[0]
    assert seen == [("POST", "/pay", "key-1", second.authority)]

    first.ejected_until = 0.0  # try the crashing one again, now with a prebuilt request
    head = client.head("GET", first, "/static", "Idempotency-Key: key-2\r\n")
    b = action(2.0)
    gevent.spawn(client.call, b, ep, first, "", head=head).get()
    assert b.outcome == OK and len(read) == 2
    assert f"\r\nHost: {first.authority}\r\n".encode() in read[1]
    assert seen[1] == ("GET", "/static", "key-2", second.authority)
    counts, causes = request_counts(client)
    assert counts[:3] == [2, 0, 2] and causes == {Cause.CONNECTION: 2}, (counts, causes)


def test_an_ejection_ends_and_the_instance_is_tried_again(
    live: tuple[str, list[tuple[str, str, str | None, str | None]]],
    crashing: tuple[str, list[bytes]],
) -> None:
    url, seen = live
    down, read = crashing
    client = client_for(Failover(eject_s=0.5))
    targets = ring(down, url)
    assert all(a.outcome == OK for a in serve(client, targets, 10))
    assert len(read) == 1  # ejected after its first failure
    time.sleep(0.6)
    assert all(a.outcome == OK for a in serve(client, targets, 10))
    assert len(read) == 2 and len(seen) == 20  # tried again once the ejection ended


def test_when_every_instance_is_down_the_clients_retries_decide(
    crashing: tuple[str, list[bytes]],
) -> None:
    down, read = crashing
    dead = f"http://127.0.0.1:{free_port()}"
    client = client_for(Failover(), Retries(attempts=2, backoff_s=0.01))
    (a,) = serve(client, ring(down, dead), 1)
    assert (a.outcome, CAUSES[a.cause]) == (BUSY, Cause.CONNECTION)
    # crashing → failover → refused; the retry (both ejected) goes where the last attempt went
    assert client.requests == 3 and len(read) == 1


PROFILE = """
name: failover
users: {accounts: 10}
stages: [{name: steady, duration: 3s, rate: 20/s}]
journeys:
  - name: health
    http:
      - path: /healthz
client:
  timeout: 2s
  failover: true
"""


def test_a_run_with_one_of_two_targets_down(plain_service: PlainService, tmp_path: Path) -> None:
    """``--target DEAD,LIVE`` with ``failover: true``: every action answered by the live one."""
    before = plain_service.stats().get("GET /healthz", 0)
    dead = f"http://127.0.0.1:{free_port()}"
    run = run_locust(tmp_path, PROFILE, RunTarget(urls=(dead, plain_service.url)), drain_s=1)
    assert run.codes == {"locust": 0}, run.logs
    actions = run.timeline.totals("action")
    assert actions.answered == 60 and actions.count("ok") == 60, actions.n
    requests = run.timeline.totals("request")
    # the dead one was tried once, then skipped for 5 s (the whole run)
    assert requests.count("busy") == requests.busy.get("connection", 0) == 1, requests.n
    assert plain_service.stats()["GET /healthz"] - before == 60
