"""Risk control: the active policy (``normal`` or ``peak``) and one-time passwords for large
movements.

At peak the wallet asks for an OTP on smaller amounts and limits each user harder — the "security
throttling" users meet on Double 11. OTPs are stateless: the challenge and the code are HMACs over
the user, the idempotency key, the request and a time window, so any instance issues or checks
them without shared state::

    risk = Risk(POLICIES, PolicyName.NORMAL, secret=b"s", window=300)
    risk.check(account_id=7, key="k1", request_hash="h", amount=900_000, otp=None)
    # -> Problem 403 OTP_REQUIRED with an otp_challenge
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping

from loadkit.wallet.config import RiskPolicy
from loadkit.wallet.contract import PolicyName
from loadkit.wallet.problems import Problem


class Otp:
    """Stateless OTP challenges (``c1.<account>.<window>.<mac>``) and their six-digit codes."""

    def __init__(self, secret: bytes, window: int) -> None:
        self._key = hashlib.sha256(b"loadkit.wallet.otp|" + secret).digest()
        self.window = window

    def _mac(self, message: str) -> bytes:
        return hmac.new(self._key, message.encode(), hashlib.sha256).digest()

    def _window(self, now: float | None) -> int:
        return int((time.time() if now is None else now) // self.window)

    def challenge(
        self, account_id: int, key: str, request_hash: str, *, now: float | None = None
    ) -> str:
        """The challenge for this request in the current time window."""
        return self._challenge(account_id, key, request_hash, self._window(now))

    def _challenge(self, account_id: int, key: str, request_hash: str, window: int) -> str:
        mac = self._mac(f"challenge|{account_id}|{window}|{key}|{request_hash}").hex()[:24]
        return f"c1.{account_id}.{window}.{mac}"

    def code(self, challenge: str) -> str:
        """The six-digit code the user would receive by SMS for ``challenge``."""
        number = int.from_bytes(self._mac(f"code|{challenge}")[:4], "big") % 1_000_000
        return f"{number:06d}"

    def code_for(self, challenge: str, account_id: int, *, now: float | None = None) -> str:
        """The code for a challenge issued to ``account_id``; 404 for anyone else's, or when the
        challenge is malformed or expired."""
        parts = challenge.split(".")
        current = self._window(now)
        try:
            ok = (
                len(parts) == 4
                and parts[0] == "c1"
                and int(parts[1]) == account_id
                and current - 1 <= int(parts[2]) <= current
            )
        except ValueError:
            ok = False
        if not ok:
            raise Problem(404, "OTP_CHALLENGE_NOT_FOUND", "no such OTP challenge for this account")
        return self.code(challenge)

    def verify(
        self, account_id: int, key: str, request_hash: str, code: str, *, now: float | None = None
    ) -> bool:
        """True when ``code`` answers this request's challenge of this or the previous window."""
        current = self._window(now)
        return any(
            hmac.compare_digest(
                self.code(self._challenge(account_id, key, request_hash, window)), code
            )
            for window in (current, current - 1)
        )


class Risk:
    """The active risk policy and the OTP check of payments and transfers."""

    def __init__(
        self,
        policies: Mapping[PolicyName, RiskPolicy],
        initial: PolicyName,
        *,
        secret: bytes,
        window: int,
    ) -> None:
        self.policies = dict(policies)
        self.policy = self.policies[initial]
        self.otp = Otp(secret, window)

    def switch(self, name: PolicyName) -> RiskPolicy:
        self.policy = self.policies[name]
        return self.policy

    def check(
        self, *, account_id: int, key: str, request_hash: str, amount: int, otp: str | None
    ) -> None:
        """Raise a 422 over the policy's maximum, a 403 when an OTP is needed and missing or
        wrong; return when the movement may go ahead."""
        policy = self.policy
        if amount > policy.max_amount:
            raise Problem(
                422,
                "AMOUNT_OVER_LIMIT",
                f"amount {amount} is over the {policy.name.value} policy's limit "
                f"of {policy.max_amount}",
                extra={"policy": policy.name.value, "max_amount": policy.max_amount},
            )
        if amount <= policy.otp_threshold:
            return
        if otp is None:
            raise Problem(
                403,
                "OTP_REQUIRED",
                f"amounts over {policy.otp_threshold} need a one-time password: fetch the code "
                "for otp_challenge and retry with header X-OTP and the same Idempotency-Key",
                extra={
                    "otp_challenge": self.otp.challenge(account_id, key, request_hash),
                    "policy": policy.name.value,
                    "otp_threshold": policy.otp_threshold,
                },
            )
        if not self.otp.verify(account_id, key, request_hash, otp.strip()):
            raise Problem(403, "OTP_INVALID", "the one-time password is wrong or expired")
