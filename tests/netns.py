"""Test hosts that are not loopback: a network namespace joined to this one by a veth pair.

A host is one /30 of 198.18.0.0/15 (the range RFC 2544 reserves for benchmarking): ``gateway``
(``.1``) is this namespace's end of the pair, ``address`` (``.2``) the host's. The namespace
gets no default route, so what runs in it reaches this machine's end of the pair and nothing
beyond; this side only gains the /30's own route. Names come from the pid and a counter, and
the /30 is reserved with a lock file (released by the kernel if the process dies), so test
processes running at once never collide. A host is always deleted, the processes started in it
first, when its ``with`` block or the :func:`netns_host` fixture ends, even on failure::

    with test_host() as host:
        server = run(host, [sys.executable, "-m", "http.server", "8099", "--bind", host.address])
        wait_port(host, 8099, server)
        httpx.get(f"http://{host.address}:8099/")        # from the root namespace

Namespaces need root. As root (CI) a host that cannot be made is an error; for anyone else the
fixtures skip the test, saying why. Fixtures (imported into tests/conftest.py): ``netns_host``
(a fresh host per test), ``tls_ca`` (a ``trustme`` CA per session), ``tls_host`` (a host with a
server certificate for its address and :data:`SERVER_NAME`).
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import itertools
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import pytest
import trustme

#: the benchmarking range (RFC 2544): every test host's /30 comes from here
RANGE = ipaddress.ip_network("198.18.0.0/15")
BLOCKS = RANGE.num_addresses // 4
#: a name the tls_host certificate is also issued for (sent as SNI with ``server_name``)
SERVER_NAME = "shop.test.internal"
_PREFIX = "lkt"
_LOCKS = Path(tempfile.gettempdir()) / "loadkit-netns"
_counter = itertools.count()


class NetnsError(RuntimeError):
    """A namespace could not be made or removed (the ``ip`` command's message included)."""


@dataclass
class TestHost:
    """A network namespace with one address; see the module docstring."""

    __test__ = False  # not a test class, whatever pytest thinks of its name

    name: str  # the namespace
    veth: str  # this namespace's end of the pair
    address: str  # the host's address (inside the namespace)
    gateway: str  # this side's address, as the host sees it
    _lock: IO[bytes] | None = None
    _procs: list[subprocess.Popen[Any]] = field(default_factory=list)

    def run(self, argv: Sequence[str], **popen: Any) -> subprocess.Popen[Any]:
        """Start ``argv`` inside the namespace (``ip netns exec``); it is stopped with the host.
        Keyword arguments go to ``subprocess.Popen``."""
        proc = subprocess.Popen(
            ["ip", "netns", "exec", self.name, *argv], start_new_session=True, **popen
        )
        self._procs.append(proc)
        return proc

    def close(self) -> None:
        """Stop what runs inside, delete the pair and the namespace; :class:`NetnsError` if the
        namespace is still there after that."""
        for proc in self._procs:
            _stop(proc)
        self._procs.clear()
        # anything the started processes left behind in the namespace (a daemonised child)
        pids = _ip("netns", "pids", self.name, check=False).split()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid), signal.SIGKILL)
        _ip("link", "del", self.veth, check=False)  # deletes both ends
        _ip("netns", "del", self.name, check=False)
        if self._lock is not None:
            self._lock.close()
            self._lock = None
        if self.name in _namespaces():
            raise NetnsError(f"network namespace {self.name} could not be deleted")


def run(host: TestHost, argv: Sequence[str], **popen: Any) -> subprocess.Popen[Any]:
    """Start ``argv`` inside ``host``'s namespace (see :meth:`TestHost.run`)."""
    return host.run(argv, **popen)


def available() -> str | None:
    """Why namespaces cannot be made here (``None`` when they can: root and ``ip``)."""
    if os.geteuid() != 0:
        return "network namespaces need root (CI runs these tests as root)"
    if shutil.which("ip") is None:
        return "the ip command (iproute2) is not installed"
    return None


@contextlib.contextmanager
def test_host() -> Iterator[TestHost]:
    """A new test host for the ``with`` block; deleted at its end (see the module docstring)."""
    host = create_host()
    try:
        yield host
    finally:
        host.close()


test_host.__test__ = False  # type: ignore[attr-defined]


def create_host() -> TestHost:
    """A new test host; the caller must :meth:`~TestHost.close` it."""
    reason = available()
    if reason is not None:
        raise NetnsError(reason)
    _sweep_stale()
    pid = os.getpid()
    n = next(_counter) % 1000
    name = f"{_PREFIX}{pid}n{n}"  # 15 characters at most: a veth name's limit
    block, lock = _reserve((pid * 4 + n) % BLOCKS)
    base = int(RANGE.network_address) + 4 * block
    gateway, address = str(ipaddress.ip_address(base + 1)), str(ipaddress.ip_address(base + 2))
    host = TestHost(name=name, veth=name, address=address, gateway=gateway, _lock=lock)
    try:
        _ip("netns", "add", name)
        _ip("-n", name, "link", "set", "lo", "up")
        _ip("link", "add", name, "type", "veth", "peer", "name", "eth0", "netns", name)
        _ip("addr", "add", f"{gateway}/30", "dev", name)
        _ip("link", "set", name, "up")
        _ip("-n", name, "addr", "add", f"{address}/30", "dev", "eth0")
        _ip("-n", name, "link", "set", "eth0", "up")
    except BaseException:
        host.close()
        raise
    return host


def wait_port(
    host: TestHost, port: int, proc: subprocess.Popen[Any] | None = None, timeout: float = 15.0
) -> None:
    """Wait until ``host.address:port`` accepts connections (from this namespace)."""
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(OSError), socket.create_connection((host.address, port), 0.5):
            return
        if proc is not None and proc.poll() is not None:
            raise NetnsError(f"the process in {host.name} exited ({proc.returncode})")
        if time.monotonic() > deadline:
            raise NetnsError(f"nothing listens on {host.address}:{port} after {timeout:g}s")
        time.sleep(0.05)


# -- pytest fixtures ----------------------------------------------------------------------------


@pytest.fixture
def netns_host() -> Iterator[TestHost]:
    """A fresh test host for one test (skipped, with the reason, without root)."""
    reason = available()
    if reason is not None:
        if os.geteuid() == 0:  # root: CI must run these, so a missing tool is a failure
            pytest.fail(f"cannot make a test host: {reason}")
        pytest.skip(reason)
    with test_host() as host:
        yield host


@pytest.fixture(scope="session")
def tls_ca() -> trustme.CA:
    """A certificate authority for the session's test certificates (``trustme``)."""
    return trustme.CA()


@dataclass(frozen=True)
class TlsFiles:
    """PEM files: ``ca`` (the CA to trust), ``cert`` (certificate chain) and ``key``."""

    ca: Path
    cert: Path
    key: Path


def issue(ca: trustme.CA, directory: Path, *names: str, stem: str = "server") -> TlsFiles:
    """A certificate for ``names`` (host names or IP addresses; trustme's certificates serve as
    server and client certificates), written to ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    leaf = ca.issue_cert(*names)
    files = TlsFiles(directory / "ca.pem", directory / f"{stem}.pem", directory / f"{stem}.key")
    ca.cert_pem.write_to_path(str(files.ca))
    leaf.cert_chain_pems[0].write_to_path(str(files.cert))
    for pem in leaf.cert_chain_pems[1:]:
        pem.write_to_path(str(files.cert), append=True)
    leaf.private_key_pem.write_to_path(str(files.key))
    return files


@dataclass(frozen=True)
class TlsHost:
    """A test host and a server certificate for its address and :data:`SERVER_NAME`."""

    host: TestHost
    server: TlsFiles


@pytest.fixture
def tls_host(netns_host: TestHost, tls_ca: trustme.CA, tmp_path: Path) -> TlsHost:
    return TlsHost(netns_host, issue(tls_ca, tmp_path / "tls", netns_host.address, SERVER_NAME))


# -- internals ----------------------------------------------------------------------------------


def _ip(*args: str, check: bool = True) -> str:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if check and done.returncode != 0:
        raise NetnsError(f"ip {' '.join(args)}: {done.stderr.strip() or done.returncode}")
    return done.stdout


def _namespaces() -> set[str]:
    return {line.split()[0] for line in _ip("netns", "list", check=False).splitlines() if line}


def _reserve(start: int) -> tuple[int, IO[bytes]]:
    """The first free /30 from ``start``: its lock file taken, no address of it in use here."""
    _LOCKS.mkdir(mode=0o755, exist_ok=True)
    used = _addresses_in_use()
    for k in range(256):
        block = (start + k) % BLOCKS
        handle = (_LOCKS / f"block-{block}.lock").open("wb")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            continue
        base = int(RANGE.network_address) + 4 * block
        if any(base <= a < base + 4 for a in used):  # left by a process that was killed
            handle.close()
            continue
        return block, handle
    raise NetnsError("no free /30 in 198.18.0.0/15 near this pid (256 tried)")


def _addresses_in_use() -> set[int]:
    out = set()
    for line in _ip("-o", "-4", "addr", "show", check=False).splitlines():
        parts = line.split()
        if "inet" in parts:
            address = ipaddress.ip_interface(parts[parts.index("inet") + 1]).ip
            if address in RANGE:
                out.add(int(address))
    return out


def _sweep_stale() -> None:
    """Delete test hosts whose process is gone (killed before its cleanup could run)."""
    for name in _namespaces():
        if not name.startswith(_PREFIX) or "n" not in name[len(_PREFIX) :]:
            continue
        pid = name[len(_PREFIX) :].split("n", 1)[0]
        if not pid.isdigit() or Path(f"/proc/{pid}").exists():
            continue
        for other in _ip("netns", "pids", name, check=False).split():
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(other), signal.SIGKILL)
        _ip("link", "del", name, check=False)
        _ip("netns", "del", name, check=False)


def _stop(proc: subprocess.Popen[Any]) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
    for stream in (proc.stdin, proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()
