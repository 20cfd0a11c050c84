"""TLS for ``https://`` targets: the settings of one target (:class:`Tls`) and the client context
built from them (:func:`client_context`).

Verification is on unless ``verify`` is false: the server's certificate must chain to the
system's CAs, or to ``ca`` (a PEM bundle that *replaces* the system's, like curl's ``--cacert``),
and name the URL's host (or ``server_name``, which is also sent as SNI). ``cert`` and ``key`` are
the client certificate for servers that ask for one (mTLS). Like :mod:`loadkit.load.runconfig`,
this module imports neither Locust nor gevent, so the orchestrator can check the files before
anything starts::

    tls = Tls(ca="certs/staging-ca.pem", cert="certs/loadkit.pem", key="certs/loadkit.key")
    tls.check("--ca")                     # ConfigError naming the file that does not load
    context = client_context(tls)         # ssl.SSLContext (gevent's in a load process)

Workers on other machines do not have the files: :meth:`Tls.inline` reads them into ``*_pem``
fields, which is what the master sends them (``RunConfig.to_dict(inline=True)``); the
run directory's ``run-config.json`` keeps the paths only, never a private key.
"""

from __future__ import annotations

import contextlib
import os
import ssl
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from loadkit.errors import ConfigError

#: what ``set_alpn_protocols`` offers: the client speaks HTTP/1.1 only
ALPN = ("http/1.1",)


@dataclass(frozen=True)
class Tls:
    """How to speak TLS to one ``https://`` target (see the module docstring).

    ``ca``, ``cert`` and ``key`` are file paths; ``ca_pem``, ``cert_pem`` and ``key_pem`` their
    contents, set by :meth:`inline` (a content wins over its path). ``key`` may be omitted when
    ``cert`` holds the key too. ``verify=False`` accepts any certificate: reports must say so
    (:attr:`insecure`)."""

    verify: bool = True
    ca: str | None = None
    cert: str | None = None
    key: str | None = None
    server_name: str | None = None
    ca_pem: str | None = None
    cert_pem: str | None = None
    key_pem: str | None = None

    @property
    def insecure(self) -> bool:
        """True when certificates are not verified (``verify: false``): say it loudly."""
        return not self.verify

    @property
    def client_certificate(self) -> bool:
        """True when a client certificate is presented (mTLS)."""
        return self.cert is not None or self.cert_pem is not None

    def problems(self) -> list[str]:
        """What is wrong with the combination of settings (files are not read)."""
        out = []
        if not self.verify and (self.ca or self.ca_pem):
            out.append("ca is set but verify is false: drop one (a CA is only used to verify)")
        if (self.key or self.key_pem) and not self.client_certificate:
            out.append("key is set without cert: a client key needs its certificate")
        name = self.server_name
        if name is not None and (not name or any(c in name for c in "/:@ \t")):
            out.append(f"server_name {name!r} is not a host name")
        return out

    def check(self, where: str = "tls") -> None:
        """:class:`ConfigError` (prefixed ``where``) unless these settings make a client context
        (every file exists and parses, the key matches the certificate)."""
        problems = self.problems()
        if problems:
            raise ConfigError(f"{where}: {problems[0]}")
        client_context(self, where=where)

    def inline(self) -> Tls:
        """The same settings with the files' contents in ``*_pem`` (for processes on other
        machines); :class:`ConfigError` when a file cannot be read."""
        return replace(
            self,
            ca_pem=self.ca_pem or _read(self.ca, "ca"),
            cert_pem=self.cert_pem or _read(self.cert, "cert"),
            key_pem=self.key_pem or _read(self.key, "key"),
        )

    def to_dict(self, *, inline: bool = False) -> dict[str, Any]:
        """The JSON form: set fields only; the ``*_pem`` contents only when ``inline``."""
        out: dict[str, Any] = {"verify": self.verify}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "verify" or value is None:
                continue
            if f.name.endswith("_pem") and not inline:
                continue
            out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Tls:
        """Read :meth:`to_dict`'s form (unknown keys are ignored); ``TypeError``/``ValueError``
        when a value has the wrong type."""
        verify = data.get("verify", True)
        if not isinstance(verify, bool):
            raise ValueError(f"tls.verify must be true or false, got {verify!r}")
        values: dict[str, Any] = {"verify": verify}
        for f in fields(cls):
            if f.name == "verify" or data.get(f.name) is None:
                continue
            value = data[f.name]
            if not isinstance(value, str):
                raise ValueError(f"tls.{f.name} must be a string, got {value!r}")
            values[f.name] = value
        return cls(**values)


def client_context(
    tls: Tls, *, factory: type[ssl.SSLContext] = ssl.SSLContext, where: str = "tls"
) -> ssl.SSLContext:
    """An ``ssl.SSLContext`` (``factory``: gevent's ``SSLContext`` in a load process) for
    ``tls``; :class:`ConfigError` naming the file that does not load::

        context = client_context(Tls(ca="ca.pem"), factory=gevent.ssl.SSLContext)
        sock = context.wrap_socket(raw, server_hostname="shop.test.internal")
    """
    context = factory(ssl.PROTOCOL_TLS_CLIENT)  # hostname check and CERT_REQUIRED
    if not tls.verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    elif tls.ca_pem is not None:
        _load(where, "ca", tls.ca or "(inline)", context.load_verify_locations, cadata=tls.ca_pem)
    elif tls.ca is not None:
        _load(where, "ca", tls.ca, context.load_verify_locations, cafile=tls.ca)
    else:
        context.load_default_certs(ssl.Purpose.SERVER_AUTH)
    if tls.client_certificate:
        for name, path, inline in (("cert", tls.cert, tls.cert_pem), ("key", tls.key, tls.key_pem)):
            if path is not None and inline is None and not Path(path).is_file():
                raise ConfigError(f"{where}: {name} {path}: no such file")
        name = tls.cert or "(inline)"
        with _files(tls) as (cert, key):
            try:
                context.load_cert_chain(cert, key)
            except ssl.SSLError as exc:
                if exc.reason == "KEY_VALUES_MISMATCH":
                    reason = f"key {tls.key or '(inline)'} is not this certificate's key"
                elif key is None:
                    reason = "holds no usable certificate and private key (give key too?)"
                else:
                    reason = f"not usable PEM ({exc.reason or exc})"
                raise ConfigError(f"{where}: cert {name}: {reason}") from None
    context.set_alpn_protocols(list(ALPN))
    return context


def _load(where: str, field: str, name: str, load: Any, *args: Any, **kwargs: Any) -> None:
    try:
        load(*args, **kwargs)
    except FileNotFoundError:
        raise ConfigError(f"{where}: {field} {name}: no such file") from None
    except ssl.SSLError as exc:
        reason = exc.reason or exc.strerror or str(exc)
        raise ConfigError(f"{where}: {field} {name}: not usable PEM ({reason})") from None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{where}: {field} {name}: {exc}") from None


@contextlib.contextmanager
def _files(tls: Tls) -> Iterator[tuple[str, str | None]]:
    """Paths of the client certificate and key; inline contents go to private temporary files
    for the moment of loading (``load_cert_chain`` reads files only)."""
    if tls.cert_pem is None:
        assert tls.cert is not None
        yield tls.cert, tls.key
        return
    with tempfile.TemporaryDirectory(prefix="loadkit-tls-") as tmp:  # mode 0700
        cert = Path(tmp, "cert.pem")
        cert.write_text(tls.cert_pem)
        key = None
        if tls.key_pem is not None:
            key = Path(tmp, "key.pem")
            fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(tls.key_pem)
        yield str(cert), None if key is None else str(key)


def _read(path: str | None, field: str) -> str | None:
    if path is None:
        return None
    try:
        return Path(path).read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"tls.{field} {path}: cannot read ({exc})") from None
