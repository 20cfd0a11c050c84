"""Risk control: the active policy (``normal`` or ``peak``) and one-time passwords for large
movements.

At peak the wallet asks for an OTP on smaller amounts and limits each user harder — the "security
throttling" users meet on Double 11. An OTP is a real second factor here: the code reaches the
user through a separate channel (the test "SMS" outbox, ``GET /admin/otp-outbox/{challenge}``,
which a user's bearer token cannot read), and wrong codes are counted per challenge in the
database, so that every instance sees them and the 5th locks the challenge.

Codes are not stored anywhere: a code is an HMAC of its (random) challenge id under the wallet's
secret, and the database keeps only an HMAC of the right answer bound to the caller, the
idempotency key and the request (``code_mac``), which is worthless without the secret::

    otp = Otp(b"secret", ttl=300, max_failures=5)
    challenge = otp.new_challenge()
    code = otp.code(challenge)                            # what the SMS carries
    otp.mac(7, "key-1", "hash-1", code)                   # what the database compares
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Mapping

from loadkit.wallet.config import RiskPolicy
from loadkit.wallet.contract import PolicyName
from loadkit.wallet.problems import Problem

#: what a challenge id looks like (``c2.`` + 24 URL-safe characters)
CHALLENGE_RE = re.compile(r"c2\.[A-Za-z0-9_-]{24}")


class Otp:
    """Challenge ids, their six-digit codes, and the MAC of a submitted code."""

    def __init__(self, secret: bytes, *, ttl: int, max_failures: int) -> None:
        self._key = hashlib.sha256(b"loadkit.wallet.otp|" + secret).digest()
        self.ttl = ttl
        self.max_failures = max_failures

    def _hmac(self, message: bytes) -> bytes:
        return hmac.new(self._key, message, hashlib.sha256).digest()

    @staticmethod
    def new_challenge() -> str:
        """A fresh, unguessable challenge id."""
        return "c2." + secrets.token_urlsafe(18)

    def code(self, challenge: str) -> str:
        """The six-digit code the user receives by SMS for ``challenge``."""
        number = int.from_bytes(self._hmac(b"code|" + challenge.encode())[:4], "big")
        return f"{number % 1_000_000:06d}"

    def mac(self, account_id: int, key: str, request_hash: str, code: str) -> str:
        """What the database compares: the code bound to the caller, the key and the request.
        Any text is accepted (a malformed code simply does not match)."""
        message = f"answer|{account_id}|{key}|{request_hash}|{code}"
        return self._hmac(message.encode("utf-8", "surrogatepass")).hex()


class Risk:
    """The active risk policy; what a payment or a transfer of some amount needs."""

    def __init__(
        self,
        policies: Mapping[PolicyName, RiskPolicy],
        initial: PolicyName,
        *,
        secret: bytes,
        otp_ttl: int,
        otp_max_failures: int,
    ) -> None:
        self.policies = dict(policies)
        self.policy = self.policies[initial]
        self.otp = Otp(secret, ttl=otp_ttl, max_failures=otp_max_failures)

    def switch(self, name: PolicyName) -> RiskPolicy:
        self.policy = self.policies[name]
        return self.policy

    @staticmethod
    def over_limit(amount: int, policy: RiskPolicy) -> Problem | None:
        """The 422 for an amount over the policy's maximum (stored under the key), or None."""
        if amount <= policy.max_amount:
            return None
        return Problem(
            422,
            "AMOUNT_OVER_LIMIT",
            f"amount {amount} is over the {policy.name.value} policy's limit "
            f"of {policy.max_amount}",
            extra={"policy": policy.name.value, "max_amount": policy.max_amount},
        )

    @staticmethod
    def otp_required(challenge: str, expires_in: int, policy: RiskPolicy) -> Problem:
        """The 403 that asks for a one-time password (never stored: a retry with the code
        continues the same movement)."""
        return Problem(
            403,
            "OTP_REQUIRED",
            f"amounts over {policy.otp_threshold} need a one-time password: a code was sent for "
            "otp_challenge; retry with header X-OTP and the same Idempotency-Key",
            extra={
                "otp_challenge": challenge,
                "expires_in": expires_in,
                "policy": policy.name.value,
                "otp_threshold": policy.otp_threshold,
            },
        )
