"""The reference wallet's own busy causes while a capacity pass runs, from each instance's
Prometheus ``/metrics`` (``wallet_busy_responses_total{cause=…}``)::

    causes = WalletCauses([w.url for w in stack.manifest.wallets])
    causes.sample()                       # call it while the run goes (at most twice a second)
    causes.between(t0 + 12.0, t0 + 15.0)  # {"rate_limited": 180, "db_pool_timeout": 3}
"""

from __future__ import annotations

import contextlib
import re
import ssl
import time

import httpx

_BUSY_LINE = re.compile(r'^wallet_busy_responses_total\{cause="([^"]+)"\}\s+([0-9.eE+-]+)$', re.M)


class WalletCauses:
    """Samples each wallet instance's ``wallet_busy_responses_total`` (at most twice a second)
    and answers "how many busy answers of each cause between two wall-clock times"."""

    def __init__(self, urls: list[str], verify: ssl.SSLContext | bool = True) -> None:
        self.urls = urls
        self.samples: list[tuple[float, dict[str, dict[str, float]]]] = []
        self._client = httpx.Client(timeout=0.5, verify=verify) if urls else None

    def sample(self, *, force: bool = False) -> None:
        now = time.time()
        if self._client is None or (not force and self.samples and now - self.samples[-1][0] < 0.4):
            return
        counts: dict[str, dict[str, float]] = {}
        for url in self.urls:
            with contextlib.suppress(httpx.HTTPError):
                text = self._client.get(f"{url}/metrics").text
                counts[url] = {m[1]: float(m[2]) for m in _BUSY_LINE.finditer(text)}
        self.samples.append((now, counts))

    def between(self, a: float, b: float) -> dict[str, int] | None:
        """Busy answers by wallet cause in wall-clock ``[a, b]`` (nearest samples)."""
        if len(self.samples) < 2:
            return None
        before = [s for s in self.samples if s[0] <= a] or self.samples[:1]
        after = [s for s in self.samples if s[0] >= b] or self.samples[-1:]
        lo, hi = before[-1][1], after[0][1]
        out: dict[str, int] = {}
        for url, end in hi.items():
            start = lo.get(url)
            if start is None:
                continue
            diffs = {c: end.get(c, 0.0) - start.get(c, 0.0) for c in end}
            if any(d < 0 for d in diffs.values()):
                continue  # the instance restarted: its counters began again
            for cause, d in diffs.items():
                out[cause] = out.get(cause, 0) + round(d)
        return {cause: n for cause, n in out.items() if n}

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
