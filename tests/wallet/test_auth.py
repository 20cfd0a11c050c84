"""Tokens, passwords and the admin token (units: no server needed)."""

from __future__ import annotations

import asyncio
import time

import pytest

from loadkit.wallet.auth import PasswordVerifier, TokenSigner, bearer, check_admin, hash_password
from loadkit.wallet.problems import Problem


def test_tokens_verify_on_any_instance_sharing_the_secret() -> None:
    token = TokenSigner(b"shared", ttl=60).issue(42)
    assert TokenSigner(b"shared", ttl=60).verify(token) == 42
    with pytest.raises(Problem) as caught:
        TokenSigner(b"other", ttl=60).verify(token)
    assert caught.value.code == "INVALID_TOKEN"


@pytest.mark.parametrize(
    "token", ["", "v1", "v1.1.2", "v2.1.2.sig", "v1.x.2.sig", "v1.1.2.sig.extra", "v1.1.2.sig"]
)
def test_garbled_tokens_are_401(token: str) -> None:
    with pytest.raises(Problem) as caught:
        TokenSigner(b"s", ttl=60).verify(token)
    assert caught.value.status == 401


def test_expired_tokens_are_refused_even_when_cached() -> None:
    signer = TokenSigner(b"s", ttl=60)
    old = signer.issue(7, now=time.time() - 120)
    with pytest.raises(Problem) as caught:
        signer.verify(old)
    assert caught.value.code == "TOKEN_EXPIRED"
    fresh = signer.issue(7)
    assert signer.verify(fresh) == 7
    signer._cache[fresh] = (7, time.time() - 1)  # as if it expired while cached
    with pytest.raises(Problem):
        signer.verify(fresh)


def test_the_verified_token_cache_stays_small_however_many_logins() -> None:
    """Every login issues a token: the cache of verified ones must not grow with them (a soak
    saw the wallets grow ~250 KB a minute with a 100,000-entry bound)."""
    signer = TokenSigner(b"s", ttl=3600, cache_size=64)
    tokens = [signer.issue(account) for account in range(1_000)]
    for _ in range(3):
        for account, token in enumerate(tokens):
            assert signer.verify(token) == account
            assert len(signer._cache) <= 64
    assert TokenSigner(b"s", ttl=60)._cache_size == 4_096


def test_bearer_header_parsing() -> None:
    assert bearer("Bearer abc") == "abc"
    assert bearer("bearer  abc ") == "abc"
    for header, code in (
        (None, "UNAUTHENTICATED"),
        ("Basic x", "INVALID_TOKEN"),
        ("Bearer", "INVALID_TOKEN"),
    ):
        with pytest.raises(Problem) as caught:
            bearer(header)
        assert caught.value.code == code and "WWW-Authenticate" in caught.value.headers


def test_admin_token() -> None:
    check_admin("Bearer adm", "adm")
    with pytest.raises(Problem) as caught:
        check_admin("Bearer nope", "adm")
    assert caught.value.status == 403


def test_password_verifier_remembers_answers() -> None:
    stored = hash_password("wallet-pass")
    verifier = PasswordVerifier()

    async def check() -> tuple[bool, bool, bool, bool]:
        return (
            await verifier.verify("wallet-pass", stored),
            await verifier.verify("wallet-pass", stored),
            await verifier.verify("wrong", stored),
            await verifier.verify("wallet-pass", None),
        )

    assert asyncio.run(check()) == (True, True, False, False)
    assert len(verifier._memo) == 2
    assert not asyncio.run(verifier.verify("x", "md5$garbage"))
