"""The hot-path client over HTTPS, against a real TLS server on a test host in a network
namespace (tests/netns.py): verification, SNI, a wrong CA, mTLS, connection and session reuse;
and one Locust run over HTTPS with a worker, on loopback."""

from __future__ import annotations

import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import gevent
import httpx
import pytest
import trustme

from loadkit.load.client import (
    MAX_HANDSHAKES,
    WAITING_PER_HANDSHAKE,
    Action,
    HttpClient,
    KeyMaker,
    Target,
    TlsTarget,
    make_target,
)
from loadkit.load.recorder import Recorder
from loadkit.load.runconfig import Target as RunTarget
from loadkit.load.tls import Tls
from loadkit.profile.model import Retries
from loadkit.profile.outcome import BUSY, CAUSES, DETAILS, NO_DETAIL, OK, TLS_FAILED, Cause
from loadkit.rundir.timeline import Bucket
from loadkit.stack.ports import free_port, port_open
from tests.conftest import ROOT
from tests.load.conftest import LocustRun, run_locust
from tests.load.test_client import action, client_endpoint
from tests.netns import SERVER_NAME, TlsFiles, TlsHost, issue, wait_port

PORT = 8443


@dataclass
class TlsService:
    """The plain test service behind TLS: its URL, and how to read its counters."""

    url: str
    context: ssl.SSLContext  # trusts its CA (and presents a client certificate when needed)

    def stats(self) -> dict[str, int]:
        return dict(httpx.get(f"{self.url}/stats", verify=self.context, timeout=5).json())

    def connections(self) -> dict[str, int]:
        return dict(httpx.get(f"{self.url}/connections", verify=self.context, timeout=5).json())


def _service_context(ca: Path, client: TlsFiles | None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(ca))
    if client is not None:
        context.load_cert_chain(str(client.cert), str(client.key))
    return context


@pytest.fixture
def client_files(tls_ca: trustme.CA, tmp_path: Path) -> TlsFiles:
    """A client certificate from the same CA as the server's."""
    return issue(tls_ca, tmp_path / "client", "loadkit-client", stem="client")


@pytest.fixture
def start_service(tls_host: TlsHost, client_files: TlsFiles) -> Callable[..., TlsService]:
    """Starts the plain service on the test host, TLS on :data:`PORT` (with ``mtls``: client
    certificates required)."""

    def start(*, mtls: bool = False) -> TlsService:
        host, server = tls_host.host, tls_host.server
        argv = [sys.executable, "-m", "tests.load.plain_service", str(PORT)]
        argv += ["--bind", host.address, "--cert", str(server.cert), "--key", str(server.key)]
        if mtls:
            argv += ["--client-ca", str(server.ca)]
        proc = host.run(argv, cwd=ROOT, stdout=subprocess.DEVNULL)
        wait_port(host, PORT, proc)
        context = _service_context(server.ca, client_files if mtls else None)
        return TlsService(f"https://{host.address}:{PORT}", context)

    return start


def _client(retries: int = 1) -> tuple[HttpClient, list[str | None]]:
    failures: list[str | None] = []

    def fire(**event: object) -> None:
        failures.append(event["exception"])  # type: ignore[arg-type]

    client = HttpClient(
        recorder=Recorder(),
        fire=fire,
        clock=time.perf_counter,
        retries=Retries(attempts=retries, backoff_s=0.01),
        run_end=time.perf_counter() + 60,
        new_key=KeyMaker(0),
    )
    return client, failures


def _send(client: HttpClient, target: Target, n: int, senders: int = 4) -> list[Action]:
    """``n`` GET /healthz from ``senders`` concurrent greenlets; their actions."""
    ep = client_endpoint(client.recorder, "GET /healthz")
    done: list[Action] = []

    def sender(count: int) -> None:
        for _ in range(count):
            a = action(5.0)
            client.call(a, ep, target, "/healthz")
            done.append(a)

    gevent.joinall([gevent.spawn(sender, n // senders) for _ in range(senders)], raise_error=True)
    target.close()
    return done


def _results(actions: list[Action]) -> set[tuple[int, str | None, str | None]]:
    return {
        (
            a.outcome,
            CAUSES[a.cause] if a.cause >= 0 else None,
            DETAILS[a.detail] if a.outcome == BUSY and a.detail != NO_DETAIL else None,
        )
        for a in actions
    }


def _details(client: HttpClient) -> tuple[int, int, int]:
    """Request-level busy, busy connection and ``tls`` details in the recorder's cells."""
    busy = connection = tls = 0
    for cell in client.recorder.drain()["cells"]:
        busy += cell[5][BUSY]
        connection += cell[6][CAUSES.index(Cause.CONNECTION)]
        tls += cell[9][TLS_FAILED] if cell[9] else 0
    return busy, connection, tls


def test_verified_https_keeps_its_connections_and_resumes_sessions(
    start_service: Callable[..., TlsService], tls_host: TlsHost
) -> None:
    service = start_service()
    before = service.connections()
    client, failures = _client()
    target = make_target(service.url, Tls(ca=str(tls_host.server.ca)))
    assert isinstance(target, TlsTarget) and target.server_name == tls_host.host.address
    actions = _send(client, target, 200)
    assert _results(actions) == {(OK, None, None)} and failures == [None] * 200
    assert service.stats()["GET /healthz"] == 200
    first = service.connections()
    handshakes = first["handshakes"] - before["handshakes"]
    assert 1 <= handshakes <= 4 + 2, first  # one per sender, + stats() and connections()
    # the idle connections were closed (target.close): new ones resume the TLS session
    _send(client, target, 40)
    after = service.connections()
    assert after["handshakes"] - first["handshakes"] <= 4 + 1
    assert after["resumed"] - first["resumed"] >= 1, after


def test_a_burst_has_a_few_handshakes_in_flight_not_one_per_request(
    start_service: Callable[..., TlsService], tls_host: TlsHost, monkeypatch: pytest.MonkeyPatch
) -> None:
    """64 requests at once on a new target: a few handshakes at a time (MAX_HANDSHAKES, one
    more per 16 waiting), the other requests take connections given back or the next slot;
    no slot or waiter is left behind."""
    in_flight = [0, 0]  # now, most
    handshake = TlsTarget._handshake

    def counted(self: TlsTarget) -> object:
        in_flight[0] += 1
        in_flight[1] = max(in_flight)
        try:
            return handshake(self)
        finally:
            in_flight[0] -= 1

    monkeypatch.setattr(TlsTarget, "_handshake", counted)
    service = start_service()
    client, _ = _client()
    target = make_target(service.url, Tls(ca=str(tls_host.server.ca)))
    assert isinstance(target, TlsTarget)
    for _ in range(3):
        assert _results(_send(client, target, 64, senders=64)) == {(OK, None, None)}
        assert target._opening == 0 and not target._waiting
    assert 1 <= in_flight[1] <= MAX_HANDSHAKES + 64 // WAITING_PER_HANDSHAKE, in_flight
    # a request whose deadline passes while it waits: a timeout, and nothing leaks
    ep = client_endpoint(client.recorder, "GET /slow")
    waiting = [action(0.2) for _ in range(40)]
    greenlets = [gevent.spawn(client.call, a, ep, target, "/slow") for a in waiting]
    gevent.joinall(greenlets, raise_error=True)
    outcomes = {(a.outcome, CAUSES[a.cause] if a.cause >= 0 else None) for a in waiting}
    assert outcomes == {(BUSY, Cause.TIMEOUT)}  # /slow answers in 300 ms
    assert target._opening == 0 and not target._waiting
    target.close()


def test_sni_and_the_name_checked_come_from_server_name(
    start_service: Callable[..., TlsService], tls_host: TlsHost
) -> None:
    service = start_service()
    ca = str(tls_host.server.ca)
    client, _ = _client()
    named = make_target(service.url, Tls(ca=ca, server_name=SERVER_NAME))
    assert _results(_send(client, named, 8)) == {(OK, None, None)}
    other = make_target(service.url, Tls(ca=ca, server_name="other.test.internal"))
    assert _results(_send(client, other, 8)) == {(BUSY, Cause.CONNECTION, "tls")}


def test_a_wrong_ca_makes_every_answer_busy_connection_tls(
    start_service: Callable[..., TlsService], tmp_path: Path
) -> None:
    service = start_service()
    stranger = issue(trustme.CA(), tmp_path / "stranger", "loadkit-client", stem="client")
    client, failures = _client(retries=2)
    target = make_target(service.url, Tls(ca=str(stranger.ca)))
    actions = _send(client, target, 40)
    assert _results(actions) == {(BUSY, Cause.CONNECTION, "tls")}
    assert client.requests == 80  # every attempt failed the same way, nothing crashed
    assert failures == ["busy connection (tls)"] * 80
    assert _details(client) == (80, 80, 80)
    assert service.stats().get("GET /healthz", 0) == 0  # not one request got through
    assert service.connections()["failed"] >= 80
    # the same certificate with verification off: answered (reports must flag it)
    insecure = make_target(service.url, Tls(verify=False))
    assert _results(_send(client, insecure, 8)) == {(OK, None, None)}


def test_mtls_needs_the_client_certificate(
    start_service: Callable[..., TlsService], tls_host: TlsHost, client_files: TlsFiles
) -> None:
    service = start_service(mtls=True)
    ca = str(tls_host.server.ca)
    client, _ = _client()
    with_cert = Tls(ca=ca, cert=str(client_files.cert), key=str(client_files.key))
    assert _results(_send(client, make_target(service.url, with_cert), 40)) == {(OK, None, None)}
    assert _details(client) == (0, 0, 0)
    without = make_target(service.url, Tls(ca=ca))
    actions = _send(client, without, 40)
    # TLS 1.3: the client's handshake ends before the server refuses; the refusal (an alert)
    # comes with the first answer, and is still a TLS failure
    assert _results(actions) == {(BUSY, Cause.CONNECTION, "tls")}
    assert _details(client) == (40, 40, 40)
    assert service.stats()["GET /healthz"] == 40


def test_http_urls_stay_plain_targets() -> None:
    target = make_target("http://127.0.0.1:8080", Tls(ca="/nowhere.pem"))
    assert type(target) is Target
    with pytest.raises(ValueError, match="expected an http://"):
        Target("https://127.0.0.1:8443")
    with pytest.raises(ValueError, match="expected an https://"):
        TlsTarget("http://127.0.0.1:8080")
    assert TlsTarget("https://shop.test.internal", Tls(verify=False)).port == 443


# -- a Locust run over HTTPS --------------------------------------------------------------------


@pytest.fixture
def loopback_service(tls_ca: trustme.CA, tmp_path: Path) -> Iterator[tuple[str, TlsFiles]]:
    """The plain service behind TLS on 127.0.0.1 (a certificate for 127.0.0.1 and localhost)."""
    files = issue(tls_ca, tmp_path / "loopback", "127.0.0.1", "localhost")
    port = free_port()
    argv = [sys.executable, "-m", "tests.load.plain_service", str(port)]
    proc = subprocess.Popen(
        [*argv, "--cert", str(files.cert), "--key", str(files.key)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while not port_open(port):
            assert proc.poll() is None and time.monotonic() < deadline, "service died"
            time.sleep(0.05)
        yield str(port), files
    finally:
        proc.terminate()
        proc.wait(10)


PROFILE = """
name: https
users: {accounts: 10}
stages: [{name: steady, duration: 3s, rate: 30/s}]
journeys:
  - name: health
    weight: 2
    http:
      - path: /healthz
  - name: verifying
    weight: 1
    locust: tests.load.shop_user:VerifyingUser
client:
  timeout: 2s
"""


def _journey(run: LocustRun, journey: str, level: str) -> Bucket:
    total = Bucket()
    for (_, _, j, _, lv, *_), bucket in run.timeline.buckets.items():
        if j == journey and lv == level:
            total.merge(bucket)
    return total


def test_a_run_over_https_with_a_worker(
    loopback_service: tuple[str, TlsFiles], tmp_path: Path
) -> None:
    """Users alternate between two URLs of one service: one trusts its CA, the other a
    stranger's. The worker gets the CA from the master (``run-config.json`` has the path only)."""
    port, files = loopback_service
    good, bad = f"https://127.0.0.1:{port}", f"https://localhost:{port}"
    stranger = issue(trustme.CA(), tmp_path / "stranger", "x", stem="x")
    target = RunTarget(
        urls=(good, bad), tls=Tls(ca=str(files.ca)), tls_by_url={bad: Tls(ca=str(stranger.ca))}
    )
    run = run_locust(tmp_path, PROFILE, target, workers=1, drain_s=1)
    assert run.codes == {"master": 0, "worker-1": 0}, run.logs
    written = (run.run_dir / "run-config.json").read_text()
    assert "BEGIN CERTIFICATE" not in written and str(files.ca) in written
    # users alternate between the URLs; journeys are drawn 2:1 at random
    health = _journey(run, "health", "request")
    tls = health.count("busy")
    assert health.answered == health.count("ok") + tls and health.count("ok") > 0 and tls > 0
    assert health.busy == {"connection": tls} and health.detail == {"tls": tls}, health.n
    actions = _journey(run, "health", "action")
    assert actions.busy == {"connection": tls} and actions.detail == {"tls": tls}
    assert run.locust["GET /healthz"] == {"requests": health.answered, "failures": tls}
    failures = (run.run_dir / "locust_failures.csv").read_text()
    assert "busy connection (tls)" in failures
    # a locust: class's own client failing to verify: a TLS failure too
    custom = _journey(run, "verifying", "request")
    assert health.answered + custom.answered == 90
    assert custom.busy == {"connection": custom.answered} and custom.answered > 0, custom.n
    assert custom.detail == {"tls": custom.answered}
