"""The controller against the real stack: faults on time (read from the journal), abort
conditions, halts, and the allowlist refusing before anything is injected."""

from __future__ import annotations

import textwrap
import time
from pathlib import Path

import pytest

from loadkit.chaos import ChaosStatus, Controller, TargetRefused, load_scenario, read_events
from loadkit.errors import ExitCode
from loadkit.rundir.events import outstanding
from loadkit.stack.reference import ReferenceStack

THIRTEEN_FAULTS = """
name: precise
steady_state:
  recover_within: 20s
  traffic: {rate: 10/s}
  probes:
    - {name: ready, type: readyz}
faults:
  - {name: lat-client-1, type: network.latency, target: client-wallet-1, latency: 50ms,
     at: 1.5s, duration: 1s}
  - {name: lat-db-2, type: network.latency, target: wallet-2-postgres, stream: upstream,
     latency: 20ms, at: 1.6s, duration: 1s}
  - {name: bw-db-1, type: network.bandwidth, target: wallet-1-postgres, rate: 10mbps,
     at: 1.8s, duration: 1s}
  - {name: policy, type: wallet.policy, at: 2s, duration: 1s}
  - {name: limits-1, type: wallet.limits, target: wallet-1, per_user_rate: 50/s,
     at: 2.2s, duration: 1s}
  - {name: maint-2, type: wallet.maintenance, target: wallet-2, at: 2.4s, duration: 800ms}
  - {name: slicer-2, type: network.slicer, target: client-wallet-2, at: 2.6s, duration: 1s}
  - {name: slow-db, type: postgres.slow-queries, delay: 50ms, at: 2.8s, duration: 1s}
  - {name: down-client-1, type: network.down, target: client-wallet-1, at: 3s, duration: 500ms}
  - {name: hang-2, type: process.hang, target: wallet-2, at: 3.5s, duration: 1s}
  - {name: cut-2, type: network.limit-data, target: client-wallet-2, bytes: 100,
     at: 3.8s, duration: 500ms}
  - {name: stall-1, type: network.timeout, target: client-wallet-1, at: 4s, duration: 500ms}
  - {name: crash-1, type: process.crash, target: wallet-1, at: 4.6s, duration: 500ms}
"""


def _scenario(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "scenario.yaml"
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


def _fresh(stack: ReferenceStack) -> ReferenceStack:
    return ReferenceStack.attach(stack.stack_dir)


def test_thirteen_faults_each_injected_within_200ms_of_its_time(
    stack: ReferenceStack, tmp_path: Path
) -> None:
    scenario = load_scenario(_scenario(tmp_path, THIRTEEN_FAULTS))
    run_dir = tmp_path / "run"
    controller = Controller(scenario, _fresh(stack), run_dir)
    controller.start()
    assert controller.wait(60), "the scenario ends"
    result = controller.result()
    assert result.status is ChaosStatus.COMPLETED, (result.reason, result.errors)
    assert (result.injected, result.reverted, result.errors) == (13, 13, [])
    assert all(r.ok for r in result.before + result.after)

    events = read_events(run_dir / "events.jsonl")
    assert events[0]["schema"] == "loadkit.events/v1"
    begins = {e["fault"]: e for e in events if e.get("event") == "inject.begin"}
    ends = {e["fault"]: e for e in events if e.get("event") == "inject.end"}
    reverts = {e["fault"]: e for e in events if e.get("event") == "revert.end"}
    assert len(begins) == 13
    late = {f: round(e["t"] - e["intended_t"], 3) for f, e in begins.items()}
    assert all(0 <= d < 0.2 for d in late.values()), late
    done = {f: round(ends[f]["t"] - begins[f]["intended_t"], 3) for f in begins}
    assert all(d < 0.2 for d in done.values()), f"in effect within 200 ms: {done}"
    assert all(ends[f]["result"] == "ok" and reverts[f]["result"] == "ok" for f in begins)
    # what a rollback would need was journaled before acting
    assert begins["hang-2"]["state"]["processes"][0]["process"]["pid"] > 0
    assert begins["lat-client-1"]["state"]["toxic"].startswith("chaos_")
    assert begins["policy"]["state"]["before"]["wallet-1"]["policy"] == "normal"
    assert outstanding(events) == []
    assert events[-1]["event"] == "scenario.end" and events[-1]["status"] == "completed"


def test_an_abort_condition_stops_the_faults_and_rolls_back(
    stack: ReferenceStack, tmp_path: Path
) -> None:
    path = _scenario(
        tmp_path,
        """
        steady_state:
          traffic: {rate: 20/s}
        faults:
          - {name: down-1, type: network.down, target: client-wallet-1, at: 500ms, duration: 30s}
          - {name: down-2, type: network.down, target: client-wallet-2, at: 500ms, duration: 30s}
          - {name: later, type: wallet.maintenance, at: 20s, duration: 5s}
        abort:
          - {name: too-busy, when: busy-rate, above: 50%, window: 1s, for: 500ms}
        """,
    )
    told: list[str] = []
    controller = Controller(
        load_scenario(path), _fresh(stack), tmp_path / "run", on_abort=told.append
    )
    started = time.monotonic()
    controller.start()
    assert controller.wait(30)
    assert time.monotonic() - started < 8, "aborted long before the faults' end"
    result = controller.result()
    assert result.status is ChaosStatus.ABORTED
    assert controller.abort_reason is not None and "too-busy" in controller.abort_reason
    assert told == [controller.abort_reason], "the run is told, so it can stop the load"
    assert (result.injected, result.reverted) == (2, 2)
    events = read_events(tmp_path / "run" / "events.jsonl")
    assert [e["condition"] for e in events if e.get("event") == "abort"] == ["too-busy"]
    assert "later" not in {e.get("fault") for e in events if e.get("event") == "inject.begin"}
    assert all(p.enabled for p in stack.toxiproxy.proxies().values())


def test_halt_reverts_at_once(stack: ReferenceStack, tmp_path: Path) -> None:
    path = _scenario(
        tmp_path,
        """
        faults:
          - {name: policy, type: wallet.policy, at: 0s, duration: 1m}
          - {name: lat, type: network.latency, target: client-wallet-2, latency: 1s,
             at: 0s, duration: 1m}
        """,
    )
    with Controller(load_scenario(path), _fresh(stack), tmp_path / "run") as controller:
        controller.start()
        deadline = time.monotonic() + 10
        while controller.result().injected < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert {s["policy"] for s in stack.admin.state()} == {"peak"}
        controller.halt("operator")
        assert controller.wait(15)
    result = controller.result()
    assert result.status is ChaosStatus.HALTED and result.reason == "operator"
    assert result.reverted == 2
    assert {s["policy"] for s in stack.admin.state()} == {"normal"}


def test_a_target_outside_the_allowlist_is_refused_before_anything(
    stack: ReferenceStack, tmp_path: Path
) -> None:
    path = _scenario(
        tmp_path,
        """
        faults:
          - {name: ok, type: network.latency, target: client-wallet-1, at: 0s, duration: 5s}
          - {name: off-list, type: process.crash, target: wallet-2, at: 1s, duration: 1s}
          - {name: unknown, type: network.down, target: wallet-3-postgres, at: 1s, duration: 1s}
        safety:
          allow: [wallet-1, client-wallet-*]
        """,
    )
    with pytest.raises(TargetRefused) as caught:
        Controller(load_scenario(path), _fresh(stack), tmp_path / "run")
    assert caught.value.exit_code == ExitCode.ABORTED
    assert str(caught.value).splitlines() == [
        "refused before injecting anything: fault 'off-list' (process.crash): 'wallet-2' is "
        "not in the allowlist (safety.allow: wallet-1, client-wallet-*)",
        "fault 'unknown' (network.down): no proxy named 'wallet-3-postgres' among the stack's "
        "components on loopback; did you mean 'wallet-2-postgres'? (known: client-wallet-1, "
        "client-wallet-2, wallet-1-postgres, wallet-2-postgres)",
        "allowed targets: client-wallet-1, client-wallet-2, wallet-1",
    ]
    assert not (tmp_path / "run").exists(), "nothing was started, not even a journal"
    assert stack.toxiproxy.toxics("client-wallet-1") == []


def test_a_probe_that_cannot_run_does_not_fire_an_abort(
    stack: ReferenceStack, tmp_path: Path
) -> None:
    """The ledger check cannot run while PostgreSQL is down; that is not money lost."""
    scenario = tmp_path / "s.yaml"
    scenario.write_text(
        "name: crash-with-ledger-guard\nduration: 6s\n"
        "steady_state:\n  before: false\n  after: false\n"
        "  probes:\n    - {name: ledger, type: invariants}\n"
        "faults:\n  - {name: db, type: postgres.crash, target: postgres, at: 1s, duration: 3s}\n"
        "abort:\n  - {name: money-lost, when: probe, probe: ledger, every: 500ms}\n"
    )
    from loadkit.chaos import Controller, load_scenario

    controller = Controller(load_scenario(scenario), stack, tmp_path / "run")
    controller.start()
    result = controller.stop(reason="test over", timeout=60) if controller.wait(30) else None
    assert result is not None and controller.abort_reason is None, controller.abort_reason
    assert stack.admin.invariants()["ok"]
