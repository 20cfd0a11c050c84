"""The reference wallet service: an async HTTP JSON API on a PostgreSQL double-entry ledger,
with admission control, risk policy, maintenance mode, an admin API and Prometheus metrics.

It is the system under test that loadkit loads and breaks. Run it as
``python -m loadkit.wallet serve ...`` (see ``__main__``), or in-process::

    from loadkit.wallet import WalletConfig, create_app, migrate, seed
    migrate(dsn); seed(dsn, users=100, merchants=10, balance=1_000_000)
"""

from loadkit.wallet.app import create_app
from loadkit.wallet.config import DEFAULT_PASSWORD, PolicyName, UnsafeMode, WalletConfig
from loadkit.wallet.schema import merchant_name, migrate, seed, user_name

__all__ = [
    "DEFAULT_PASSWORD",
    "PolicyName",
    "UnsafeMode",
    "WalletConfig",
    "create_app",
    "merchant_name",
    "migrate",
    "seed",
    "user_name",
]
