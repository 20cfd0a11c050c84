"""A TCP forwarder for tests: listen on one address, relay every connection to another.

A service in a network-namespace test host reaches this namespace only at its gateway address;
the session's PostgreSQL listens on loopback. ``Forwarder(("198.18.0.1", 0), ("127.0.0.1", 5432))``
bridges the two for as long as the ``with`` block runs::

    with Forwarder((host.gateway, 0), ("127.0.0.1", pg.port)) as fwd:
        dsn = pg_dsn.replace(f"127.0.0.1:{pg.port}", f"{host.gateway}:{fwd.port}")
"""

from __future__ import annotations

import contextlib
import socket
import threading
from types import TracebackType


class Forwarder:
    def __init__(self, listen: tuple[str, int], upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.server = socket.create_server(listen)
        self.port: int = self.server.getsockname()[1]
        self._closed = threading.Event()
        self._socks: list[socket.socket] = []
        self._lock = threading.Lock()

    def __enter__(self) -> Forwarder:
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._closed.set()
        with contextlib.suppress(OSError):
            self.server.close()
        with self._lock:
            for sock in self._socks:
                with contextlib.suppress(OSError):
                    sock.close()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self.server.accept()
                upstream = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                continue
            upstream.settimeout(None)
            with self._lock:
                self._socks += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                dst.shutdown(socket.SHUT_WR)
