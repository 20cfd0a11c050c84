"""Risk policy and stateless OTPs (units)."""

from __future__ import annotations

import pytest

from loadkit.wallet.config import POLICIES
from loadkit.wallet.contract import PolicyName
from loadkit.wallet.problems import Problem
from loadkit.wallet.risk import Otp, Risk


def test_otp_codes_are_stable_across_instances_and_bound_to_the_request() -> None:
    a, b = Otp(b"secret", 300), Otp(b"secret", 300)
    challenge = a.challenge(7, "key-1", "hash-1", now=1_000_000)
    code = b.code_for(challenge, 7, now=1_000_010)
    assert a.verify(7, "key-1", "hash-1", code, now=1_000_100)
    assert not a.verify(7, "key-2", "hash-1", code, now=1_000_100)  # other key
    assert not a.verify(7, "key-1", "hash-2", code, now=1_000_100)  # other request
    assert not a.verify(8, "key-1", "hash-1", code, now=1_000_100)  # other user
    assert not Otp(b"other", 300).verify(7, "key-1", "hash-1", code, now=1_000_100)


def test_otp_expires_after_the_next_window() -> None:
    otp = Otp(b"s", 300)
    challenge = otp.challenge(1, "k", "h", now=0)
    code = otp.code(challenge)
    assert otp.verify(1, "k", "h", code, now=299 + 300)
    assert not otp.verify(1, "k", "h", code, now=600)
    with pytest.raises(Problem):
        otp.code_for(challenge, 1, now=600)


@pytest.mark.parametrize("challenge", ["", "c1.7.x.abc", "c2.7.0.abc", "c1.8.0.abc", "nonsense"])
def test_foreign_or_garbled_challenges_are_404(challenge: str) -> None:
    with pytest.raises(Problem) as caught:
        Otp(b"s", 300).code_for(challenge, 7, now=10)
    assert caught.value.status == 404


def test_policy_switch_changes_thresholds() -> None:
    risk = Risk(POLICIES, PolicyName.NORMAL, secret=b"s", window=300)
    risk.check(account_id=1, key="k", request_hash="h", amount=500_000, otp=None)
    risk.switch(PolicyName.PEAK)
    with pytest.raises(Problem) as caught:
        risk.check(account_id=1, key="k", request_hash="h", amount=500_000, otp=None)
    assert caught.value.code == "OTP_REQUIRED"
    challenge = caught.value.extra["otp_challenge"]
    code = risk.otp.code(challenge)
    risk.check(account_id=1, key="k", request_hash="h", amount=500_000, otp=code)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    with pytest.raises(Problem) as caught:
        risk.check(account_id=1, key="k", request_hash="h", amount=500_000, otp=wrong)
    assert caught.value.code == "OTP_INVALID"
