"""Configuration of one wallet instance, and the risk policies it can switch between.

Everything an instance needs is in one frozen :class:`WalletConfig`; what the admin API may change
at run time (policy, limits, maintenance) lives in the runtime state, not here::

    config = WalletConfig(dsn="postgresql://loadkit@127.0.0.1:6001/wallet", secret="s",
                          admin_token="a")
    app = create_app(config)
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from loadkit.wallet.contract import (
    ADMIN_TOKEN_ENV,
    DEFAULT_PASSWORD,
    SECRET_ENV,
    PolicyName,
    UnsafeMode,
)

#: the largest amount a bigint column can hold
BIGINT_MAX = 2**63 - 1

CURRENCY = "CNY"


@dataclass(frozen=True)
class RiskPolicy:
    """Thresholds of one risk policy. Amounts are in fen (1 CNY = 100 fen).

    ``otp_threshold``: payments and transfers strictly above it need a one-time password.
    ``max_amount``: payments and transfers above it are refused (422 ``AMOUNT_OVER_LIMIT``).
    ``per_user_rate``/``per_user_burst``: token bucket per account (requests per second).
    """

    name: PolicyName
    otp_threshold: int
    max_amount: int
    per_user_rate: float
    per_user_burst: int


POLICIES: dict[PolicyName, RiskPolicy] = {
    PolicyName.NORMAL: RiskPolicy(
        PolicyName.NORMAL,
        otp_threshold=500_000,
        max_amount=50_000_000,
        per_user_rate=20.0,
        per_user_burst=40,
    ),
    PolicyName.PEAK: RiskPolicy(
        PolicyName.PEAK,
        otp_threshold=200_000,
        max_amount=20_000_000,
        per_user_rate=5.0,
        per_user_burst=10,
    ),
}


@dataclass(frozen=True)
class WalletConfig:
    """Static configuration of one wallet instance.

    Timeouts are in seconds. ``request_deadline`` bounds every request end to end; the database
    timeouts sit inside it so that the cause of a slow answer can be named (``db_pool_timeout``,
    ``db_timeout``) before the deadline itself fires.
    """

    dsn: str
    secret: str
    admin_token: str
    name: str = "wallet"
    pool_size: int = 20
    max_inflight: int = 256
    policy: PolicyName = PolicyName.NORMAL
    #: instance-wide request rate limit (req/s); None = off
    rate_limit: float | None = None
    pool_timeout: float = 0.5
    query_timeout: float = 2.0
    request_deadline: float = 3.0
    connect_timeout: float = 1.0
    #: how long /readyz waits for ``SELECT 1``
    ready_timeout: float = 1.0
    #: deadline of admin requests (seeding thousands of accounts takes a while)
    admin_deadline: float = 300.0
    token_ttl: int = 12 * 3600
    #: anything above this is not an amount but a mistake (422 INVALID_AMOUNT); 10 million CNY
    max_amount: int = 1_000_000_000
    max_body: int = 64 * 1024
    seed_password: str = DEFAULT_PASSWORD
    #: password of the database role in ``dsn`` (None: the DSN's own, or none)
    db_password: str | None = None
    #: an OTP challenge (and its code) stays valid this many seconds
    otp_ttl: int = 300
    #: wrong codes a challenge takes; the last one locks it and refuses the movement for good
    otp_max_failures: int = 5
    #: the token of the test "SMS" outbox; None: the outbox is off (codes go nowhere readable)
    otp_outbox_token: str | None = None
    #: failed logins of one account within ``login_window`` seconds that lock it ...
    login_max_failures: int = 10
    login_window: int = 600
    #: ... for this many seconds
    login_lock: int = 300
    policies: dict[PolicyName, RiskPolicy] = field(default_factory=lambda: dict(POLICIES))
    #: a deliberately unsafe mode (see :class:`UnsafeMode`); None = the safe wallet
    unsafe: UnsafeMode | None = None
    #: ack-before-commit: how often the background writer applies what was acknowledged
    write_behind_interval: float = 0.5

    def __post_init__(self) -> None:
        if not self.secret:
            raise ValueError("secret must not be empty")
        if not self.admin_token:
            raise ValueError("admin_token must not be empty")
        if self.pool_size < 1 or self.max_inflight < 1:
            raise ValueError("pool_size and max_inflight must be at least 1")
        if not 0 < self.max_amount <= BIGINT_MAX:
            raise ValueError("max_amount must be between 1 and the bigint maximum")
        if min(self.otp_ttl, self.otp_max_failures, self.login_max_failures) < 1:
            raise ValueError("otp_ttl, otp_max_failures and login_max_failures must be positive")
        if min(self.login_window, self.login_lock) < 1:
            raise ValueError("login_window and login_lock must be positive")


def secrets_from_env(environ: dict[str, str] | None = None) -> tuple[str, str]:
    """``(secret, admin_token)`` from the environment; ValueError naming what is missing."""
    env = os.environ if environ is None else environ
    missing = [name for name in (SECRET_ENV, ADMIN_TOKEN_ENV) if not env.get(name)]
    if missing:
        raise ValueError(
            "missing environment variable(s): " + ", ".join(missing) + " (the token signing "
            "secret and the admin API token; every instance of one stack must share them)"
        )
    return env[SECRET_ENV], env[ADMIN_TOKEN_ENV]


def optional_from_env(name: str, environ: dict[str, str] | None = None) -> str | None:
    """The value of environment variable ``name``, None when unset or empty."""
    env = os.environ if environ is None else environ
    return env.get(name) or None
