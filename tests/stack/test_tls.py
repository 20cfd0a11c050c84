"""The stack's own CA: owner-only keys, certificates that verify for the wallet's name and for
127.0.0.1 and nothing else, and a context that trusts this CA only."""

from __future__ import annotations

import socket
import ssl
import stat
import threading
from pathlib import Path

import pytest

from loadkit.stack.tls import StackCA, verify_context


def _handshake(ca: Path, cert: Path, key: Path, server_name: str) -> None:
    """A TLS handshake over a socket pair: a server with ``cert``, a client trusting ``ca``."""
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(cert, key)
    left, right = socket.socketpair()
    errors: list[BaseException] = []

    def serve() -> None:
        try:
            with server_ctx.wrap_socket(right, server_side=True) as tls:
                tls.recv(1)
        except (OSError, ssl.SSLError) as exc:
            errors.append(exc)

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        with verify_context(ca).wrap_socket(left, server_hostname=server_name) as tls:
            tls.sendall(b"x")
    finally:
        thread.join(5)
        right.close()


def test_a_stack_ca_signs_what_the_wallets_serve(tmp_path: Path) -> None:
    ca = StackCA.create(tmp_path)
    assert ca.cert == tmp_path / "ca.pem" and ca.key == tmp_path / "ca.key"
    cert, key = ca.issue("wallet-1")
    assert cert == tmp_path / "tls" / "wallet-1.pem"
    for private in (ca.key, key):
        assert stat.S_IMODE(private.stat().st_mode) == 0o600, private
    for name in ("wallet-1", "127.0.0.1", "localhost"):
        _handshake(ca.cert, cert, key, name)
    with pytest.raises(ssl.SSLCertVerificationError, match="mismatch"):
        _handshake(ca.cert, cert, key, "wallet-2")  # another wallet's name
    other = StackCA.create(tmp_path / "other")
    with pytest.raises(ssl.SSLCertVerificationError, match="unable to get local issuer"):
        _handshake(other.cert, cert, key, "wallet-1")  # another stack's CA


def test_a_new_ca_in_the_same_place_is_trusted_anew(tmp_path: Path) -> None:
    first = StackCA.create(tmp_path)
    old_context = verify_context(first.cert)
    second = StackCA.create(tmp_path)  # a new stack in the same directory
    cert, key = second.issue("wallet-1")
    assert verify_context(second.cert) is not old_context
    _handshake(second.cert, cert, key, "wallet-1")
