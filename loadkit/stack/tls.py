"""The stack's own certificate authority: ``loadkit stack up --tls`` serves every wallet over HTTPS.

``up`` makes a fresh CA for the stack (``ca.pem`` beside the manifest; its key ``ca.key``
readable by its owner only) and issues each wallet instance a certificate for its name,
``localhost``, 127.0.0.1 and ::1 (``tls/wallet-1.pem`` and its owner-only key). Everything that
talks to the wallets verifies against that CA: the stack's readiness checks and admin client
(:func:`verify_context`), the chaos controller, and runs, whose load target gets ``ca`` and,
through the client-side proxies (Toxiproxy passes TLS through, it is TCP), the wallet's name as
``server_name``::

    ca = StackCA.create(Path(".loadkit/stack"))
    cert, key = ca.issue("wallet-1")          # .loadkit/stack/tls/wallet-1.pem, .key
    httpx.get("https://127.0.0.1:8001/readyz", verify=verify_context(ca.cert))

Keys are ECDSA P-256; the CA lasts a year, a wallet's certificate 90 days (a stack lives hours).
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import ipaddress
import os
import ssl
from dataclasses import dataclass
from pathlib import Path

CA_CERT = "ca.pem"
CA_KEY = "ca.key"
#: where the wallets' certificates and keys go, inside the stack directory
CERTS = "tls"
_CA_DAYS = 365
_LEAF_DAYS = 90


def _write_private(path: Path, data: bytes) -> None:
    """Write a private key readable by its owner only (created so: never readable in between)."""
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


@dataclass(frozen=True)
class StackCA:
    """A stack's CA: its certificate and key files (see the module docstring)."""

    cert: Path
    key: Path

    @classmethod
    def create(cls, stack_dir: Path) -> StackCA:
        """A new CA in ``stack_dir`` (replacing one a previous stack left there)."""
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        stack_dir.mkdir(parents=True, exist_ok=True)
        key = ec.generate_private_key(ec.SECP256R1())
        tag = hashlib.sha256(str(stack_dir.absolute()).encode()).hexdigest()[:8]
        name = x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "loadkit"),
                x509.NameAttribute(NameOID.COMMON_NAME, f"loadkit stack CA {tag}"),
            ]
        )
        now = dt.datetime.now(dt.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(days=_CA_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
            )
            .sign(key, hashes.SHA256())
        )
        ca = cls(stack_dir / CA_CERT, stack_dir / CA_KEY)
        _write_private(
            ca.key,
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ),
        )
        ca.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        ca.cert.chmod(0o644)
        return ca

    def issue(self, name: str) -> tuple[Path, Path]:
        """A server certificate for wallet ``name`` (and localhost, 127.0.0.1, ::1), signed by
        this CA: the paths of its PEM certificate and its owner-only key."""
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

        ca_cert = x509.load_pem_x509_certificate(self.cert.read_bytes())
        ca_key = serialization.load_pem_private_key(self.key.read_bytes(), password=None)
        assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        names: list[x509.GeneralName] = [
            x509.DNSName(name),
            x509.DNSName("localhost"),
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
            x509.IPAddress(ipaddress.ip_address("::1")),
        ]
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(days=_LEAF_DAYS))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                critical=False,
            )
            .sign(ca_key, hashes.SHA256())
        )
        folder = self.cert.parent / CERTS
        folder.mkdir(exist_ok=True)
        cert_path, key_path = folder / f"{name}.pem", folder / f"{name}.key"
        _write_private(
            key_path,
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ),
        )
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return cert_path, key_path


def verify_context(ca: str | Path) -> ssl.SSLContext:
    """A client context that trusts ``ca`` only, for ``httpx``'s ``verify=`` (cached per file
    and version of it: a new stack in the same directory has a new CA)."""
    st = os.stat(ca)
    return _context(str(ca), st.st_mtime_ns, st.st_size)


@functools.lru_cache(maxsize=16)
def _context(ca: str, mtime_ns: int, size: int) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=ca)
