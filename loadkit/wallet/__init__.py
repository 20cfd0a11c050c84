"""The reference wallet service: an async HTTP JSON API on a PostgreSQL double-entry ledger,
with admission control, risk policy, maintenance mode, an admin API and Prometheus metrics.

It is the system under test that loadkit loads and breaks. Run it as
``python -m loadkit.wallet serve ...`` (see ``__main__``), or in-process::

    from loadkit.wallet import WalletConfig, create_app, migrate, seed
    migrate(dsn); seed(dsn, users=100, merchants=10, balance=1_000_000)

Names are imported on first use (PEP 562): what clients share with the server lives in
:mod:`loadkit.wallet.contract`, which imports no server code, so importing it (or a fault that
uses it) never loads Starlette, uvicorn or asyncpg, which only the ``stack`` extra installs.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_LAZY = {
    "DEFAULT_PASSWORD": "loadkit.wallet.contract",
    "PolicyName": "loadkit.wallet.contract",
    "UnsafeMode": "loadkit.wallet.contract",
    "merchant_name": "loadkit.wallet.contract",
    "user_name": "loadkit.wallet.contract",
    "WalletConfig": "loadkit.wallet.config",
    "create_app": "loadkit.wallet.app",
    "migrate": "loadkit.wallet.schema",
    "seed": "loadkit.wallet.schema",
}

if TYPE_CHECKING:
    from loadkit.wallet.app import create_app
    from loadkit.wallet.config import WalletConfig
    from loadkit.wallet.contract import (
        DEFAULT_PASSWORD,
        PolicyName,
        UnsafeMode,
        merchant_name,
        user_name,
    )
    from loadkit.wallet.schema import migrate, seed


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'loadkit.wallet' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


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
