"""The schedule: exact arrival counts per second and stage, and each process's share of them."""

from __future__ import annotations

import math
import textwrap
from pathlib import Path

import pytest

from loadkit.load.schedule import (
    PieceIndex,
    Share,
    arrival_counts,
    pieces,
    share_size,
    stage_bounds,
)
from loadkit.profile import Profile, load_profile

PROFILES = Path(__file__).parents[2] / "profiles"


def profile_of(tmp_path: Path, stages: str, extra: str = "") -> Profile:
    path = tmp_path / "p.yaml"
    body = f"stages:\n{textwrap.indent(textwrap.dedent(stages), '  ')}\n"
    path.write_text(body + "journeys:\n  - wallet: balance\n" + textwrap.dedent(extra))
    return load_profile(path)


def all_times(profile: Profile, index: int, count: int) -> list[float]:
    share, times = Share(profile, index, count), []
    while (t := share.next()) != math.inf:
        times.append(t)
    return times


def test_a_step_rate_gives_exactly_its_rate_every_second(tmp_path: Path) -> None:
    profile = profile_of(tmp_path, "- {name: a, duration: 10s, rate: 40/s}")
    assert arrival_counts(profile) == {(t, "a"): 40 for t in range(10)}


def test_a_ramp_follows_the_integral_of_the_rate(tmp_path: Path) -> None:
    profile = profile_of(tmp_path, "- {name: up, duration: 10s, curve: linear, rate: 100/s}")
    counts = arrival_counts(profile)
    assert sum(counts.values()) == 500  # ∫ 10 t dt over 10 s
    for t in range(10):
        exact = math.floor(profile.arrivals_between(0, t + 1) + 1e-6)
        exact -= math.floor(profile.arrivals_between(0, t) + 1e-6)
        assert counts[(t, "up")] == exact
    assert list(counts.values()) == sorted(counts.values())


def test_a_stage_boundary_inside_a_second_splits_it_by_phase(tmp_path: Path) -> None:
    profile = profile_of(
        tmp_path,
        """
        - {name: low, duration: 3s, rate: 20/s}
        - {name: spike, duration: 2s, rate: 200/s}
        - {name: after, duration: 3s, rate: 20/s}
        """,
        "time_scale: 0.5\n",
    )
    assert stage_bounds(profile) == [1.5, 2.5]
    ps = list(pieces(profile))
    assert [(p.t, p.phase, p.start, p.end) for p in ps] == [
        (0, "low", 0.0, 1.0),
        (1, "low", 1.0, 1.5),
        (1, "spike", 1.5, 2.0),
        (2, "spike", 2.0, 2.5),
        (2, "after", 2.5, 3.0),
        (3, "after", 3.0, 4.0),
    ]
    assert [p.count for p in ps] == [20, 10, 100, 100, 10, 20]
    assert [p.first for p in ps] == [0, 20, 30, 130, 230, 240]


def test_a_one_second_spike_is_never_skipped(tmp_path: Path) -> None:
    profile = load_profile(PROFILES / "double11.yaml")
    counts = arrival_counts(profile)
    midnight = sum(n for (_, phase), n in counts.items() if phase == "midnight")
    integral = profile.arrivals_between(360.0, 361.0)
    assert abs(midnight - integral) <= 1 and midnight > 1000
    assert sum(counts.values()) == math.floor(profile.arrivals_between(0, 1e9) + 1e-6)


def test_variation_keeps_the_counts_exact_and_repeatable(tmp_path: Path) -> None:
    stages = "- {name: noisy, duration: 20s, rate: 50/s, variation: 30%}"
    a, b = profile_of(tmp_path, stages), profile_of(tmp_path, stages)
    counts = arrival_counts(a)
    assert counts == arrival_counts(b)
    assert len(set(counts.values())) > 3
    assert sum(counts.values()) == math.floor(a.arrivals_between(0, 20) + 1e-6)


@pytest.mark.parametrize("count", [1, 2, 3, 4, 7])
def test_shares_partition_the_arrivals_by_k_mod_n(tmp_path: Path, count: int) -> None:
    profile = profile_of(
        tmp_path,
        """
        - {name: up, duration: 4s, curve: linear, rate: 37/s}
        - {name: hold, duration: 3s, rate: 37/s, variation: 20%}
        """,
    )
    everything = all_times(profile, 0, 1)
    assert len(everything) == sum(arrival_counts(profile).values())
    shares = [all_times(profile, i, count) for i in range(count)]
    assert sorted(t for s in shares for t in s) == everything
    for i, times in enumerate(shares):
        assert times == everything[i::count]  # the k-th arrival belongs to share k % count
        assert times == sorted(times)


def test_arrivals_are_spread_evenly_over_their_piece(tmp_path: Path) -> None:
    profile = profile_of(tmp_path, "- {name: a, duration: 2s, rate: 8/s}")
    assert all_times(profile, 0, 1) == [i / 8 for i in range(16)]
    assert all_times(profile, 1, 2) == [(2 * i + 1) / 8 for i in range(8)]


def test_share_arguments_are_checked(tmp_path: Path) -> None:
    profile = profile_of(tmp_path, "- {name: a, duration: 2s, rate: 8/s}")
    with pytest.raises(ValueError, match="share index 2"):
        Share(profile, 2, 2)
    closed = profile_of(tmp_path, "- {name: a, duration: 2s, users: 3}")
    with pytest.raises(ValueError, match="closed-model"):
        Share(closed, 0, 1)


def test_a_closed_profile_has_pieces_without_arrivals(tmp_path: Path) -> None:
    profile = profile_of(
        tmp_path,
        """
        - {name: few, duration: 2s, users: 3}
        - {name: many, duration: 1500ms, users: 9}
        """,
    )
    index = PieceIndex(profile)
    assert [(p.t, p.phase, p.count) for p in index.pieces] == [
        (0, "few", 0),
        (1, "few", 0),
        (2, "many", 0),
        (3, "many", 0),
    ]
    assert index.at(2.7).phase == "many" and index.at(-1).t == 0 and index.at(99).t == 3


def test_share_size() -> None:
    assert [share_size(10, i, 3) for i in range(3)] == [4, 3, 3]
    assert [share_size(1, i, 2) for i in range(2)] == [1, 0]
