"""Who is calling: password hashes, stateless bearer tokens, the admin token.

Tokens are HMAC-signed (``v1.<account>.<expiry>.<signature>``) with the secret every instance of
a stack shares, so any instance validates any token without asking the database, and a verified
token is cached so the hot path pays one dict lookup::

    signer = TokenSigner(b"secret", ttl=3600)
    token = signer.issue(42)
    assert signer.verify(token) == 42
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import os
import time

from loadkit.wallet.problems import Problem

_PBKDF2_ITERATIONS = 20_000
#: verified tokens kept (a cache hit saves ~5 µs of HMAC). Small on purpose: every login adds a
#: token, and a 30-minute soak at 720 req/s (5% logins) grew each wallet ~250 KB a minute while
#: the bound was 100,000 (~30 MB per instance before the first clear). 4,096 covers the active
#: users of a load test; beyond them a token is simply verified again.
_TOKEN_CACHE_MAX = 4_096


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    """A PBKDF2-SHA256 hash, ``pbkdf2_sha256$<iterations>$<salt>$<hash>``.

    The seeder hashes the shared test password once for all seeded users (one salt), which keeps
    seeding fast; people would get a salt each.
    """
    salt = salt if salt is not None else os.urandom(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, _PBKDF2_ITERATIONS)
    return "$".join(
        ("pbkdf2_sha256", str(_PBKDF2_ITERATIONS), salt.hex(), base64.b64encode(digest).decode())
    )


def _check(password: str, stored: str) -> bool:
    try:
        scheme, iterations, salt_hex, expected = stored.split("$")
        if scheme != "pbkdf2_sha256":
            return False
        digest = hashlib.pbkdf2_hmac(
            "sha256", password.encode(), bytes.fromhex(salt_hex), int(iterations)
        )
    except ValueError:
        return False
    return hmac.compare_digest(base64.b64encode(digest).decode(), expected)


class PasswordVerifier:
    """Checks passwords against stored hashes, off the event loop, remembering the answers.

    A login storm of seeded users who share one hash costs one PBKDF2 run per instance instead of
    one per login; the memo is keyed by the stored hash (a changed password never hits a stale
    entry) and a SHA-256 of the password (no plaintext is kept).
    """

    def __init__(self, max_entries: int = 10_000) -> None:
        self._memo: dict[tuple[str, bytes], bool] = {}
        self._max = max_entries

    async def verify(self, password: str, stored: str | None) -> bool:
        """True when ``password`` matches ``stored`` (always False for accounts without one)."""
        if not stored:
            return False
        key = (stored, hashlib.sha256(password.encode()).digest())
        known = self._memo.get(key)
        if known is not None:
            return known
        ok = await asyncio.to_thread(_check, password, stored)
        if len(self._memo) >= self._max:
            self._memo.clear()
        self._memo[key] = ok
        return ok


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class TokenSigner:
    """Issues and verifies user bearer tokens; verified tokens are cached until they expire."""

    def __init__(self, secret: bytes, *, ttl: int, cache_size: int = _TOKEN_CACHE_MAX) -> None:
        self._key = hashlib.sha256(b"loadkit.wallet.token|" + secret).digest()
        self.ttl = ttl
        self._cache: dict[str, tuple[int, float]] = {}
        self._cache_size = cache_size

    def _sign(self, payload: str) -> str:
        return _b64(hmac.new(self._key, payload.encode(), hashlib.sha256).digest())

    def issue(self, account_id: int, *, now: float | None = None) -> str:
        expires = int((time.time() if now is None else now) + self.ttl)
        payload = f"v1.{account_id}.{expires}"
        return f"{payload}.{self._sign(payload)}"

    def verify(self, token: str) -> int:
        """The account id the token was issued to; :class:`Problem` 401 when it is not valid."""
        if not token.isascii():  # tokens are ASCII; compare_digest refuses non-ASCII str
            raise _invalid("INVALID_TOKEN", "the bearer token is malformed")
        cached = self._cache.get(token)
        now = time.time()
        if cached is not None:
            if cached[1] > now:
                return cached[0]
            del self._cache[token]
            raise _invalid("TOKEN_EXPIRED", "the token has expired; log in again")
        parts = token.split(".")
        if len(parts) != 4 or parts[0] != "v1":
            raise _invalid("INVALID_TOKEN", "the bearer token is malformed")
        payload = ".".join(parts[:3])
        if not hmac.compare_digest(self._sign(payload), parts[3]):
            raise _invalid("INVALID_TOKEN", "the bearer token's signature is not valid")
        try:
            account_id, expires = int(parts[1]), int(parts[2])
        except ValueError:  # pragma: no cover - a validly signed token always has numbers
            raise _invalid("INVALID_TOKEN", "the bearer token is malformed") from None
        if expires <= now:
            raise _invalid("TOKEN_EXPIRED", "the token has expired; log in again")
        if len(self._cache) >= self._cache_size:
            self._cache.clear()  # crude, but bounded and O(1) amortised
        self._cache[token] = (account_id, float(expires))
        return account_id


def _invalid(code: str, detail: str) -> Problem:
    return Problem(401, code, detail, headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})


def bearer(authorization: str | None) -> str:
    """The token of an ``Authorization: Bearer <token>`` header; 401 when there is none."""
    if not authorization:
        raise Problem(
            401,
            "UNAUTHENTICATED",
            "missing Authorization: Bearer <token> header",
            headers={"WWW-Authenticate": "Bearer"},
        )
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise _invalid("INVALID_TOKEN", "the Authorization header must be 'Bearer <token>'")
    return token


def check_admin(authorization: str | None, *tokens: str) -> None:
    """401 without a bearer token, 403 when it is none of ``tokens``."""
    token = bearer(authorization).encode("utf-8", "surrogatepass")
    # compare with every token (no early exit: the time taken says nothing about which matched)
    matched = [hmac.compare_digest(token, t.encode()) for t in tokens if t]
    if not any(matched):
        raise Problem(403, "FORBIDDEN", "the admin token is not valid")
