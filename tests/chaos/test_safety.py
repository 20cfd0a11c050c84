"""Abort conditions fed by the run's timeline (the load's own busy rate), and the allowlist."""

from __future__ import annotations

import json
import textwrap
import threading
import time
from pathlib import Path

from loadkit.chaos import Allowlist, ChaosStatus, Controller, load_scenario, make_plan
from loadkit.stack.reference import ReferenceStack


def _scenario(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "scenario.yaml"
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


def test_under_load_the_busy_rate_comes_from_the_timeline(
    stack: ReferenceStack, tmp_path: Path
) -> None:
    path = _scenario(
        tmp_path,
        """
        faults:
          - {name: policy, type: wallet.policy, at: 200ms, duration: 1m}
        abort:
          - {name: surge-too-busy, when: busy-rate, above: 60%, window: 2s, for: 0s}
        """,
    )
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    timeline = run_dir / "timeline.jsonl"
    stop = threading.Event()

    def load() -> None:  # what the Locust master writes: per-second deltas, mostly busy
        with timeline.open("w") as fh:
            fh.write('{"schema": "loadkit.timeline/v1", "latency_unit": "us"}\n')
            for t in range(30):
                n = {"ok": 10, "busy": 90}
                line = {"t": t, "phase": "p", "journey": "*", "endpoint": "*", "level": "action"}
                fh.write(json.dumps({**line, "n": n}) + "\n")
                fh.flush()
                if stop.wait(0.5):
                    return

    told: list[str] = []
    controller = Controller(
        load_scenario(path),
        ReferenceStack.attach(stack.stack_dir),
        run_dir,
        load=True,
        on_abort=told.append,
    )
    writer = threading.Thread(target=load)
    writer.start()
    try:
        controller.start(time.time())
        assert controller.wait(20)
    finally:
        stop.set()
        writer.join()
    result = controller.result()
    assert result.status is ChaosStatus.ABORTED
    assert told and "surge-too-busy" in told[0] and "busy 90%" in told[0]
    assert controller.stats.source == "timeline"
    assert {s["policy"] for s in stack.admin.state()} == {"normal"}


def test_default_allowlist_is_the_stacks_own_components(stack: ReferenceStack) -> None:
    allowlist = Allowlist.for_stack(ReferenceStack.attach(stack.stack_dir))
    assert allowlist.allowed == {
        "wallet-1",
        "wallet-2",
        "postgres",
        "wallet-1-postgres",
        "wallet-2-postgres",
        "client-wallet-1",
        "client-wallet-2",
    }
    assert all(c.address.startswith("127.0.0.1:") for c in allowlist.candidates.values())


def test_every_wallet_target_needs_every_instance_allowed(
    stack: ReferenceStack, tmp_path: Path
) -> None:
    path = _scenario(
        tmp_path,
        """
        faults:
          - {type: wallet.maintenance, at: 1s, duration: 1s}
        safety:
          allow: [wallet-1]
        """,
    )
    plan = make_plan(load_scenario(path))
    problems = Allowlist.for_stack(stack, ("wallet-1",)).problems(plan)
    assert problems == [
        "fault 'maintenance-1' (wallet.maintenance): 'wallet-2' is not in the allowlist "
        "(safety.allow: wallet-1)"
    ]
