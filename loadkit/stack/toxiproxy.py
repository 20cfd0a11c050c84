"""Toxiproxy: the server process the stack starts, and a client adapter over toxiproxy-python.

toxiproxy-python is thin and old: it keeps the server address in class attributes (one server per
Python process) and sets no HTTP timeouts, so a hung Toxiproxy would hang loadkit. The adapter
below keeps using its models and calls, but routes every HTTP call to *this* client's server with a
timeout, and turns transport failures into :class:`~loadkit.errors.EnvironmentProblem`::

    tp = ToxiproxyClient(port=8474)
    tp.create_proxy("wallet-1-postgres", listen=6001, upstream=5432)
    with tp.toxic("wallet-1-postgres", "latency", attributes={"latency": 200}):
        ...  # every query from wallet-1 now waits 200 ms more
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests
import toxiproxy.api as _tp_api
from toxiproxy import Proxy, Toxiproxy
from toxiproxy.exceptions import InvalidToxic, NotFound, ProxyExists

from loadkit.errors import ComponentFailed, ConfigError, EnvironmentProblem
from loadkit.stack.ports import port_open
from loadkit.stack.process import ManagedProcess, ProcessInfo

INSTALL_HINT = (
    "install toxiproxy-server: `make setup` (runs `go install "
    "github.com/Shopify/toxiproxy/v2/cmd/server@v2.12.0` and copies it into the venv), "
    "`brew install toxiproxy`, or a release binary on PATH; or set LOADKIT_TOXIPROXY to its path"
)

TOXIC_TYPES = (
    "latency",
    "bandwidth",
    "slow_close",
    "timeout",
    "reset_peer",
    "slicer",
    "limit_data",
    "down",
)

_current: ContextVar[ToxiproxyClient | None] = ContextVar("loadkit_toxiproxy", default=None)


class _RequestsShim:
    """Stands in for the ``requests`` module inside ``toxiproxy.api``: same calls, but aimed at
    the active client's server and always with a timeout."""

    def _call(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        client = _current.get()
        if client is None:  # plain toxiproxy-python use elsewhere in the process: leave it be
            return requests.request(method, url, **kwargs)
        parts = urlsplit(url)
        url = urlunsplit(parts._replace(netloc=f"{client.host}:{client.port}"))
        kwargs.setdefault("timeout", client.timeout)
        try:
            return requests.request(method, url, **kwargs)
        except requests.RequestException as exc:
            raise EnvironmentProblem(
                f"toxiproxy: API at {client.host}:{client.port} did not answer: {exc}"
            ) from exc

    def get(self, url: str, **kwargs: Any) -> requests.Response:
        return self._call("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> requests.Response:
        return self._call("POST", url, **kwargs)

    def delete(self, url: str, **kwargs: Any) -> requests.Response:
        return self._call("DELETE", url, **kwargs)


_tp_api.requests = _RequestsShim()


@dataclass(frozen=True)
class ToxicSpec:
    """One toxic as Toxiproxy knows it."""

    name: str
    type: str
    stream: str
    toxicity: float
    attributes: Mapping[str, Any]


class ToxiproxyClient:
    """A Toxiproxy API client bound to one server, with a timeout on every call."""

    def __init__(self, host: str = "127.0.0.1", port: int = 8474, timeout: float = 5.0) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout

    @contextlib.contextmanager
    def _bound(self) -> Iterator[Toxiproxy]:
        token = _current.set(self)
        try:
            yield Toxiproxy()
        except ProxyExists as exc:
            raise ConfigError(f"toxiproxy: proxy already exists: {_text(exc)}") from exc
        except NotFound as exc:
            raise ConfigError(f"toxiproxy: not found: {_text(exc)}") from exc
        except InvalidToxic as exc:
            raise ConfigError(f"toxiproxy: invalid toxic: {_text(exc)}") from exc
        finally:
            _current.reset(token)

    def version(self) -> str:
        with self._bound():
            return str(_tp_api.APIConsumer.get("/version").text).strip()

    def ping(self) -> bool:
        try:
            self.version()
        except EnvironmentProblem:
            return False
        return True

    def proxies(self) -> dict[str, Proxy]:
        with self._bound() as tp:
            return dict(tp.proxies())

    def create_proxy(self, name: str, *, listen: int, upstream: str | int) -> Proxy:
        """Create proxy ``name`` on 127.0.0.1:``listen`` forwarding to ``upstream``."""
        up = f"127.0.0.1:{upstream}" if isinstance(upstream, int) else upstream
        with self._bound() as tp:
            return tp.create(upstream=up, name=name, listen=f"127.0.0.1:{listen}", enabled=True)

    def delete_proxy(self, name: str) -> bool:
        """Delete a proxy (its connections drop); False when it was not there."""
        with self._bound() as tp:
            proxy = tp.get_proxy(name)
            if proxy is None:
                return False
            proxy.destroy()
            return True

    def _proxy(self, tp: Toxiproxy, name: str) -> Proxy:
        proxy = tp.get_proxy(name)
        if proxy is None:
            known = ", ".join(sorted(tp.proxies())) or "none"
            raise ConfigError(f"toxiproxy: no proxy named {name!r} (known: {known})")
        return proxy

    def set_enabled(self, name: str, enabled: bool) -> None:
        """Disable (drop every connection, stop listening) or enable a proxy."""
        with self._bound() as tp:
            proxy = self._proxy(tp, name)
            if enabled:
                proxy.enable()
            else:
                proxy.disable()

    def toxics(self, proxy: str) -> list[ToxicSpec]:
        with self._bound() as tp:
            found = self._proxy(tp, proxy).toxics()
            return [
                ToxicSpec(t.name, t.type, t.stream, float(t.toxicity), dict(t.attributes))
                for t in found.values()
            ]

    def add_toxic(
        self,
        proxy: str,
        type: str,
        *,
        stream: str = "downstream",
        attributes: Mapping[str, Any] | None = None,
        toxicity: float = 1.0,
        name: str | None = None,
    ) -> str:
        """Add a toxic; returns its name (default ``<type>_<stream>``)."""
        if type not in TOXIC_TYPES:
            raise ConfigError(
                f"toxiproxy: unknown toxic type {type!r}; expected one of {TOXIC_TYPES}"
            )
        toxic_name = name or f"{type}_{stream}"
        with self._bound() as tp:
            self._proxy(tp, proxy).add_toxic(
                type=type,
                stream=stream,
                toxicity=toxicity,
                attributes=dict(attributes or {}),
                name=toxic_name,
            )
        return toxic_name

    def remove_toxic(self, proxy: str, name: str) -> bool:
        """Remove a toxic; False when it was not there (already reverted)."""
        with self._bound() as tp:
            target = self._proxy(tp, proxy)
            if name not in target.toxics():
                return False
            target.destroy_toxic(name)
            return True

    @contextlib.contextmanager
    def toxic(
        self,
        proxy: str,
        type: str,
        *,
        stream: str = "downstream",
        attributes: Mapping[str, Any] | None = None,
        toxicity: float = 1.0,
        name: str | None = None,
    ) -> Iterator[str]:
        """A toxic for the length of the ``with`` block; removed however the block ends."""
        toxic_name = self.add_toxic(
            proxy, type, stream=stream, attributes=attributes, toxicity=toxicity, name=name
        )
        try:
            yield toxic_name
        finally:
            self.remove_toxic(proxy, toxic_name)

    def reset(self) -> None:
        """Enable every proxy and remove every toxic."""
        with self._bound():
            _tp_api.APIConsumer.post("/reset")


def _text(exc: Exception) -> str:
    arg = exc.args[0] if exc.args else ""
    return arg.decode("utf-8", "replace").strip() if isinstance(arg, bytes) else str(arg)


def find_server_binary() -> Path | None:
    """``toxiproxy-server``: $LOADKIT_TOXIPROXY, PATH, this Python's bin dir, or Go's bin dir."""
    env = os.environ.get("LOADKIT_TOXIPROXY")
    if env:
        return Path(env)
    on_path = shutil.which("toxiproxy-server")
    if on_path:
        return Path(on_path)
    beside = Path(sys.executable).parent / "toxiproxy-server"
    if beside.exists():
        return beside
    gopath = os.environ.get("GOPATH") or str(Path.home() / "go")
    for candidate in (Path(gopath) / "bin" / "toxiproxy-server",):
        if candidate.exists():
            return candidate
    return None


def server_version(binary: Path) -> str:
    done = subprocess.run(
        [str(binary), "-version"], capture_output=True, text=True, check=False, timeout=10
    )
    return (done.stdout or done.stderr).strip()


def start_server(
    port: int,
    log_path: Path,
    *,
    binary: Path | None = None,
    on_spawn: Callable[[ProcessInfo], None] | None = None,
) -> ManagedProcess:
    """Start ``toxiproxy-server`` on 127.0.0.1:``port`` and wait until its API answers."""
    found = binary or find_server_binary()
    if found is None:
        raise EnvironmentProblem(f"toxiproxy: toxiproxy-server not found; {INSTALL_HINT}")
    if port_open(port):
        raise ComponentFailed("toxiproxy", f"port {port} on 127.0.0.1 is already in use")
    proc = ManagedProcess.spawn(
        "toxiproxy",
        [str(found), "-host", "127.0.0.1", "-port", str(port)],
        log_path,
        on_spawn=on_spawn,
    )
    client = ToxiproxyClient(port=port, timeout=1.0)
    try:
        proc.wait_ready(client.ping, timeout=20, what="answering on its API")
    except BaseException:  # not ready, or interrupted while waiting: leave nothing behind
        proc.terminate(timeout=2)
        raise
    return proc
