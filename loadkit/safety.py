"""Safe by default: load, probes and faults go to loopback only, unless the user allows more.

The one place that decides whether loadkit may talk to a host. Loopback (127.0.0.0/8, ::1,
and names that resolve only to those) is always allowed. Anything else only when an allowlist
entry names it: ``--allow HOST|IP|CIDR|*.SUFFIX`` on the command line, or a system file's
``allow:`` list. A name is resolved once, when the run starts, and **every** address it
resolves to must be allowed too: ``--allow shop.test.internal --allow 198.18.0.0/30`` allows
that name as long as it points into that network, and refuses it the day it points elsewhere::

    allow = Allowlist.parse(["shop.test.internal", "198.18.0.0/30"], source="--allow")
    allow.check_url("https://shop.test.internal:8443", what="--target")   # ok: its addresses
    allow.check_url("http://10.0.0.5", what="--target")                   # ConfigError (exit 2)
    Allowlist().check_dsn("postgresql:///db?host=10.0.0.5", what="--pg-dsn")  # ConfigError

A refusal names the host, what it resolved to, and the entry that would allow it.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit

from loadkit.errors import ConfigError

LOOPBACK = "127.0.0.0/8, ::1, localhost"
IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def _literal(host: str) -> IpAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return None


def resolve(host: str) -> tuple[str, ...]:
    """Every address ``host`` resolves to (an IP literal is its own address); empty when the
    name does not resolve."""
    literal = _literal(host)
    if literal is not None:
        return (str(literal),)
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return ()
    seen: dict[str, None] = {}
    for info in infos:
        address = _literal(str(info[4][0]))
        if address is not None:
            seen[str(address)] = None
    return tuple(seen)


def is_loopback(host: str) -> bool:
    """True for a loopback address, or a name whose every address is loopback (``localhost``).
    By address, never by spelling: ``127.evil.com`` is a name like any other."""
    literal = _literal(host)
    if literal is not None:
        return literal.is_loopback
    if host.lower() in ("localhost", "localhost."):
        return True  # resolves to loopback by RFC 6761, even without /etc/hosts
    addresses = resolve(host)
    return bool(addresses) and all(ipaddress.ip_address(a).is_loopback for a in addresses)


def is_every_interface(host: str) -> bool:
    """True for the unspecified address (IPv4's all-zeros or ``::``): a server bound there
    listens on every interface, which is never a default and always needs its own allow."""
    literal = _literal(host)
    return literal is not None and literal.is_unspecified


@dataclass(frozen=True)
class Entry:
    """One allowlist entry: a host name, ``*.suffix``, an address or a network; ``source``
    says where it came from (``--allow``, ``systems/staging.yaml:7``)."""

    text: str
    source: str
    name: str | None = None  # an exact host name (lower case)
    suffix: str | None = None  # ".test.internal" for "*.test.internal"
    network: IpNetwork | None = None  # an address is a /32 (/128) network

    @classmethod
    def parse(cls, text: str, source: str) -> Entry:
        raw = text.strip()
        if not raw:
            raise ConfigError(f"{source}: an empty entry; expected HOST, IP, CIDR or *.SUFFIX")
        if raw.startswith("*."):
            suffix = raw[1:].lower().rstrip(".")
            if not _is_hostname(suffix[1:]):
                raise ConfigError(
                    f"{source}: {raw!r} is not a valid *.SUFFIX (like *.test.internal)"
                )
            return cls(raw, source, suffix=suffix)
        try:
            network = ipaddress.ip_network(raw.strip("[]"), strict=False)
        except ValueError:
            network = None
        if network is not None:
            if network.prefixlen == 0:
                raise ConfigError(
                    f"{source}: {raw!r} allows every address; name the hosts or networks "
                    "your staging system uses"
                )
            return cls(raw, source, network=network)
        if "/" in raw or not _is_hostname(raw):
            raise ConfigError(
                f"{source}: {raw!r} is not a host name, an IP address, a CIDR network "
                "(198.18.0.0/15) or *.SUFFIX"
            )
        return cls(raw, source, name=raw.lower().rstrip("."))

    def matches_name(self, host: str) -> bool:
        host = host.lower().rstrip(".")
        if self.name is not None:
            return host == self.name
        if self.suffix is not None:
            return host.endswith(self.suffix) and len(host) > len(self.suffix)
        return False

    def matches_address(self, address: IpAddress) -> bool:
        return self.network is not None and address in self.network


def _is_hostname(text: str) -> bool:
    labels = text.rstrip(".").split(".")
    return (
        bool(text)
        and len(text) <= 253
        and all(
            0 < len(label) <= 63
            and label.replace("-", "").replace("_", "").isalnum()
            and not label.startswith("-")
            for label in labels
        )
    )


@dataclass(frozen=True)
class Checked:
    """A host that passed: its name as written and the addresses it resolved to then."""

    host: str
    addresses: tuple[str, ...]


class Allowlist:
    """Loopback, plus the entries the user gave (see the module docstring)."""

    def __init__(
        self, entries: Iterable[Entry] = (), *, resolver: Callable[[str], tuple[str, ...]] = resolve
    ) -> None:
        self.entries = tuple(entries)
        #: name → addresses (the system's resolver; tests give a fixed table)
        self.resolver = resolver

    @classmethod
    def parse(cls, texts: Iterable[str], *, source: str = "--allow") -> Allowlist:
        return cls(Entry.parse(t, source) for t in texts)

    def __add__(self, other: Allowlist) -> Allowlist:
        return Allowlist((*self.entries, *other.entries), resolver=self.resolver)

    def __bool__(self) -> bool:
        return bool(self.entries)

    @property
    def texts(self) -> list[str]:
        return [e.text for e in self.entries]

    def describe(self) -> str:
        return ", ".join([LOOPBACK, *self.texts])

    # -- checks -------------------------------------------------------------------------------

    def allows_every_interface(self, host: str) -> bool:
        """``host`` (the unspecified address) was allowed by itself, exactly: ``--allow ::``
        or its IPv4 twin. No wider entry counts, not even the all-addresses network."""
        literal = _literal(host)
        return literal is not None and any(
            e.network is not None
            and e.network.prefixlen == e.network.max_prefixlen
            and e.network.network_address == literal
            for e in self.entries
        )

    def address_allowed(self, address: str) -> bool:
        ip = ipaddress.ip_address(address)
        return ip.is_loopback or any(e.matches_address(ip) for e in self.entries)

    def check_host(self, host: str, *, what: str) -> Checked:
        """``host`` (a name or an address) and every address it resolves to must be allowed;
        else a :class:`ConfigError` saying what it resolved to and how to allow it."""
        host = host.strip("[]")
        literal = _literal(host)
        addresses = (str(literal),) if literal is not None else self.resolver(host)
        if literal is not None:
            if self.address_allowed(str(literal)):
                return Checked(host, addresses)
            raise ConfigError(
                f"{what}: {host} is not on loopback and not allowed; loadkit only sends load "
                f"and faults to {self.describe()} — to allow it, add --allow {host} (or its "
                f"network, e.g. --allow {_network_hint(literal)}), or list it under allow: in a "
                "system file"
            )
        if host.lower().rstrip(".") == "localhost" and not addresses:
            addresses = ("127.0.0.1",)
        loopback_name = bool(addresses) and all(
            ipaddress.ip_address(a).is_loopback for a in addresses
        )
        if not loopback_name and not self._names_allow(host):
            resolved = f" (resolves to {', '.join(addresses)})" if addresses else ""
            more = "".join(f" --allow {a}" for a in addresses if not self.address_allowed(a))
            raise ConfigError(
                f"{what}: {host}{resolved} is not on loopback and not allowed; loadkit only "
                f"sends load and faults to {self.describe()} — to allow it, add --allow "
                f"{host}{more}, or list it under allow: in a system file"
            )
        if not addresses:
            raise ConfigError(f"{what}: {host} does not resolve to any address")
        refused = [a for a in addresses if not self.address_allowed(a)]
        if refused:
            raise ConfigError(
                f"{what}: {host} is allowed, but it resolves to {', '.join(addresses)}, and "
                f"{', '.join(refused)} is not allowed (a name must point where you allowed); "
                f"to allow it, add --allow {' --allow '.join(refused)} (or their network)"
            )
        return Checked(host, addresses)

    def _names_allow(self, host: str) -> bool:
        return any(e.matches_name(host) for e in self.entries)

    def check_url(
        self, url: str, *, what: str, schemes: Sequence[str] = ("http", "https")
    ) -> Checked:
        """An ``http(s)`` URL whose host is allowed (see :meth:`check_host`)."""
        try:
            parts = urlsplit(url)
            host = parts.hostname or ""
            parts.port  # noqa: B018 — a bad port raises here
        except ValueError as exc:
            raise ConfigError(f"{what}: {url!r} is not a valid URL ({exc})") from exc
        if parts.scheme not in schemes or not host:
            kind = "an http(s)" if set(schemes) == {"http", "https"} else f"a {schemes[0]}"
            example = f"{schemes[0]}://127.0.0.1:8080"
            raise ConfigError(f"{what}: {url!r} is not {kind} URL like {example}")
        return self.check_host(host, what=what)

    def check_dsn(self, dsn: str, *, what: str) -> list[Checked]:
        """Every host a PostgreSQL DSN may connect to: the URL's host(s), ``host=`` and
        ``hostaddr=`` parameters (URL or ``key=value`` form). A Unix socket directory is local
        and allowed."""
        hosts = dsn_hosts(dsn, what=what)
        return [self.check_host(h, what=what) for h in hosts if not h.startswith("/")]


def dsn_hosts(dsn: str, *, what: str = "DSN") -> list[str]:
    """The hosts a libpq connection string names (``[]``: the local Unix socket)."""
    text = dsn.strip()
    hosts: list[str] = []
    if text.startswith(("postgresql://", "postgres://")):
        parts = urlsplit(text)
        netloc = parts.netloc.rsplit("@", 1)[-1]
        for item in filter(None, netloc.split(",")):
            host = item.rsplit(":", 1)[0] if not item.startswith("[") else item.split("]")[0][1:]
            if item.startswith("[") or item.count(":") <= 1:
                hosts.append(unquote(host))
            else:
                hosts.append(item)  # a bare IPv6 address without a port
        query = parse_qs(parts.query)
        for key in ("host", "hostaddr"):
            for value in query.get(key, []):
                hosts.extend(h for h in value.split(",") if h)
        return hosts
    if "=" in text:
        for item in text.split():
            key, _, value = item.partition("=")
            if key in ("host", "hostaddr"):
                hosts.extend(h for h in value.strip("'\"").split(",") if h)
        return hosts
    raise ConfigError(f"{what}: expected a PostgreSQL DSN like postgresql://user@127.0.0.1/db")


def _network_hint(address: IpAddress) -> str:
    prefix = 24 if address.version == 4 else 64
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))


def check_loopback_url(url: str, *, what: str = "target URL") -> None:
    """:class:`ConfigError` unless ``url`` is an http(s) URL of a loopback host (no allowlist)."""
    Allowlist().check_url(url, what=what)
