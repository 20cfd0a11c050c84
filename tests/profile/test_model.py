"""The profile model: curves, phases, time scale, variation and exact arrival counts."""

from __future__ import annotations

import math
import textwrap
from pathlib import Path

import pytest

from loadkit.errors import ConfigError
from loadkit.profile import (
    AmountRange,
    Curve,
    HttpJourney,
    HttpMethod,
    LoadModel,
    LocustClassJourney,
    Outcome,
    Profile,
    Stage,
    WalletJourney,
    WalletJourneyKind,
    load_profile,
)
from loadkit.profile.model import Failover

PROFILES = Path(__file__).parents[2] / "profiles"


def profile_of(tmp_path: Path, text: str) -> Profile:
    path = tmp_path / "p.yaml"
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return load_profile(path)


def test_smoke_is_short_and_modest() -> None:
    smoke = load_profile(PROFILES / "smoke.yaml")
    assert smoke.duration_s <= 60
    assert max(stage.peak for stage in smoke.stages) <= 50
    assert smoke.model is LoadModel.OPEN
    assert {j.kind for j in smoke.journeys if isinstance(j, WalletJourney)} == set(
        WalletJourneyKind
    )


def test_double11_spikes_tenfold_within_seconds_at_midnight() -> None:
    profile = load_profile(PROFILES / "double11.yaml")
    midnight = next(s for s in profile.stages if s.name == "midnight")
    assert midnight.target / midnight.start == 10
    assert midnight.duration_s * profile.time_scale <= 5
    assert [s.name for s in profile.stages][:4] == ["evening", "build-up", "countdown", "midnight"]


def test_spring_festival_repeats_red_envelope_bursts() -> None:
    profile = load_profile(PROFILES / "spring-festival.yaml")
    bursts = [s for s in profile.stages if s.base_name == "red-envelope"]
    assert [s.name for s in bursts] == [f"red-envelope#{i}" for i in range(1, 7)]
    assert all(s.mix["red-envelope"] > 50 for s in bursts)
    transfers = [j for j in profile.journeys if isinstance(j, WalletJourney)]
    assert transfers[0].amount == AmountRange(1, 20000)


def test_diurnal_compresses_a_day_into_minutes() -> None:
    profile = load_profile(PROFILES / "diurnal.yaml")
    assert profile.profile_duration_s == 86400
    assert profile.duration_s == pytest.approx(864)
    day = profile.stages[0]
    assert day.level(16 * 3600) == pytest.approx(540)  # the peak, at 16:00
    assert day.level(4 * 3600) == pytest.approx(60)  # the trough, twelve hours away


def test_http_example_journeys() -> None:
    profile = load_profile(PROFILES / "http-example.yaml")
    shop = profile.journeys[0]
    assert isinstance(shop, HttpJourney)
    login, product, order = shop.steps
    assert (login.name, login.method, login.extract) == (
        "login",
        HttpMethod.POST,
        {"token": "data.access_token"},
    )
    assert product.path.render({"random.int": 5}) == "/api/products/5"
    assert order.expect.outcome_of(201) is Outcome.OK
    assert order.expect.outcome_of(502) is Outcome.BUSY  # from the 5xx class
    assert order.expect.outcome_of(404) is None  # the default taxonomy decides
    health = profile.journeys[1]
    assert isinstance(health, HttpJourney)
    assert health.steps[0].name == "GET /healthz"


def test_step_linear_and_exponential_curves(tmp_path: Path) -> None:
    profile = profile_of(
        tmp_path,
        """
        stages:
          - {name: flat, duration: 10s, rate: 100/s}
          - {name: ramp, duration: 10s, rate: 300/s, curve: linear}
          - {name: boom, duration: 10s, rate: 3000/s, curve: exponential}
          - {name: down, duration: 10s, rate: 0, curve: linear, from: 1000/s}
        journeys: [{wallet: balance}]
        """,
    )
    assert profile.rate_at(0) == 100
    assert profile.rate_at(9.999) == 100
    assert profile.rate_at(10) == 100  # the ramp starts where 'flat' ended
    assert profile.rate_at(15) == pytest.approx(200)
    assert profile.rate_at(20) == pytest.approx(300)
    assert profile.rate_at(25) == pytest.approx(300 * math.sqrt(10))  # geometric middle
    assert profile.rate_at(30) == pytest.approx(1000)  # an explicit 'from'
    assert profile.rate_at(35) == pytest.approx(500)
    assert profile.rate_at(40) == 0.0  # the run is over
    assert profile.rate_at(-1) == 0.0
    assert [profile.phase_at(t) for t in (0, 10, 29.9, 30, 40)] == [
        "flat",
        "ramp",
        "boom",
        "down",
        None,
    ]


def test_sine_curve(tmp_path: Path) -> None:
    profile = profile_of(
        tmp_path,
        """
        stages:
          - {name: wave, duration: 100s, rate: 200/s, curve: sine, amplitude: 50%, period: 40s,
             peak_at: 10s}
        journeys: [{wallet: balance}]
        """,
    )
    assert profile.rate_at(10) == pytest.approx(300)  # peak
    assert profile.rate_at(30) == pytest.approx(100)  # trough, half a period later
    assert profile.rate_at(20) == pytest.approx(200)  # the mean in between
    assert profile.rate_at(50) == pytest.approx(300)  # a period later


def test_sine_defaults_peak_half_way_through_one_wave(tmp_path: Path) -> None:
    profile = profile_of(
        tmp_path,
        """
        stages: [{name: wave, duration: 60s, rate: 100/s, curve: sine}]
        journeys: [{wallet: balance}]
        """,
    )
    assert profile.rate_at(0) == pytest.approx(50)
    assert profile.rate_at(30) == pytest.approx(150)


def test_time_scale_stretches_durations_not_rates(tmp_path: Path) -> None:
    profile = profile_of(
        tmp_path,
        """
        time_scale: 0.1
        stages:
          - {name: ramp, duration: 100s, rate: 100/s, curve: linear}
          - {name: hold, duration: 50s, rate: 100/s}
        journeys: [{wallet: balance}]
        """,
    )
    assert profile.duration_s == pytest.approx(15)
    assert profile.rate_at(5) == pytest.approx(50)
    assert profile.phase_at(10.5) == "hold"
    slower = profile.with_time_scale(1)
    assert slower.duration_s == 150
    assert slower.rate_at(50) == pytest.approx(50)


def test_with_time_scale_refuses_stages_too_short_to_see() -> None:
    profile = load_profile(PROFILES / "double11.yaml")
    with pytest.raises(ConfigError, match=r"stage 'midnight' would last 0\.1s of run time"):
        profile.with_time_scale(0.01)
    with pytest.raises(ConfigError, match="above 0"):
        profile.with_time_scale(0)


def test_arrivals_are_the_exact_integral(tmp_path: Path) -> None:
    profile = profile_of(
        tmp_path,
        """
        stages:
          - {name: ramp, duration: 10s, rate: 100/s, curve: linear}
          - {name: spike, duration: 1s, rate: 5000/s}
          - {name: boom, duration: 10s, rate: 1000/s, curve: exponential, from: 10/s}
          - {name: wave, duration: 20s, rate: 100/s, curve: sine, amplitude: 100%}
        journeys: [{wallet: balance}]
        """,
    )
    assert profile.arrivals_between(0, 10) == pytest.approx(500)
    assert profile.arrivals_between(10, 11) == pytest.approx(5000)  # a 1 s spike, all of it
    assert profile.arrivals_between(10.25, 10.5) == pytest.approx(1250)
    assert profile.arrivals_between(11, 21) == pytest.approx(990 * 10 / math.log(100))
    assert profile.arrivals_between(21, 41) == pytest.approx(2000)  # whole waves: the mean
    assert profile.arrivals_between(0, 1000) == pytest.approx(
        500 + 5000 + 990 * 10 / math.log(100) + 2000
    )


def test_arrivals_match_a_fine_sum_of_rates(tmp_path: Path) -> None:
    profile = load_profile(PROFILES / "spring-festival.yaml")
    t0, t1, dt = 60.0, 200.0, 0.01
    riemann = sum(profile.rate_at(t0 + (i + 0.5) * dt) * dt for i in range(int((t1 - t0) / dt)))
    assert profile.arrivals_between(t0, t1) == pytest.approx(riemann, rel=1e-3)


def test_variation_is_deterministic_per_seed_and_bounded(tmp_path: Path) -> None:
    text = """
        seed: {seed}
        stages: [{{name: noisy, duration: 100s, rate: 100/s, variation: 20%}}]
        journeys: [{{wallet: balance}}]
        """
    a = profile_of(tmp_path, text.format(seed=1))
    b = profile_of(tmp_path, text.format(seed=1))
    c = profile_of(tmp_path, text.format(seed=2))
    rates_a = [a.rate_at(t + 0.5) for t in range(100)]
    assert rates_a == [b.rate_at(t + 0.5) for t in range(100)]
    assert rates_a != [c.rate_at(t + 0.5) for t in range(100)]
    assert all(80 <= r <= 120 for r in rates_a)
    assert len(set(rates_a)) > 90
    assert a.rate_at(3.1) == a.rate_at(3.9)  # constant within a run second
    assert sum(rates_a) / 100 == pytest.approx(100, rel=0.05)
    assert a.arrivals_between(0, 100) == pytest.approx(sum(rates_a))


def test_closed_model_profiles(tmp_path: Path) -> None:
    profile = profile_of(
        tmp_path,
        """
        users: {accounts: 500}
        stages:
          - {name: ramp, duration: 10s, users: 100, curve: linear}
          - {name: hold, duration: 10s, users: 100}
        journeys: [{wallet: balance}]
        client: {think_time: [1s, 3s]}
        """,
    )
    assert profile.model is LoadModel.CLOSED
    assert profile.users_at(5) == 50
    assert profile.client.think_time_s == (1.0, 3.0)
    with pytest.raises(ValueError, match="rate_at needs an open profile"):
        profile.rate_at(5)


def test_defaults(tmp_path: Path) -> None:
    profile = profile_of(
        tmp_path,
        """
        stages: [{name: a, duration: 10s, rate: 5}]
        journeys: [{locust: "shop.users:Buyer"}]
        """,
    )
    assert profile.name == "p"
    assert profile.time_scale == 1.0
    assert profile.stages == (Stage("a", 10.0, 5.0, 5.0, Curve.STEP),)
    assert profile.journeys == (LocustClassJourney("Buyer", 1.0, "shop.users", "Buyer"),)
    assert profile.client.timeout_s == 10.0
    assert profile.client.retries.attempts == 1
    assert profile.client.retries.honour_retry_after is True
    assert profile.client.failover is None
    assert profile.network == ()
    assert profile.users.accounts == 1000
    assert profile.source == str(tmp_path / "p.yaml")


@pytest.mark.parametrize(
    ("value", "expected"),
    [("true", Failover(5.0)), ("false", None), ("{eject: 500ms}", Failover(0.5))],
)
def test_client_failover(tmp_path: Path, value: str, expected: Failover | None) -> None:
    profile = profile_of(
        tmp_path,
        f"""
        stages: [{{name: a, duration: 10s, rate: 5}}]
        journeys: [{{wallet: balance}}]
        client: {{failover: {value}}}
        """,
    )
    assert profile.client.failover == expected


def test_network_weights_become_fractions(tmp_path: Path) -> None:
    profile = load_profile(PROFILES / "flash-sale.yaml")
    assert [(n.name, n.weight) for n in profile.network] == [("wifi", 0.8), ("4g", 0.2)]
    assert profile.network[1].bandwidth_kbps == 2000
    assert profile.network[1].latency_ms == pytest.approx(80)
    assert profile.network[1].jitter_ms == pytest.approx(30)


def test_a_stage_mix_replaces_the_journey_weights() -> None:
    profile = load_profile(PROFILES / "spring-festival.yaml")
    assert [j.name for j in profile.journeys] == [
        "red-envelope",
        "family-transfer",
        "balance",
        "history",
    ]
    burst = profile.stages[1]
    assert burst.name == "red-envelope#1"
    assert profile.journey_weights(burst) == (85, 0, 15, 0)
    assert profile.journey_weights(profile.stages[0]) == (40, 10, 40, 10)


TAGGED = """
stages:
  - {name: warm, duration: 10s, rate: 5}
  - {name: sale, duration: 10s, rate: 50, mix: {pay: 5, refund: 1}}
journeys:
  - {wallet: pay_merchant, name: pay, tags: [payments, smoke]}
  - {wallet: balance, tags: [reads, smoke]}
  - {name: refund, http: [{path: /refund, method: POST}], tags: [payments, slow]}
  - {locust: shop.users:Browser, tags: [reads]}
"""


def test_journeys_carry_their_tags(tmp_path: Path) -> None:
    profile = profile_of(tmp_path, TAGGED)
    assert [(j.name, j.tags) for j in profile.journeys] == [
        ("pay", ("payments", "smoke")),
        ("balance", ("reads", "smoke")),
        ("refund", ("payments", "slow")),
        ("Browser", ("reads",)),
    ]


@pytest.mark.parametrize(
    ("include", "exclude", "kept"),
    [
        ((), (), ["pay", "balance", "refund", "Browser"]),
        (["payments"], (), ["pay", "refund"]),
        (["smoke", "reads"], (), ["pay", "balance", "Browser"]),
        (["payments"], ["slow"], ["pay"]),
        ((), ["reads"], ["pay", "refund"]),
        ((), ["no-such-tag"], ["pay", "balance", "refund", "Browser"]),
    ],
)
def test_with_tags_keeps_the_journeys_selected(
    tmp_path: Path, include: list[str], exclude: list[str], kept: list[str]
) -> None:
    profile = profile_of(tmp_path, TAGGED).with_tags(include=include, exclude=exclude)
    assert [j.name for j in profile.journeys] == kept


def test_a_tag_selection_that_leaves_nothing_is_an_error(tmp_path: Path) -> None:
    profile = profile_of(tmp_path, TAGGED)
    with pytest.raises(ConfigError) as caught:
        profile.with_tags(include=["paymnts"])
    assert caught.value.message == (
        "no journey of profile 'p' is tagged 'paymnts'; did you mean 'payments'? "
        "(its tags: payments, reads, slow, smoke)"
    )
    with pytest.raises(ConfigError) as caught:
        profile.with_tags(include=["smoke"], exclude=["payments", "reads"])
    assert caught.value.message == (
        "the tag selection (include smoke; exclude payments, reads) leaves no journey of "
        "profile 'p' to run (its "
        "journeys: pay [payments, smoke], balance [reads, smoke], refund [payments, slow], "
        "Browser [reads])"
    )
    with pytest.raises(ConfigError) as caught:
        profile.with_tags(include=["reads"])
    assert caught.value.message == (
        "the tag selection (include reads) leaves stage 'sale' nothing to run: its mix weighs "
        "only pay, refund"
    )
