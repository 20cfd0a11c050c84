"""A plain HTTP service for declarative-journey tests (not the wallet): a tiny shop API.

Run it as ``python -m tests.load.plain_service PORT [--bind ADDR] [--cert PEM --key PEM
[--client-ca PEM]]``: HTTPS with ``--cert``, client certificates required with ``--client-ca``.
It counts every request per route; ``GET /stats`` answers the counts and ``GET /connections``
the connections it accepted (``connections``; with TLS also ``handshakes``, ``resumed`` and
``failed`` handshakes); neither is counted itself::

    POST /api/login {"username", "password": "secret"} -> 200 {"data": {"access_token": ...}}
    GET  /api/products/<n>       -> 200 for even n, 404 for odd (needs the bearer token)
    POST /api/accounts/<id>/orders -> 201 (needs the token and an Idempotency-Key), else 422
    GET  /healthz -> 200;  GET /throttle -> 429 Retry-After: 0;  GET /maintenance -> 503
    GET  /slow -> 200 after 300 ms
    POST /api/seen {...}          -> 200 {"data": the body}; counted as "seen <the body as JSON>"
"""

from __future__ import annotations

import argparse
import json
import re
import ssl
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

COUNTS: Counter[str] = Counter()
CONNECTIONS: Counter[str] = Counter()
LOCK = threading.Lock()
PASSWORD = "secret"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass

    def _send(self, status: int, body: object, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _count(self, route: str) -> None:
        with LOCK:
            COUNTS[route] += 1

    def _body(self) -> object:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            return json.loads(raw) if raw else None
        except ValueError:
            return None

    def _authorized(self) -> bool:
        return (self.headers.get("Authorization") or "").startswith("Bearer tok-")

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/stats":
            with LOCK:
                self._send(200, dict(COUNTS))
            return
        if path == "/connections":
            with LOCK:
                self._send(200, dict(CONNECTIONS))
            return
        if path == "/healthz":
            self._count("GET /healthz")
            self._send(200, {"ok": True})
        elif path == "/throttle":
            self._count("GET /throttle")
            self._send(429, {"code": "SLOW_DOWN"}, {"Retry-After": "0"})
        elif path == "/slow":
            self._count("GET /slow")
            time.sleep(0.3)
            self._send(200, {"ok": True})
        elif path == "/maintenance":
            self._count("GET /maintenance")
            self._send(503, {"maintenance": True})
        elif match := re.fullmatch(r"/api/products/(\d+)", path):
            self._count("GET /api/products")
            if not self._authorized():
                self._send(401, {"code": "UNAUTHORIZED"})
            elif int(match[1]) % 2:
                self._send(404, {"code": "NO_SUCH_PRODUCT"})
            else:
                self._send(200, {"id": int(match[1])})
        else:
            self._count("GET other")
            self._send(404, {"code": "NOT_FOUND"})

    def do_POST(self) -> None:
        path = self.path.split("?", 1)[0]
        body = self._body()
        if path == "/api/login":
            self._count("POST /api/login")
            ok = isinstance(body, dict) and body.get("password") == PASSWORD
            if ok and isinstance(body, dict):
                self._send(200, {"data": {"access_token": f"tok-{body.get('username')}"}})
            else:
                self._send(401, {"code": "BAD_PASSWORD"})
        elif path == "/api/seen":
            self._count("seen " + json.dumps(body, sort_keys=True))
            self._send(200, {"data": body})
        elif re.fullmatch(r"/api/accounts/\d+/orders", path):
            self._count("POST /api/orders")
            if not self._authorized() or not self.headers.get("Idempotency-Key"):
                self._send(422, {"code": "MISSING"})
            else:
                self._send(201, {"order": body})
        else:
            self._count("POST other")
            self._send(404, {"code": "NOT_FOUND"})


class Server(ThreadingHTTPServer):
    """Counts connections; with a TLS context, handshakes each one in its own thread (a slow or
    failing handshake does not hold up the accept loop)."""

    daemon_threads = True
    tls: ssl.SSLContext | None = None

    def finish_request(self, request: Any, client_address: Any) -> None:
        with LOCK:
            CONNECTIONS["connections"] += 1
        if self.tls is None:
            super().finish_request(request, client_address)
            return
        try:  # wrapping takes the socket's descriptor over: this wrapper must close it
            wrapped = self.tls.wrap_socket(request, server_side=True)
        except (OSError, ValueError):  # a refused certificate, an alert, a reset
            with LOCK:
                CONNECTIONS["failed"] += 1
            return
        with LOCK:
            CONNECTIONS["handshakes"] += 1
            CONNECTIONS["resumed"] += wrapped.session_reused
        try:
            super().finish_request(wrapped, client_address)
        finally:
            wrapped.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("port", type=int)
    parser.add_argument("--bind", default="127.0.0.1")
    parser.add_argument("--cert", help="server certificate chain (PEM): serve HTTPS")
    parser.add_argument("--key", help="its private key (PEM)")
    parser.add_argument("--client-ca", help="require client certificates signed by this CA")
    args = parser.parse_args()
    server = Server((args.bind, args.port), Handler)
    if args.cert:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(args.cert, args.key)
        if args.client_ca:
            context.verify_mode = ssl.CERT_REQUIRED
            context.load_verify_locations(args.client_ca)
        server.tls = context
    print("ready", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
