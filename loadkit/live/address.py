"""Where a live output listens: ``--web [ADDR:]PORT`` and ``--metrics [ADDR:]PORT``.

Loopback by default. Another address only when the run's allowlist allows it (``--allow``,
:meth:`loadkit.safety.Allowlist.check_host`), and then only with a token, printed to the
terminal, that every request must carry::

    parse_listen("8089", Allowlist(), what="--web")            # Listen('127.0.0.1', 8089, None)
    parse_listen("198.18.0.1:8089", Allowlist.parse(["198.18.0.0/30"]), what="--web").token
    # 'tJ7…' (a new one for every run)
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
from dataclasses import dataclass

from loadkit.errors import ConfigError
from loadkit.safety import Allowlist, is_every_interface, is_loopback


@dataclass(frozen=True)
class Listen:
    """An address to listen on; ``token`` is None on loopback, where none is needed."""

    host: str
    port: int
    token: str | None = None

    @property
    def loopback(self) -> bool:
        return self.token is None

    def url(self, port: int | None = None, path: str = "/") -> str:
        """The URL people open (``port``: the one really bound, when 0 asked for a free one)."""
        host = "127.0.0.1" if is_every_interface(self.host) else self.host
        if ":" in host:
            host = f"[{host}]"
        query = f"?token={self.token}" if self.token else ""
        return f"http://{host}:{port if port is not None else self.port}{path}{query}"

    def accepts(self, token: str | None) -> bool:
        """True when no token is needed, or ``token`` is the right one (compared in constant
        time)."""
        if self.token is None:
            return True
        return token is not None and hmac.compare_digest(token, self.token)


def parse_listen(text: str, allowlist: Allowlist, *, what: str) -> Listen:
    """``PORT`` (loopback), ``ADDR:PORT`` or ``[V6ADDR]:PORT``. ``PORT`` 0 takes a free port.
    A non-loopback address must be allowed (``--allow``) and gets a token; the unspecified
    address (every interface) must be allowed by itself, exactly (see
    :meth:`Allowlist.allows_every_interface`)."""
    raw = text.strip()
    host, port_text = "127.0.0.1", raw
    if raw.startswith("["):
        host, sep, rest = raw[1:].partition("]")
        if not sep or not rest.startswith(":"):
            raise ConfigError(f"{what}: expected [ADDR]:PORT, got {text!r}")
        port_text = rest[1:]
    elif ":" in raw:
        if raw.count(":") > 1:
            raise ConfigError(f"{what}: an IPv6 address goes in brackets: [{raw}]:PORT")
        host, _, port_text = raw.rpartition(":")
    if not port_text.isdigit() or not 0 <= int(port_text) < 65536:
        raise ConfigError(f"{what}: expected [ADDR:]PORT with a port from 0 to 65535, got {text!r}")
    host = host.strip()
    if not host:
        raise ConfigError(f"{what}: expected [ADDR:]PORT, got {text!r}")
    port = int(port_text)
    if is_every_interface(host):
        if not allowlist.allows_every_interface(host):
            raise ConfigError(
                f"{what}: {host} listens on every interface; name one address, or add "
                f"--allow {host} to mean it (a token will then be needed)"
            )
        return Listen(host, port, _token())
    if _is_loopback_literal(host) or host.lower() == "localhost" or is_loopback(host):
        return Listen(host, port)
    allowlist.check_host(host, what=what)
    return Listen(host, port, _token())


def _is_loopback_literal(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _token() -> str:
    return secrets.token_urlsafe(18)
