"""``loadkit chaos run`` as a library call: a scenario against a running stack, or a system
file's own components (``system``), without load.

It validates everything first (scenario, optional profile, targets against the allowlist, the
blast radius), then creates its own run directory with ``clock.json`` (t0 = now), ``run.json``
and the journal, takes the system's lock, runs the controller (the busy rate comes from its probe
traffic) and always rolls back: on the normal end, an abort, an exception, Ctrl-C or SIGTERM::

    result = run_gameday(GamedayOptions(Path("chaos/db-crash.yaml"), Path(".loadkit/stack")))
    result = run_gameday(GamedayOptions(Path("chaos/cache.yaml"), system=Path("systems/s.yaml")))
    print(result.status, result.run_dir)
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from loadkit.chaos.controller import Controller
from loadkit.chaos.env import make_env
from loadkit.chaos.results import ChaosResult, ChaosStatus
from loadkit.chaos.safety import blast_radius
from loadkit.chaos.scenario import Plan, Scenario, load_scenario
from loadkit.profile.model import Profile, load_profile
from loadkit.rundir import RunDir, RunRecord, RunStatus
from loadkit.safety import Allowlist
from loadkit.stack.reference import DEFAULT_STACK_DIR, ReferenceStack
from loadkit.stack.system import System, load_system

_RUN_STATUS = {
    ChaosStatus.COMPLETED: RunStatus.COMPLETED,
    ChaosStatus.DEVIATED: RunStatus.COMPLETED,
    ChaosStatus.ABORTED: RunStatus.ABORTED,
    ChaosStatus.HALTED: RunStatus.INTERRUPTED,
}


@dataclass
class GamedayOptions:
    scenario: Path
    stack_dir: Path = DEFAULT_STACK_DIR
    out: Path = Path("reports")
    profile: Path | None = None  # resolves phase-relative times; no load is sent
    allow: tuple[str, ...] = ()  # probe URLs beyond loopback (loadkit.safety)
    command: list[str] = field(default_factory=lambda: list(sys.argv))
    system: Path | None = None  # faults on this system file's components, not a stack


@dataclass
class Prepared:
    """Everything checked, nothing started."""

    scenario: Scenario
    profile: Profile | None
    stack: ReferenceStack | System
    plan: Plan
    hosts: Allowlist
    #: each fault's targets, resolved now (fault id → what it would touch)
    targets: dict[str, list[str]] = field(default_factory=dict)
    #: the run directory, once :func:`run_gameday` made it (for a rollback hint on any exit)
    run_dir: Path | None = None


def prepare(options: GamedayOptions, *, need_stack: bool = True) -> Prepared:
    """Validate the scenario (and profile), attach to the stack (or read the system file),
    check every target and resolve the blast radius."""
    scenario = load_scenario(options.scenario)
    profile = load_profile(options.profile) if options.profile else None
    hosts = Allowlist.parse(options.allow, source="--allow")
    target: ReferenceStack | System
    if options.system is not None:
        target = load_system(options.system)
    else:
        target = ReferenceStack.attach(options.stack_dir)
    env = make_env(target, "dry-run", patterns=scenario.allow, hosts=hosts)
    plan = Controller.check(scenario, env, profile, hosts=hosts)
    return Prepared(scenario, profile, target, plan, hosts, blast_radius(plan, env))


def run_gameday(
    options: GamedayOptions,
    *,
    prepared: Prepared | None = None,
    watch: Callable[[Controller], None] | None = None,
) -> ChaosResult:
    """Run the scenario to its end; ``watch`` is called with the controller about four times a
    second (the dashboard). Ctrl-C (or SIGTERM turned into KeyboardInterrupt) halts and rolls
    back; a second Ctrl-C does not stop the rollback."""
    ready = prepared or prepare(options)
    rd = RunDir.create(options.out, ready.scenario.name)
    run_dir = ready.run_dir = rd.path
    controller = Controller(
        ready.scenario, ready.stack, run_dir, ready.profile, load=False, hosts=ready.hosts
    )
    t0 = time.time()
    rd.write_clock(t0=t0, duration_s=ready.plan.end_s)
    record = RunRecord(
        run_id=run_dir.name,
        command=list(options.command),
        profile={"path": str(options.profile.absolute()), "name": ready.profile.name}
        if options.profile and ready.profile
        else {},
        target=_about(ready.stack),
        clock_t0=t0,
        scenario={
            "path": str(options.scenario.absolute()),
            "name": ready.scenario.name,
            "faults": len(ready.plan.faults),
            "end_s": ready.plan.end_s,
            "targets": controller.targets,
        },
    )
    rd.write_record(record)
    try:
        controller.acquire()  # one controller per system (ControllerBusy: exit 4)
        controller.start(t0)
        try:
            while not controller.wait(0.25):
                if watch is not None:
                    watch(controller)
        except KeyboardInterrupt:
            controller.halt("interrupted (Ctrl-C or SIGTERM)")
    finally:
        result = _stop(controller, watch)
        record.status = _RUN_STATUS.get(result.status, RunStatus.FAILED)
        record.reason = result.reason
        record.ended_at = time.time()
        rd.write_record(record)
    return result


def _about(target: ReferenceStack | System) -> dict[str, str]:
    if isinstance(target, System):
        return {"kind": "system", "system": str(Path(target.source).absolute())}
    return {"kind": "reference", "stack_dir": str(target.stack_dir)}


def _stop(controller: Controller, watch: Callable[[Controller], None] | None) -> ChaosResult:
    """Wait for the rollback whatever the operator presses meanwhile."""
    if controller.status is ChaosStatus.PENDING:  # it never started: nothing to roll back
        return controller.stop()
    while True:
        try:
            while not controller.wait(0.25):
                if watch is not None:
                    watch(controller)
            return controller.stop()
        except KeyboardInterrupt:
            controller.halt("interrupted (Ctrl-C or SIGTERM)")
