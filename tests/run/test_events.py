"""Run events: the hooks themselves, and the order a real run fires them in."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from loadkit.errors import ConfigError
from loadkit.run.events import EventHook, RunEvents, RunListener
from loadkit.run.orchestrator import Runner, RunOptions
from loadkit.stack.reference import ReferenceStack
from tests.conftest import PlainService


def test_a_failing_listener_is_logged_and_the_others_still_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    hook = EventHook("tick")
    seen: list[str] = []

    def broken(run: Any, **kw: Any) -> None:
        raise RuntimeError("listener bug")

    hook.add_listener(broken)
    hook.add_listener(lambda run, **kw: seen.append("second"))
    with caplog.at_level(logging.ERROR, logger="loadkit.run"):
        hook.fire(None, t=1.0)  # type: ignore[arg-type]
    assert seen == ["second"]
    assert "listener bug" in caplog.text


def test_starting_listeners_may_refuse_the_run_and_control_flow_passes() -> None:
    hook = RunEvents().starting

    def refuse(run: Any) -> None:
        raise ConfigError("not today")

    hook.add_listener(refuse)
    with pytest.raises(ConfigError, match="not today"):
        hook.fire(None)  # type: ignore[arg-type]
    tick = EventHook("tick")

    def interrupt(run: Any, **kw: Any) -> None:
        raise KeyboardInterrupt

    tick.add_listener(interrupt)
    with pytest.raises(KeyboardInterrupt):
        tick.fire(None, t=0.0)  # type: ignore[arg-type]


def test_run_listener_hooks_only_what_it_overrides() -> None:
    class OnlyTicks(RunListener):
        def on_tick(self, run: Any, t: float) -> None: ...

    events = RunEvents()
    OnlyTicks().attach(events)
    assert len(events.tick.listeners) == 1
    assert all(not hook.listeners for hook in events if hook is not events.tick)


class Recorder(RunListener):
    def __init__(self) -> None:
        self.seen: list[tuple[str, dict[str, Any]]] = []

    def _note(self, name: str, **kw: Any) -> None:
        if name != "tick" or not self.seen or self.seen[-1][0] != "tick":
            self.seen.append((name, kw))

    def on_starting(self, run: Runner) -> None:
        assert run.run_dir.is_dir() and run.record.run_id == run.run_dir.name
        self._note("starting")

    def on_started(self, run: Runner, t0: float) -> None:
        assert run.t0 == t0
        self._note("started", t0=t0)

    def on_tick(self, run: Runner, t: float) -> None:
        self._note("tick", t=t)

    def on_fault_injected(self, run: Runner, fault: str, type: str, target: str, t: float) -> None:
        self._note("fault_injected", fault=fault, type=type, target=target)

    def on_fault_reverted(
        self, run: Runner, fault: str, type: str, target: str, t: float, ok: bool
    ) -> None:
        self._note("fault_reverted", fault=fault, ok=ok)

    def on_stopping(self, run: Runner, reason: str | None) -> None:
        self._note("stopping", reason=reason)

    def on_finishing(self, run: Runner) -> None:
        self._note("finishing")

    def on_finished(self, run: Runner, result: Any) -> None:
        self._note("finished", status=result.status)


def test_a_run_fires_its_events_in_order(plain_service: PlainService, tmp_path: Path) -> None:
    profile = tmp_path / "p.yaml"
    profile.write_text(
        "name: events\nstages:\n  - {name: steady, duration: 3s, rate: 20/s}\n"
        "journeys:\n  - name: health\n    http:\n      - {name: health, path: /healthz}\n"
    )
    runner = Runner(RunOptions(profile=profile, target=plain_service.url, out=tmp_path / "r"))
    recorder = Recorder()
    recorder.attach(runner.events)
    result = runner.run()
    names = [name for name, _ in recorder.seen]
    assert names == ["starting", "started", "tick", "stopping", "finishing", "finished"]
    assert dict(recorder.seen)["stopping"] == {"reason": None}
    assert dict(recorder.seen)["finished"] == {"status": "completed"}
    assert result.status == "completed"


def test_stop_from_a_tick_listener_ends_the_run_early(
    plain_service: PlainService, tmp_path: Path
) -> None:
    profile = tmp_path / "p.yaml"
    profile.write_text(
        "name: early\nstages:\n  - {name: steady, duration: 60s, rate: 10/s}\n"
        "journeys:\n  - name: health\n    http:\n      - {name: health, path: /healthz}\n"
    )
    runner = Runner(RunOptions(profile=profile, target=plain_service.url, out=tmp_path / "r"))
    reasons: list[str | None] = []

    def enough(run: Runner, t: float) -> None:
        if t > 2 and run.stop_reason is None:
            run.stop("seen enough")

    runner.events.tick.add_listener(enough)
    runner.events.stopping.add_listener(lambda run, reason: reasons.append(reason))
    result = runner.run()
    assert result.status == "completed"
    assert result.record.reason == "stopped early: seen enough"
    assert reasons == ["seen enough"]
    assert result.record.ended_at is not None
    assert result.record.ended_at - result.record.started_at < 40


CHAOS_PROFILE = """
name: chaos-events
stages:
  - {name: before, duration: 3s, rate: 20/s}
  - {name: during, duration: 3s, rate: 20/s}
  - {name: after, duration: 3s, rate: 20/s}
journeys:
  - {wallet: balance, weight: 1}
"""


def test_faults_are_published_as_run_events(stack: ReferenceStack, tmp_path: Path) -> None:
    profile = tmp_path / "p.yaml"
    profile.write_text(CHAOS_PROFILE)
    scenario = tmp_path / "s.yaml"
    scenario.write_text(
        "name: slow-link\nfaults:\n"
        "  - {name: slow, type: network.latency, target: client-wallet-1, at: during, duration: 2s,"
        " latency: 50ms}\n"
    )
    runner = Runner(
        RunOptions(profile=profile, chaos=scenario, stack_dir=stack.stack_dir, out=tmp_path / "r")
    )
    recorder = Recorder()
    recorder.attach(runner.events)
    runner.run()
    names = [name for name, _ in recorder.seen if name != "tick"]
    assert names == [
        "starting",
        "started",
        "fault_injected",
        "fault_reverted",
        "stopping",
        "finishing",
        "finished",
    ]
    seen = dict(recorder.seen)
    assert seen["fault_injected"] == {
        "fault": "slow",
        "type": "network.latency",
        "target": "client-wallet-1",
    }
    assert seen["fault_reverted"] == {"fault": "slow", "ok": True}
