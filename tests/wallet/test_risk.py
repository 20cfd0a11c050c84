"""Risk policy and OTP codes (units; the database side is in test_otp.py)."""

from __future__ import annotations

from loadkit.wallet.config import POLICIES
from loadkit.wallet.contract import PolicyName
from loadkit.wallet.risk import CHALLENGE_RE, Otp, Risk


def test_codes_are_stable_across_instances_sharing_the_secret() -> None:
    a, b = Otp(b"secret", ttl=300, max_failures=5), Otp(b"secret", ttl=300, max_failures=5)
    challenge = a.new_challenge()
    assert CHALLENGE_RE.fullmatch(challenge)
    code = b.code(challenge)
    assert len(code) == 6 and code.isdigit() and a.code(challenge) == code
    assert Otp(b"other", ttl=300, max_failures=5).code(challenge) != code or code == "000000"
    assert a.new_challenge() != challenge


def test_the_answer_mac_is_bound_to_caller_key_and_request() -> None:
    otp = Otp(b"s", ttl=300, max_failures=5)
    mac = otp.mac(7, "key-1", "hash-1", "123456")
    assert mac == Otp(b"s", ttl=300, max_failures=5).mac(7, "key-1", "hash-1", "123456")
    others = {
        otp.mac(8, "key-1", "hash-1", "123456"),
        otp.mac(7, "key-2", "hash-1", "123456"),
        otp.mac(7, "key-1", "hash-2", "123456"),
        otp.mac(7, "key-1", "hash-1", "123457"),
        Otp(b"t", ttl=300, max_failures=5).mac(7, "key-1", "hash-1", "123456"),
    }
    assert mac not in others and len(others) == 5


def test_any_submitted_text_has_a_mac() -> None:
    """Codes come from a header: non-ASCII (latin-1 decoded) text must not raise."""
    otp = Otp(b"s", ttl=300, max_failures=5)
    for code in ("ÿÿÿÿÿÿ", "12345x", "", "\ud800"):
        assert len(otp.mac(1, "k", "h", code)) == 64


def test_policy_thresholds_and_limits() -> None:
    risk = Risk(POLICIES, PolicyName.NORMAL, secret=b"s", otp_ttl=300, otp_max_failures=5)
    assert risk.over_limit(50_000_000, risk.policy) is None
    risk.switch(PolicyName.PEAK)
    refusal = risk.over_limit(20_000_001, risk.policy)
    assert refusal is not None and refusal.status == 422 and refusal.code == "AMOUNT_OVER_LIMIT"
    assert refusal.extra == {"policy": "peak", "max_amount": 20_000_000}
    asked = risk.otp_required("c2.x", 300, risk.policy)
    assert asked.status == 403 and asked.code == "OTP_REQUIRED"
    assert asked.extra["otp_challenge"] == "c2.x" and asked.extra["otp_threshold"] == 200_000
