"""HTTP on the hot path: keep-alive connections per target URL, one request with the client's
retries, classification, recording, and Locust's ``request`` event for every attempt.

Plain geventhttpclient underneath (its C response parser), without the per-request machinery of
Locust's ``FastHttpSession``: request heads are formatted in one f-string (or built once for a
static request), a sender's deadline is one reusable :class:`Deadline`, and the results land on
the caller's :class:`Action` instead of new objects::

    client = HttpClient(recorder=recorder, fire=env.events.request.fire, clock=time.perf_counter,
                        retries=Retries(attempts=3), run_end=base + 55.0, new_key=KeyMaker(0))
    client.call(action, endpoint, target, "/v1/balance", "Authorization: Bearer t\\r\\n")
    action.status, action.outcome        # 200, OK

Every attempt is one request in the timeline (``request`` level, with its own outcome) and one
Locust request event (``ok`` and ``rejected`` are Locust successes, ``busy`` a failure named by its
cause), so Locust's totals and loadkit's agree exactly. Only ``busy`` attempts are retried, after
the backoff (doubling from ``backoff``, at most ``max_backoff``) or the ``Retry-After`` the answer
carries (when ``honour_retry_after``), never beyond the run's end.

With ``failover`` (``client.failover``), an attempt whose connection was refused, reset or closed
before an answer is sent again at once, with the same bytes (so the same idempotency key), to the
next target of its :attr:`Target.ring` that is not ejected, without using a retry attempt; the
failed target is ejected (skipped by every request of the process) for ``eject_s``.

An ``https://`` URL is a :class:`TlsTarget` (:func:`make_target`): the same keep-alive
connections, each opened with one TLS handshake (SNI, the certificate verified unless
``verify: false``, a client certificate when the settings have one) that resumes the target's
last TLS session when it can. A handshake that fails, and any TLS error later on the connection,
is busy ``connection`` with the detail ``tls`` (``Action.detail``, the timeline's ``detail``).
A plain ``http://`` target runs exactly the code it ran before TLS existed.
"""

from __future__ import annotations

import email.utils
import functools
import os
import ssl
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

import gevent
import orjson
from gevent import socket as gsocket
from gevent import ssl as gssl
from gevent.event import AsyncResult
from gevent.monkey import get_original
from geventhttpclient.response import HTTPParseError, HTTPSocketResponse

from loadkit.load.recorder import Recorder
from loadkit.load.schedule import Piece
from loadkit.load.tls import Tls, client_context
from loadkit.profile.model import Failover, Retries
from loadkit.profile.outcome import (
    BUSY,
    CAUSES,
    CONNECTION_LOST,
    DETAILS,
    MAINTENANCE_HEADER,
    NO_CAUSE,
    NO_DETAIL,
    OK,
    TIMED_OUT,
    TLS_FAILED,
    StatusTable,
    maintenance_marked,
)

#: the maintenance header as geventhttpclient looks headers up (lower case)
_MAINTENANCE = MAINTENANCE_HEADER.lower()

#: idle keep-alive connections older than this are closed, not reused (uvicorn closes at 5 s)
IDLE_MAX_S: Final = 4.0
#: idle connections older than this are checked for a close from the server before reuse
IDLE_CHECK_S: Final = 0.2
#: TLS handshakes one target has in flight at most, plus one per :data:`WAITING_PER_HANDSHAKE`
#: requests waiting. A request that finds no idle connection while that many are being opened
#: waits for the first connection given back, or a free handshake slot, whichever comes first.
#: Unbounded, a surge (or a run's first second) opens a connection per waiting request, and
#: hundreds of concurrent handshakes starve the requests they are for (on loopback at 2,500/s:
#: 250 handshakes, p99 300 ms in the first second; bounded: 25, 20 ms); the allowance that grows
#: with the queue still opens the pool fast against a distant server (50 ms round trips: 55
#: connections at 1,000/s, steady within the first second)
MAX_HANDSHAKES: Final = 4
WAITING_PER_HANDSHAKE: Final = 16
#: the ``context`` of the request events loadkit fires itself (listeners can tell them apart)
OWN_EVENT: Final[dict[str, Any]] = {"loadkit": True}
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
_LOST = CONNECTION_LOST[1]
#: a TLS failure: busy ``connection`` (CONNECTION_LOST's values), told apart by identity
_TLS_LOST: Final = (CONNECTION_LOST[0], CONNECTION_LOST[1])
_select = get_original("select", "select")


class RunOver(BaseException):
    """Thrown into senders still busy when the run's drain time is over."""


class TlsFailed(OSError):
    """A TLS handshake that did not complete (a refused certificate, an alert, a reset)."""


#: what ends a request as a TLS failure (an ``ssl.SSLError`` can come at any read or write:
#: TLS 1.3 servers refuse a client certificate after the client's side of the handshake)
_TLS_ERRORS = (TlsFailed, ssl.SSLError)


class DeadlinePassed(BaseException):
    """Thrown into a greenlet whose :class:`Deadline` passed (like ``gevent.Timeout``)."""

    def __init__(self, deadline: Deadline) -> None:
        super().__init__(f"no answer within {deadline.seconds:g}s")
        self.deadline = deadline


class Deadline:
    """The client timeout of one greenlet's requests, armed and disarmed request after request.

    Not a ``gevent.Timeout``: libev keeps a stopped timer's *remaining* time, so a cancelled and
    restarted Timeout fires earlier and earlier; ``again`` on a repeating timer restarts the
    full period every time, for well under a microsecond::

        deadline = Deadline(5.0)
        deadline.arm()      # DeadlinePassed is thrown into this greenlet in 5 s, unless
        deadline.disarm()   # ... the request ended first
    """

    __slots__ = ("_loop", "_timer", "seconds")

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._loop = gevent.get_hub().loop
        self._timer = self._loop.timer(seconds, seconds)

    def arm(self) -> None:
        self._loop.update_now()  # the loop's cached time may be a while old
        self._timer.again(self._expired, gevent.getcurrent())

    def disarm(self) -> None:
        self._timer.stop()

    def _expired(self, greenlet: gevent.Greenlet) -> None:
        self._timer.stop()  # once: the repeat only serves ``again``
        greenlet.throw(DeadlinePassed(self))


class Target:
    """One base URL and its idle keep-alive connections (last in, first out).

    ``ring`` is the list of targets it belongs to (a user's URLs; just itself unless
    :func:`link` made one) and ``slot`` its place there; ``ejected_until`` (client clock) is
    non-zero while failover skips it. ``route`` names the instance behind it in the timeline
    (:meth:`Recorder.instance <loadkit.load.recorder.Recorder.instance>`; 0: unnamed)."""

    __slots__ = (
        "_idle",
        "authority",
        "ejected_until",
        "host",
        "port",
        "ring",
        "route",
        "slot",
        "url",
    )
    SCHEME = "http"
    DEFAULT_PORT = 80

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme != self.SCHEME or not parts.hostname:
            raise ValueError(f"expected an {self.SCHEME}://HOST:PORT URL, got {url!r}")
        self.url = url.rstrip("/")
        self.host = parts.hostname
        self.port = parts.port or self.DEFAULT_PORT
        self.authority = parts.netloc
        self._idle: list[tuple[gsocket.socket, float]] = []
        self.ring: tuple[Target, ...] = (self,)
        self.slot = 0
        self.ejected_until = 0.0
        self.route = 0

    def take(self, now: float) -> gsocket.socket | None:
        """A live idle connection, or ``None``."""
        idle = self._idle
        while idle:
            sock, since = idle.pop()
            age = now - since
            if age < IDLE_CHECK_S or (age < IDLE_MAX_S and _quiet(sock)):
                return sock
            sock.close()
        return None

    def connect(self) -> gsocket.socket:
        sock = gsocket.create_connection((self.host, self.port))
        sock.setsockopt(gsocket.IPPROTO_TCP, gsocket.TCP_NODELAY, 1)
        return sock

    def give(self, sock: gsocket.socket, now: float) -> None:
        self._idle.append((sock, now))

    def close(self) -> None:
        while self._idle:
            self._idle.pop()[0].close()


class TlsTarget(Target):
    """An ``https://`` base URL: connections are TLS connections (see the module docstring)::

    target = TlsTarget("https://198.18.0.2:8443", Tls(ca="ca.pem"))
    """

    __slots__ = ("_opening", "_session", "_stale", "_waiting", "context", "server_name", "tls")
    SCHEME = "https"
    DEFAULT_PORT = 443

    def __init__(self, url: str, tls: Tls | None = None) -> None:
        super().__init__(url)
        self.tls = tls or Tls()
        self.context = _context(self.tls)
        #: sent as SNI and matched against the certificate (an IP address: matched, not sent)
        self.server_name = self.tls.server_name or self.host
        self._session: ssl.SSLSession | None = None
        self._stale = True  # the next connection given back saves its session
        self._opening = 0  # handshakes in flight (and slots handed to a waiting request)
        #: requests waiting for a connection, first come first served: each gets a connection
        #: given back, or ``None`` (a handshake slot is theirs)
        self._waiting: deque[AsyncResult] = deque()

    def connect(self) -> gsocket.socket:
        """A new TLS connection; or, when :data:`MAX_HANDSHAKES` are being opened, the first
        connection given back (or a new one, when a handshake slot frees first)."""
        if self._opening < MAX_HANDSHAKES + len(self._waiting) // WAITING_PER_HANDSHAKE:
            self._opening += 1
        else:
            given = self._wait()
            if given is not None:
                return given
        try:
            return self._handshake()
        finally:
            self._pass_slot()

    def give(self, sock: gsocket.socket, now: float) -> None:
        if self._stale:
            # after an answer, so TLS 1.3's session tickets (sent after the handshake) are in
            self._session = sock.session
            self._stale = False
        if self._waiting:
            self._waiting.popleft().set(sock)
        else:
            self._idle.append((sock, now))

    def _handshake(self) -> gsocket.socket:
        sock = super().connect()  # a refused TCP connection stays a plain connection failure
        try:
            tls = self.context.wrap_socket(
                sock, server_hostname=self.server_name, session=self._session
            )
        except OSError as exc:  # ssl.SSLError included; a reset mid-handshake too
            sock.close()
            raise TlsFailed(f"TLS handshake with {self.authority}: {exc}") from exc
        except BaseException:
            sock.close()
            raise
        if not tls.session_reused:
            self._stale = True
        return tls

    def _wait(self) -> gsocket.socket | None:
        waiter = AsyncResult()
        self._waiting.append(waiter)
        try:
            given: gsocket.socket | None = waiter.get()
        except BaseException:  # the deadline passed, the run ended: hand on what came
            if not waiter.ready():
                self._waiting.remove(waiter)
            elif waiter.value is None:
                self._pass_slot()
            else:
                self.give(waiter.value, time.perf_counter())
            raise
        return given

    def _pass_slot(self) -> None:
        """A handshake ended: its slot goes to the first waiting request, or is free."""
        if self._waiting:
            self._waiting.popleft().set(None)
        else:
            self._opening -= 1


def make_target(url: str, tls: Tls | None = None) -> Target:
    """A :class:`TlsTarget` for ``https://`` (``tls`` default: verified with the system's CAs),
    a plain :class:`Target` for ``http://`` (``tls`` ignored)."""
    if url.startswith("https://"):
        return TlsTarget(url, tls)
    return Target(url)


@functools.cache
def _context(tls: Tls) -> ssl.SSLContext:
    """One client context per distinct settings, shared by their targets (loading the system's
    CAs takes milliseconds)."""
    return client_context(tls, factory=gssl.SSLContext)


def link(targets: tuple[Target, ...]) -> None:
    """Make ``targets`` one failover ring, in this order."""
    for slot, target in enumerate(targets):
        target.ring = targets
        target.slot = slot


def _quiet(sock: gsocket.socket) -> bool:
    """True when an idle connection has nothing to read (no close, no stray bytes)."""
    try:
        readable, _, _ = _select([sock.fileno()], [], [], 0)
    except (OSError, ValueError):
        return False
    return not readable


@dataclass(slots=True, eq=False)
class Endpoint:
    """One request of one journey: its timeline label, method and series, its Locust name and
    the statuses' meanings (``expect``)."""

    label: str
    method: str
    sid: int
    locust_name: str
    table: StatusTable


class Action:
    """What one sender knows about the arrival it is serving; reused arrival after arrival.

    ``t`` is the intended start (run clock), ``due`` when the next request is due (``t`` for the
    first, the end of the previous one or its backoff after), ``end`` when the last one ended.
    After each request: ``status`` (0 without an answer), ``body``, ``response`` and its
    ``outcome``/``cause`` indexes, which a journey leaves as the action's own when it ends
    (``detail``: an index into DETAILS, e.g. ``tls``, when the last failure had one);
    ``key`` is the idempotency key the last request carried, ``superseded`` the keys retries
    replaced (``reuse_idempotency_key: false``). ``net`` is the user's network class and
    ``where`` the instance and network class of the last request (both OR-ed into recorder
    keys; the action is counted where its last request went).
    """

    __slots__ = (
        "body",
        "cause",
        "detail",
        "due",
        "end",
        "first_send",
        "key",
        "net",
        "outcome",
        "piece",
        "response",
        "status",
        "superseded",
        "t",
        "timeout",
        "user",
        "vars",
        "where",
    )

    def __init__(self, timeout_s: float) -> None:
        self.timeout = Deadline(timeout_s)
        self.t = 0.0
        self.due = 0.0
        self.end = 0.0
        self.first_send = -1.0
        self.piece: Piece | None = None
        self.user: Any = None
        self.vars: dict[str, object] = {}
        self.status = 0
        self.body = b""
        self.response: HTTPSocketResponse | None = None
        self.outcome = OK
        self.cause = NO_CAUSE
        self.detail = NO_DETAIL
        self.key: str | None = None
        self.superseded: list[str] = []
        self.net = 0
        self.where = 0

    def begin(self, t: float, piece: Piece, user: Any) -> None:
        self.t = self.due = self.end = t
        self.first_send = -1.0
        self.piece = piece
        self.user = user
        self.net = user.net
        self.where = user.where
        self.outcome = OK
        self.cause = NO_CAUSE
        self.detail = NO_DETAIL
        self.status = 0
        self.body = b""
        self.response = None
        self.key = None
        if self.superseded:
            self.superseded = []

    def json(self) -> Any:
        """The last answer's body as JSON (``None`` when it is not JSON)."""
        try:
            return orjson.loads(self.body)
        except orjson.JSONDecodeError:
            return None


#: renders a request again with a new idempotency key: (path, header lines, body)
Renew = Callable[[Action, str], tuple[str, str, bytes | None]]


class HttpClient:
    """Sends requests for actions, with retries; see the module docstring."""

    def __init__(
        self,
        *,
        recorder: Recorder,
        fire: Callable[..., Any] | None,
        clock: Callable[[], float],
        retries: Retries,
        run_end: float,
        new_key: Callable[[], str],
        failover: Failover | None = None,
    ) -> None:
        self.recorder = recorder
        self.retries = retries
        self.failover = failover
        self.run_end = run_end
        self.new_key = new_key
        self._fire = fire
        self._clock = clock
        self._errors: dict[tuple[int, int, int], str] = {}
        self.requests = 0

    @staticmethod
    def head(
        method: str, target: Target, path: str, headers: str = "", body: bytes | None = None
    ) -> bytes:
        """The bytes of a request (head and body); ``headers`` are ``Name: value\\r\\n`` lines."""
        if body is None:
            length = "Content-Length: 0\r\n" if method in _BODY_METHODS else ""
            text = (
                f"{method} {path} HTTP/1.1\r\nHost: {target.authority}\r\n"
                f"User-Agent: loadkit\r\n{headers}{length}\r\n"
            )
            return text.encode("latin-1", "replace")
        text = (
            f"{method} {path} HTTP/1.1\r\nHost: {target.authority}\r\nUser-Agent: loadkit\r\n"
            f"{headers}Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        return text.encode("latin-1", "replace") + body

    def call(
        self,
        a: Action,
        ep: Endpoint,
        target: Target,
        path: str,
        headers: str = "",
        body: bytes | None = None,
        key: str | None = None,
        *,
        head: bytes | None = None,
        renew: Renew | None = None,
        new_key: Callable[[], str] | None = None,
        on_key: Callable[[str], None] | None = None,
    ) -> None:
        """Send one request (``head`` when prebuilt) with the client's retries; the last
        attempt's answer and outcome are left on ``a``. ``key`` is sent as ``Idempotency-Key``;
        ``renew`` re-renders a templated request when a retry needs a fresh key (made by
        ``new_key``, default the client's), and ``on_key`` is told each such key before the
        request carrying it leaves (the caller recorded the first one itself)."""
        retries = self.retries
        attempt = 1
        hops = 0
        if key is not None:
            a.key = key
        while True:
            if target.ejected_until:  # failover is on and this target failed lately
                routed = self._route(target, 0)
                if routed is not target:
                    head = None if head is None else _rehost(head, target, routed)
                    target = routed
            if head is None:
                lines = headers if key is None else f"{headers}Idempotency-Key: {key}\r\n"
                request = self.head(ep.method, target, path, lines, body)
            else:
                request = head
            self._attempt(a, ep, target, request)
            if a.outcome != BUSY:
                return
            if a.cause == _LOST and self.failover is not None and hops < len(target.ring) - 1:
                target.ejected_until = a.end + self.failover.eject_s
                routed = self._route(target, 1)
                if routed is not target:  # at once, the same request: no attempt used
                    hops += 1
                    head = None if head is None else _rehost(head, target, routed)
                    target = routed
                    continue
            if attempt >= retries.attempts:
                return
            delay = self._delay(a, attempt)
            if a.end + delay >= self.run_end:
                return
            gevent.sleep(delay)
            a.due = a.end + delay
            attempt += 1
            if not retries.reuse_idempotency_key and (renew is not None or key is not None):
                if a.key is not None:
                    a.superseded.append(a.key)
                a.key = (new_key or self.new_key)()
                if on_key is not None:
                    on_key(a.key)
                head = None
                if renew is not None:
                    path, headers, body = renew(a, a.key)
                else:
                    key = a.key

    def _route(self, target: Target, first: int) -> Target:
        """The first target of ``target``'s ring, from ``first`` places after it, that is not
        ejected (expired ejections are cleared); ``target`` when every one is."""
        now = self._clock()
        ring = target.ring
        n = len(ring)
        for k in range(first, n):
            candidate = ring[(target.slot + k) % n]
            until = candidate.ejected_until
            if until <= now:
                if until:
                    candidate.ejected_until = 0.0
                return candidate
        return target

    def _delay(self, a: Action, attempt: int) -> float:
        retries = self.retries
        delay = min(retries.backoff_s * 2.0 ** (attempt - 1), retries.max_backoff_s)
        if retries.honour_retry_after and a.response is not None:
            value = a.response.get("retry-after")
            if isinstance(value, str):
                after = retry_after_s(value)
                if after is not None:
                    return after
        return delay

    def _attempt(self, a: Action, ep: Endpoint, target: Target, head: bytes) -> None:
        clock = self._clock
        start = clock()
        if a.first_send < 0:
            a.first_send = start
        response = None
        body = b""
        sock = None
        failed: tuple[int, int] | None = None
        over = False
        a.where = where = target.route | a.net
        key = ep.sid | where
        deadline = a.timeout
        deadline.arm()
        try:
            sock = target.take(start) or target.connect()
            sock.sendall(head)
            response = HTTPSocketResponse(sock, method=ep.method)
            body = response.read()
        except DeadlinePassed as exc:
            if exc.deadline is not deadline:
                raise
            failed = TIMED_OUT
        except RunOver:
            failed, over = TIMED_OUT, True
        except _TLS_ERRORS:
            failed = _TLS_LOST
        except (OSError, HTTPParseError):
            failed = CONNECTION_LOST
        finally:
            deadline.disarm()
        end = clock()
        if failed is None:
            assert response is not None and sock is not None
            status = response.status_code
            if response.should_close():
                sock.close()
            else:
                target.give(sock, end)
            maintenance = status == 503 and maintenance_marked(response.get(_MAINTENANCE), body)
            outcome, cause = ep.table.lookup(status, maintenance)
        else:
            if sock is not None:
                sock.close()
            status = 0
            outcome, cause = failed
            response = None
            # a detail is only read with a failure's cause: set here, off the answered path
            if failed is _TLS_LOST:
                a.detail = TLS_FAILED
                piece = a.piece
                assert piece is not None
                self.recorder.detail(piece, key, TLS_FAILED)
            else:
                a.detail = NO_DETAIL
        a.status = status
        a.body = body
        a.response = response
        a.outcome = outcome
        a.cause = cause
        a.end = end
        self.requests += 1
        assert a.piece is not None
        self.recorder.record(
            a.piece, key, outcome, cause, int((end - a.due) * 1e6), int((end - start) * 1e6)
        )
        a.due = end
        if self._fire is not None:
            self._fire(
                request_type=ep.method,
                name=ep.locust_name,
                response_time=(end - start) * 1000.0,
                response_length=len(body),
                exception=None if outcome != BUSY else self._error(a),
                context=OWN_EVENT,
            )
        if over:
            raise RunOver

    def _error(self, a: Action) -> str:
        """The Locust failure of a busy answer: ``busy <cause> (HTTP <status>)``, or
        ``busy connection (tls)`` for a TLS failure."""
        cause, status = a.cause, a.status
        detail = NO_DETAIL if status else a.detail
        key = (cause, status, detail)
        text = self._errors.get(key)
        if text is None:
            text = f"busy {CAUSES[cause]}"
            if status:
                text += f" (HTTP {status})"
            elif detail != NO_DETAIL:
                text += f" ({DETAILS[detail]})"
            self._errors[key] = text
        return text


def _rehost(head: bytes, old: Target, new: Target) -> bytes:
    """A prebuilt request for ``old`` with ``new``'s ``Host`` header."""
    was = f"\r\nHost: {old.authority}\r\n".encode("latin-1", "replace")
    now = f"\r\nHost: {new.authority}\r\n".encode("latin-1", "replace")
    return head.replace(was, now, 1)


def retry_after_s(value: str) -> float | None:
    """Seconds a ``Retry-After`` value asks for (delta-seconds or an HTTP date)."""
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class KeyMaker:
    """Idempotency keys unique across processes and runs: ``lk-<random>-<share>-<n>``."""

    __slots__ = ("_n", "_prefix")

    def __init__(self, share: int) -> None:
        self._prefix = f"lk-{os.urandom(4).hex()}-{share}-"
        self._n = 0

    def __call__(self) -> str:
        self._n += 1
        return f"{self._prefix}{self._n}"
