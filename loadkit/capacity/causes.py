"""The reference wallet's own busy causes while a capacity pass runs: the one scrape of
``wallet_busy_responses_total`` lives in :mod:`loadkit.run.servercauses` (runs write it to
``server-causes.jsonl``); capacity samples it between steps::

    causes = WalletCauses([w.url for w in stack.manifest.wallets])
    causes.sample()                       # call it while the run goes (at most twice a second)
    causes.between(t0 + 12.0, t0 + 15.0)  # {"rate_limited": 180, "db_pool_timeout": 3}
"""

from __future__ import annotations

from loadkit.run.servercauses import WalletCauses

__all__ = ["WalletCauses"]
