"""Client network classes: a Toxiproxy proxy per class and target, with the class's toxics.

A profile's ``network`` section (e.g. wifi 70%, weak 4G 30%) becomes, for every target URL and
every class that has a toxic, a proxy in front of that target carrying a latency/jitter toxic and
a bandwidth toxic on its responses. Users of that class send through it. Classes without toxics
use the target directly::

    with NetworkRouting(tp, profile.network, ["http://127.0.0.1:8001"]) as routes:
        routes.urls  # {"weak-4g": ["http://127.0.0.1:41234"]}
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from types import TracebackType
from urllib.parse import urlsplit

from loadkit.profile.model import NetworkClass
from loadkit.stack.ports import free_port
from loadkit.stack.toxiproxy import ToxiproxyClient


def has_toxics(cls: NetworkClass) -> bool:
    return bool(cls.latency_ms or cls.jitter_ms or cls.bandwidth_kbps)


class NetworkRouting:
    """Creates the proxies on enter, deletes them on exit (however the run ends)."""

    def __init__(
        self,
        toxiproxy: ToxiproxyClient,
        classes: Sequence[NetworkClass],
        target_urls: Sequence[str],
        *,
        prefix: str = "net",
    ) -> None:
        self.toxiproxy = toxiproxy
        self.classes = [c for c in classes if has_toxics(c)]
        self.target_urls = list(target_urls)
        self.prefix = prefix
        self.urls: dict[str, list[str]] = {}
        self.proxies: list[str] = []

    def __enter__(self) -> NetworkRouting:
        try:
            for cls in self.classes:
                urls = []
                for i, url in enumerate(self.target_urls, start=1):
                    parts = urlsplit(url)
                    default = 443 if parts.scheme == "https" else 80
                    upstream = f"{parts.hostname}:{parts.port or default}"
                    name = f"{self.prefix}-{cls.name}-{i}"
                    listen = free_port()
                    self.toxiproxy.create_proxy(name, listen=listen, upstream=upstream)
                    self.proxies.append(name)
                    if cls.latency_ms or cls.jitter_ms:
                        self.toxiproxy.add_toxic(
                            name,
                            "latency",
                            attributes={
                                "latency": int(cls.latency_ms),
                                "jitter": int(cls.jitter_ms),
                            },
                        )
                    if cls.bandwidth_kbps:
                        # Toxiproxy's bandwidth toxic takes KB/s
                        rate = max(1, int(cls.bandwidth_kbps / 8))
                        self.toxiproxy.add_toxic(name, "bandwidth", attributes={"rate": rate})
                    # the scheme stays: Toxiproxy is TCP, TLS passes through to the target
                    urls.append(parts._replace(netloc=f"127.0.0.1:{listen}").geturl())
                self.urls[cls.name] = urls
        except BaseException:
            self.close()
            raise
        return self

    def close(self) -> None:
        for name in self.proxies:
            with contextlib.suppress(Exception):
                self.toxiproxy.delete_proxy(name)
        self.proxies.clear()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
