"""The live web view's HTTP server: one page, its assets (shipped in the package: nothing is
fetched from the internet), the live JSON, the halt action and the run's report files.

Plain ``http.server`` in a thread (one more thread per open request); every answer is built
from :class:`~loadkit.live.state.LiveState` under its lock, so a page costs the run a small JSON
document per second, whatever the run's rate::

    GET  /                     the page
    GET  /static/NAME          uPlot, the page's script and style
    GET  /api/live?from=T      the run, points from second T on, the scenario (JSON)
    POST /api/halt             halt: revert every fault, stop the load, write the reports
    GET  /files/NAME           report.html, summary.md, report.json … once written

Off loopback a token is needed: ``?token=`` on the page's URL (the page passes it on), or the
``X-Loadkit-Token`` header. On loopback, requests must name the host they were sent to (no DNS
rebinding); a halt must come from the page itself (its ``X-Loadkit-Halt`` header cannot be sent
cross-site without a preflight this server never answers).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson

from loadkit.live.address import Listen
from loadkit.live.state import REPORT_FILES, LiveState

log = logging.getLogger(__name__)

STATIC = {
    "uPlot.iife.min.js": "text/javascript; charset=utf-8",
    "uPlot.min.css": "text/css; charset=utf-8",
    "uPlot.LICENSE": "text/plain; charset=utf-8",
    "live.js": "text/javascript; charset=utf-8",
    "live.css": "text/css; charset=utf-8",
}
FILE_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".md": "text/markdown; charset=utf-8",
    ".json": "application/json",
    ".jsonl": "application/x-ndjson",
    ".xml": "application/xml",
}
PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'"
)
# report.html is self-contained: inline styles and SVG, no script
FILE_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'"


def _asset(name: str) -> bytes:
    return resources.files("loadkit.live").joinpath("static", name).read_bytes()


class LiveServer:
    """The web view on ``listen``; ``halt(reason, who)`` is what the halt button calls (it
    returns at once: the run reverts and stops in its own threads)."""

    def __init__(
        self,
        listen: Listen,
        state: LiveState,
        halt: Callable[[str, str], bool],
    ) -> None:
        self.listen = listen
        self.state = state
        self.halt = halt
        self.page = _asset("index.html")
        handler = type("Handler", (_Handler,), {"live": self})
        self.httpd = ThreadingHTTPServer((listen.host, listen.port), handler)
        self.httpd.daemon_threads = True
        self.port = int(self.httpd.server_address[1])
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return self.listen.url(self.port)

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, name="loadkit-web", daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        if self._thread is not None:
            self.httpd.shutdown()
            self._thread.join(5)
        self.httpd.server_close()

    def host_ok(self, host_header: str | None) -> bool:
        """On loopback only the names of loopback itself (no DNS rebinding)."""
        if not self.listen.loopback:  # elsewhere the token guards it
            return True
        if not host_header:
            return False
        host = host_header.rsplit(":", 1)[0] if not host_header.endswith("]") else host_header
        return host.strip("[]").lower() in {"localhost", "127.0.0.1", "::1", self.listen.host}


class _Handler(BaseHTTPRequestHandler):
    live: LiveServer
    server_version = "loadkit-live"
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("web: " + format, *args)

    # -- plumbing ----------------------------------------------------------------------------

    def _send(
        self,
        status: int,
        body: bytes,
        ctype: str,
        *,
        csp: str | None = None,
        extra: dict[str, str] | None = None,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        if csp:
            self.send_header("Content-Security-Policy", csp)
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, value: Any) -> None:
        self._send(status, orjson.dumps(value), "application/json")

    def _allowed(self, query: dict[str, list[str]]) -> bool:
        if not self.live.host_ok(self.headers.get("Host")):
            self._send(HTTPStatus.MISDIRECTED_REQUEST, b"unknown host\n", "text/plain")
            return False
        given = query.get("token")
        token = self.headers.get("X-Loadkit-Token") or (given[0] if given else None)
        if not self.live.listen.accepts(token):
            self._send(
                HTTPStatus.UNAUTHORIZED,
                b"a token is needed: open the URL the run printed\n",
                "text/plain",
            )
            return False
        return True

    # -- routes ------------------------------------------------------------------------------

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        path, query = parts.path, parse_qs(parts.query)
        if path.startswith("/static/"):  # the page's code: no run data, no token needed
            name = path.removeprefix("/static/")
            if name not in STATIC:
                self._send(HTTPStatus.NOT_FOUND, b"not found\n", "text/plain")
                return
            self._send(HTTPStatus.OK, _asset(name), STATIC[name])
            return
        if path == "/favicon.ico":
            self._send(HTTPStatus.NO_CONTENT, b"", "text/plain")
            return
        if not self._allowed(query):
            return
        if path == "/":
            self._send(HTTPStatus.OK, self.live.page, "text/html; charset=utf-8", csp=PAGE_CSP)
        elif path == "/api/live":
            try:
                t_from = int((query.get("from") or ["0"])[0])
            except ValueError:
                t_from = 0
            self._send(HTTPStatus.OK, self.live.state.payload(t_from), "application/json")
        elif path.startswith("/files/"):
            self._file(path.removeprefix("/files/"))
        else:
            self._send(HTTPStatus.NOT_FOUND, b"not found\n", "text/plain")

    def _file(self, name: str) -> None:
        state = self.live.state
        run_dir = state.run.run_dir
        if name not in REPORT_FILES or run_dir is None or not (run_dir / name).is_file():
            self._send(HTTPStatus.NOT_FOUND, b"not written (yet)\n", "text/plain")
            return
        suffix = "." + name.rsplit(".", 1)[-1]
        body = (run_dir / name).read_bytes()
        self._send(
            HTTPStatus.OK,
            body,
            FILE_TYPES.get(suffix, "application/octet-stream"),
            csp=FILE_CSP,
        )

    def do_POST(self) -> None:
        parts = urlsplit(self.path)
        if not self._allowed(parse_qs(parts.query)):
            return
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(min(length, 4096)) if length else b""
        if parts.path != "/api/halt":
            self._send(HTTPStatus.NOT_FOUND, b"not found\n", "text/plain")
            return
        if self.headers.get("X-Loadkit-Halt") != "confirmed":
            self._json(HTTPStatus.FORBIDDEN, {"ok": False, "error": "halt must be confirmed"})
            return
        try:
            body = orjson.loads(raw) if raw else {}
        except orjson.JSONDecodeError:
            body = {}
        note = str(body.get("note") or "")[:200] if isinstance(body, dict) else ""
        who = f"{self.client_address[0]}" + (f" ({note})" if note else "")
        done = self.live.halt("halted from the live view", who)
        self._json(HTTPStatus.OK if done else HTTPStatus.CONFLICT, {"ok": done})
