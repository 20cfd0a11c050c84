"""Mistakes in scenario files, each reported at file:line:column with its field, what was
expected and a close match; planning on the run clock against a profile; the shipped scenarios.

Every case is a whole file as an SRE might write it, and the complete list of problems it must
produce (so a case also proves that one mistake does not cascade into several).
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from loadkit.chaos.scenario import load_scenario, make_plan
from loadkit.errors import ExitCode
from loadkit.profile.model import load_profile
from loadkit.run.validate import validate_file
from loadkit.spec import SpecError

ROOT = Path(__file__).parents[2]
SHIPPED = sorted((ROOT / "chaos").glob("*.yaml"))
HANG = "  - {type: process.hang, target: wallet-1, at: 10s, duration: 5s}\n"

CASES: dict[str, tuple[str, list[str]]] = {
    "unknown top-level key, with a close match": (
        """
        name: t
        fautls:
          - {type: process.crash, target: wallet-1, at: 10s, duration: 5s}
        """,
        ["2:1: fautls: unknown key 'fautls'; did you mean 'faults'?"],
    ),
    "'timeline' instead of 'faults'": (
        """
        timeline:
          - {type: process.crash, target: wallet-1, at: 10s}
        """,
        ["1:1: timeline: write the timeline of faults under 'faults'"],
    ),
    "unknown fault type": (
        """
        faults:
          - {type: network.latncy, target: client-wallet-1, at: 10s, duration: 5s}
        """,
        [
            "2:12: faults[0].type: unknown fault type 'network.latncy'; did you mean "
            "'network.latency'? (see `loadkit chaos list`)"
        ],
    ),
    "a parameter of another fault type": (
        """
        faults:
          - type: process.crash
            target: wallet-1
            at: 10s
            duration: 5s
            latency: 200ms
        """,
        [
            "6:5: faults[0].latency: 'latency' is not a parameter of process.crash "
            "(its parameters: none)"
        ],
    ),
    "a misspelt parameter": (
        """
        faults:
          - type: network.latency
            target: client-wallet-1
            at: 10s
            duration: 5s
            latncy: 200ms
        """,
        ["6:5: faults[0].latncy: unknown key 'latncy'; did you mean 'latency'?"],
    ),
    "a process fault without a target": (
        "faults:\n  - {type: process.hang, at: 10s, duration: 5s}\n",
        ["2:5: faults[0].target: missing required key 'target' in this fault"],
    ),
    "a bare number as a time": (
        "faults:\n  - {type: process.hang, target: wallet-1, at: 10, duration: 5s}\n",
        [
            "2:48: faults[0].at: expected a run-clock time like '90s' or a phase time like "
            "'peak+10s', got the bare number 10; did you mean '10s'?"
        ],
    ),
    "both duration and until": (
        "faults:\n  - {type: process.hang, target: wallet-1, at: 10s, duration: 5s, until: 20s}\n",
        ["2:74: faults[0].until: give 'duration' or 'until', not both"],
    ),
    "until before at": (
        "faults:\n  - {type: process.hang, target: wallet-1, at: 30s, until: 20s}\n",
        ["2:60: faults[0].until: '20s' is not after 'at' (30s)"],
    ),
    "a duration on a one-action fault": (
        "faults:\n  - {type: process.rolling-restart, at: 30s, duration: 20s}\n",
        ["2:56: faults[0].duration: process.rolling-restart is one action: it takes no 'duration'"],
    ),
    "an address as a target": (
        'faults:\n  - {type: network.down, target: "10.0.0.5:5432", at: 30s, duration: 20s}\n',
        [
            "2:34: faults[0].target: expected the name of one of the stack's components (like "
            "'wallet-1', 'postgres' or a proxy like 'wallet-1-postgres'), got '10.0.0.5:5432'; "
            "faults go to the stack's components, never to addresses"
        ],
    ),
    "a misspelt database target": (
        "faults:\n  - {type: postgres.crash, target: postgre, at: 30s, duration: 20s}\n",
        [
            "2:36: faults[0].target: postgres.crash acts on 'postgres', got 'postgre'; "
            "did you mean 'postgres'?"
        ],
    ),
    "jitter above the latency": (
        "faults:\n  - {type: network.latency, target: client-wallet-1, latency: 100ms, "
        "jitter: 200ms, at: 1s, duration: 2s}\n",
        ["2:78: faults[0].jitter: must not exceed 'latency' (100ms)"],
    ),
    "an unknown stream": (
        "faults:\n  - {type: network.latency, target: client-wallet-1, stream: sideways, "
        "at: 1s, duration: 2s}\n",
        [
            "2:62: faults[0].stream: unknown stream 'sideways' (expected one of: downstream, "
            "upstream)"
        ],
    ),
    "toxicity above 100%": (
        "faults:\n  - {type: network.latency, target: client-wallet-1, toxicity: 150%, "
        "at: 1s, duration: 2s}\n",
        ["2:64: faults[0].toxicity: expected at most 100%, got '150%'"],
    ),
    "a misspelt policy": (
        "faults:\n  - {type: wallet.policy, policy: peek, at: 1s, duration: 2s}\n",
        [
            "2:35: faults[0].policy: unknown policy 'peek'; did you mean 'peak'? "
            "(expected one of: normal, peak)"
        ],
    ),
    "limits without any limit": (
        "faults:\n  - {type: wallet.limits, at: 1s, duration: 2s}\n",
        [
            "2:5: faults[0]: give at least one of: max_inflight, rate_limit, rate_burst, "
            "per_user_rate, per_user_burst"
        ],
    ),
    "overlapping maintenance windows on one instance": (
        """
        faults:
          - {name: m1, type: wallet.maintenance, at: 10s, duration: 20s}
          - {name: m2, type: wallet.maintenance, target: wallet-2, at: 20s, duration: 20s}
        """,
        [
            "3:5: faults[1]: overlaps 'm1' (10s–30s) on 'wallet-2': maintenance faults on one "
            "target must follow each other"
        ],
    ),
    "two faults with one name": (
        """
        faults:
          - {name: a, type: process.hang, target: wallet-1, at: 10s, duration: 5s}
          - {name: a, type: process.hang, target: wallet-2, at: 10s, duration: 5s}
        """,
        ["3:12: faults[1].name: duplicate fault name 'a' (also faults[0])"],
    ),
    "a bare number as a percentage": (
        "faults:\n" + HANG + "abort:\n  - {when: busy-rate, above: 60, for: 30s}\n",
        [
            "4:30: abort[0].above: expected a percentage like '10%' (or a fraction from 0 to 1), "
            "got 60; did you mean '60%'?"
        ],
    ),
    "an unknown abort condition": (
        "faults:\n" + HANG + "abort:\n  - {when: busy_rate, above: 60%}\n",
        [
            "4:12: abort[0].when: unknown abort condition 'busy_rate'; did you mean "
            "'busy-rate'? (expected one of: busy-rate, p95, probe)"
        ],
    ),
    "an abort on a probe that does not exist": (
        "steady_state:\n  probes:\n    - {name: ledger, type: invariants}\nfaults:\n"
        + HANG
        + "abort:\n  - {when: probe, probe: ledgr}\n",
        [
            "7:26: abort[0].probe: no steady-state probe named 'ledgr'; did you mean 'ledger'? "
            "(probes: ledger)"
        ],
    ),
    "an unknown probe type, and a busy-rate probe without its limit": (
        "steady_state:\n  probes:\n    - {name: a, type: readyness}\n"
        "    - {name: b, type: busy-rate, window: 10s}\nfaults:\n" + HANG,
        [
            "3:23: steady_state.probes[0].type: unknown probe type 'readyness'; did you mean "
            "'readyz'? (expected one of: readyz, invariants, http, busy-rate, p95)",
            "4:7: steady_state.probes[1].max: missing required key 'max' in this probe",
        ],
    ),
    "an address in the allowlist": (
        "faults:\n" + HANG + 'safety:\n  allow: [wallet-*, "db.example.com:5432"]\n',
        [
            "4:21: safety.allow[1]: the allowlist names the stack's components (like "
            "'wallet-*'), not addresses; got 'db.example.com:5432'"
        ],
    ),
    "a phase time with a bad offset": (
        'faults:\n  - {type: process.hang, target: wallet-1, at: "peak+soon", duration: 5s}\n',
        [
            "2:48: faults[0].at: in 'peak+soon', what follows '+' must be a duration like "
            "'10s' (expected a duration like '90s', '2m', '1h30m' or '500ms', got 'soon')"
        ],
    ),
    "a negative time": (
        "faults:\n  - {type: process.hang, target: wallet-1, at: -5s, duration: 5s}\n",
        ["2:48: faults[0].at: a run-clock time cannot be negative, got '-5s'"],
    ),
}


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "scenario.yaml"
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_each_mistake_is_reported_exactly(tmp_path: Path, case: str) -> None:
    text, expected = CASES[case]
    path = _write(tmp_path, text)
    with pytest.raises(SpecError) as caught:
        load_scenario(path)
    assert str(caught.value).splitlines() == [f"{path}:{line}" for line in expected]
    assert caught.value.exit_code == ExitCode.USAGE


def test_every_mistake_of_a_file_at_once(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """
        faults:
          - {type: process.hang, target: wallet-1, at: 10, duration: 5s}
          - {type: network.latency, target: client-wallet-1, latency: 1s, at: 1s, durration: 2s}
        abort:
          - {when: p95, above: 2}
        """,
    )
    with pytest.raises(SpecError) as caught:
        validate_file(path)
    assert [p.field for p in caught.value.problems] == [
        "faults[0].at",
        "faults[1].durration",
        "abort[0].above",
    ]


PROFILE = ROOT / "profiles" / "double11.yaml"


def test_phase_relative_times_resolve_against_the_profile(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """
        faults:
          - {name: a, type: process.hang, target: wallet-1, at: peak+2s, duration: 5s}
          - {name: b, type: wallet.policy, at: countdown, until: decay+10s}
        """,
    )
    plan = make_plan(load_scenario(path), load_profile(PROFILE))
    # double11 at time_scale 0.1: countdown starts at 210 s, peak at 361 s, decay at 373 s
    assert [(f.spec.name, f.start_s, f.end_s) for f in plan.faults] == [
        ("b", 210.0, 383.0),
        ("a", 363.0, 368.0),
    ]
    assert plan.end_s == pytest.approx(492.0)


def test_an_unknown_phase_is_reported_at_its_place(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "faults:\n  - {type: process.hang, target: wallet-1, at: midnite+1s, until: peek}\n",
    )
    with pytest.raises(SpecError) as caught:
        make_plan(load_scenario(path), load_profile(PROFILE))
    phases = "evening, build-up, countdown, midnight, peak, decay, after-hours"
    assert str(caught.value).splitlines() == [
        f"{path}:2:48: faults[0].at: no phase 'midnite' in profile 'double11'; did you mean "
        f"'midnight'? (phases: {phases})",
        f"{path}:2:67: faults[0].until: no phase 'peek' in profile 'double11'; did you mean "
        f"'peak'? (phases: {phases})",
    ]


def test_phase_times_need_a_profile_and_open_faults_a_run_end(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """
        faults:
          - {type: process.hang, target: wallet-1, at: peak, duration: 5s}
          - {type: process.hang, target: wallet-2, at: 10s}
        """,
    )
    scenario = load_scenario(path)  # valid as a file: a profile may come with it
    with pytest.raises(SpecError) as caught:
        make_plan(scenario)
    assert str(caught.value).splitlines() == [
        f"{path}:2:48: faults[0].at: 'peak' is relative to a profile phase: give the profile "
        "(`loadkit run PROFILE --chaos SCENARIO`, or `--profile`)",
        f"{path}:3:5: faults[1]: no 'duration' or 'until', and the scenario has no 'duration' "
        "(nor a profile) to say when the run ends",
    ]


def test_an_open_fault_lasts_until_the_scenario_ends(tmp_path: Path) -> None:
    path = _write(
        tmp_path, "duration: 1m\nfaults:\n  - {type: process.crash, target: wallet-1, at: 10s}\n"
    )
    (fault,) = make_plan(load_scenario(path)).faults
    assert (fault.start_s, fault.end_s) == (10.0, 60.0)


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_every_shipped_scenario_validates_and_plans(path: Path) -> None:
    summary = validate_file(path)
    assert summary.startswith(f"{path}: scenario '{path.stem}': ")
    scenario = load_scenario(path)
    needs_profile = any(f.at.phase or (f.until and f.until.phase) for f in scenario.faults)
    # a fault held until the run ends, in a scenario without a duration: the profile says when
    needs_profile |= scenario.duration_s is None and any(
        f.duration_s is None and f.until is None for f in scenario.faults
    )
    plan = make_plan(scenario, load_profile(PROFILE) if needs_profile else None)
    assert plan.faults and all(f.start_s >= 0 for f in plan.faults)
    assert scenario.steady_state.probes, "every worked example states its steady state"


def test_the_shipped_scenarios_are_all_there() -> None:
    expected = {
        "api-crash",
        "db-crash",
        "db-slow",
        "db-connections",
        "network-latency",
        "weak-network",
        "maintenance-window",
        "peak-security",
        "gameday",
        "smoke-fault",
        "one-instance-down",
        "staging-gameday",
    }
    assert {p.stem for p in SHIPPED} == expected


def test_a_fault_after_the_run_ends_is_reported(tmp_path: Path) -> None:
    path = _write(
        tmp_path, "duration: 30s\nfaults:\n  - {type: process.hang, target: wallet-1, at: 40s}\n"
    )
    with pytest.raises(SpecError) as caught:
        make_plan(load_scenario(path))
    assert str(caught.value) == (
        f"{path}:3:48: faults[0].at: starts at 40s, after the run ends (30s: the scenario's "
        "'duration')"
    )
