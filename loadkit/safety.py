"""Safe by default: load and faults only go to loopback (127.0.0.0/8, ::1, localhost).

check_loopback_url("http://127.0.0.1:8080", what="--target")   # fine
check_loopback_url("http://10.0.0.5", what="--target")         # ConfigError
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from loadkit.errors import ConfigError

LOOPBACK = "127.0.0.0/8, ::1, localhost"


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and any loopback IP address (not for other names)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_loopback_url(url: str, *, what: str = "target URL") -> None:
    """:class:`ConfigError` unless ``url`` is an http(s) URL of a loopback host."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme not in ("http", "https") or not host:
        raise ConfigError(f"{what}: {url!r} is not an http(s) URL like http://127.0.0.1:8080")
    if not is_loopback(host):
        raise ConfigError(
            f"{what}: {host} is not on loopback; loadkit only sends load and faults to "
            f"allowlisted targets ({LOOPBACK})"
        )
