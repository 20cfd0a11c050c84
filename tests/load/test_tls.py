"""TLS settings of a target: checks, the client context, and what travels to workers."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
import trustme

from loadkit.errors import ConfigError
from loadkit.load.tls import Tls, client_context
from tests.netns import TlsFiles, issue


@pytest.fixture
def files(tls_ca: trustme.CA, tmp_path: Path) -> tuple[TlsFiles, TlsFiles]:
    """A server certificate and a client certificate from the session's CA."""
    return (
        issue(tls_ca, tmp_path, "127.0.0.1", "shop.test.internal"),
        issue(tls_ca, tmp_path, "loadkit-client", stem="client"),
    )


def test_defaults_verify_against_the_system_cas() -> None:
    tls = Tls()
    assert tls.verify and not tls.insecure and not tls.client_certificate
    context = client_context(tls)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert context.cert_store_stats()["x509_ca"] > 0 or not Path("/etc/ssl/certs").exists()


def test_a_ca_replaces_the_system_cas_and_verify_false_turns_checks_off(
    files: tuple[TlsFiles, TlsFiles],
) -> None:
    server, _ = files
    context = client_context(Tls(ca=str(server.ca)))
    assert context.cert_store_stats()["x509_ca"] == 1
    off = client_context(Tls(verify=False))
    assert off.verify_mode == ssl.CERT_NONE and not off.check_hostname
    assert Tls(verify=False).insecure


@pytest.mark.parametrize(
    ("tls", "message"),
    [
        (Tls(verify=False, ca="ca.pem"), "ca is set but verify is false"),
        (Tls(key="client.key"), "key is set without cert"),
        (Tls(server_name="https://shop"), "is not a host name"),
        (Tls(server_name=""), "is not a host name"),
    ],
)
def test_settings_that_contradict_each_other(tls: Tls, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        tls.check("--ca")


def test_files_that_do_not_load_are_named(files: tuple[TlsFiles, TlsFiles], tmp_path: Path) -> None:
    server, client = files
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    other = issue(trustme.CA(), tmp_path / "other", "loadkit-client", stem="client")
    cases = [
        (Tls(ca=str(tmp_path / "missing.pem")), r"--ca: ca .*missing.pem: no such file"),
        (Tls(ca=str(junk)), r"--ca: ca .*junk.pem: not usable PEM"),
        (Tls(cert=str(junk), key=str(client.key)), r"--ca: cert .*junk.pem: not usable PEM"),
        (Tls(cert=str(client.cert), key=str(tmp_path / "nokey")), r"key .*nokey: no such file"),
        (Tls(cert=str(client.cert), key=str(other.key)), r"key .*is not this certificate's"),
        (Tls(cert=str(client.cert)), r"cert .*client.pem: holds no usable .*give key"),
    ]
    for tls, message in cases:
        with pytest.raises(ConfigError, match=message):
            tls.check("--ca")
    Tls(ca=str(server.ca), cert=str(client.cert), key=str(client.key)).check()


def test_inline_settings_carry_the_files_and_make_the_same_context(
    files: tuple[TlsFiles, TlsFiles],
) -> None:
    server, client = files
    tls = Tls(ca=str(server.ca), cert=str(client.cert), key=str(client.key), server_name="shop")
    assert tls.to_dict() == {
        "verify": True,
        "ca": str(server.ca),
        "cert": str(client.cert),
        "key": str(client.key),
        "server_name": "shop",
    }
    inline = tls.inline()
    wire = inline.to_dict(inline=True)
    assert wire["key_pem"] == client.key.read_text() and wire["ca_pem"] == server.ca.read_text()
    assert "key_pem" not in inline.to_dict()  # a file on disk never holds the key's contents
    back = Tls.from_dict(wire)
    assert back == inline
    # another machine: the paths do not exist there, the contents are enough
    moved = Tls.from_dict({**wire, "ca": "/nowhere/ca.pem", "cert": "/nowhere/c.pem"})
    moved.check()
    assert client_context(moved).cert_store_stats()["x509_ca"] == 1


def test_a_file_that_cannot_be_read_for_workers(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"tls.ca .*gone.pem: cannot read"):
        Tls(ca=str(tmp_path / "gone.pem")).inline()


@pytest.mark.parametrize(
    ("data", "message"),
    [({"verify": "no"}, "tls.verify must be true or false"), ({"ca": 3}, "tls.ca must be")],
)
def test_bad_json_forms(data: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Tls.from_dict(data)
