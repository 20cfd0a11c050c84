"""The chaos controller: faults injected at their moment on the run clock, abort conditions
watched, and everything always put back.

Threads, all plain (no gevent): one per fault (sleeps until its start, injects, sleeps until its
end or a halt, reverts), a main thread (steady state before, abort conditions every 0.25 s,
steady state after, the final rollback from the journal), and in standalone runs the probe
traffic. Faults of one slot on one target run one after the other (a later one waits for the
earlier one's revert). Everything the controller does is journaled in ``events.jsonl``.

It acts on an environment (:mod:`loadkit.chaos.env`): the reference stack, or a system file's
own components. Before anything is injected it resolves every fault's targets (the blast
radius, journaled in the header) and takes the system's lock (:mod:`loadkit.chaos.lock`: one
controller per system; a second one is refused, exit 4). Used by ``loadkit run --chaos`` (which
also stops the load when an abort fires) and by ``loadkit chaos run``::

    controller = Controller(scenario, stack_or_system, run_dir, profile, load=True)
    controller.start(t0)              # returns at once
    ...                               # the load runs
    result = controller.stop()        # halts what is left, rolls back, returns a ChaosResult
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import psutil

from loadkit import safety
from loadkit.chaos.catalog import FAULTS
from loadkit.chaos.env import make_env
from loadkit.chaos.faults.base import ChaosEnv, Fault, TargetKind
from loadkit.chaos.lock import ControllerLock
from loadkit.chaos.probes import BusySource, Prober, ProbeResult, TimelineSource, WindowStats
from loadkit.chaos.probes import check_probe as _check_probe
from loadkit.chaos.results import ChaosResult, ChaosStatus, FaultRun
from loadkit.chaos.rollback import revert_outstanding
from loadkit.chaos.safety import AbortWatch, Allowlist, blast_radius
from loadkit.chaos.scenario import (
    Plan,
    PlannedFault,
    ProbeKind,
    Scenario,
    make_plan,
    same_target,
)
from loadkit.errors import ConfigError, LoadkitError
from loadkit.profile.model import Profile
from loadkit.rundir.events import FILENAME, Journal
from loadkit.stack.reference import ReferenceStack
from loadkit.stack.system import System

#: what a controller acts on: the reference stack, a system file, or an environment made already
Target = ReferenceStack | System | ChaosEnv

log = logging.getLogger(__name__)
TICK = 0.25
BEFORE_LEAD = 1.0  # the steady state is checked this long before the first fault


@dataclass(frozen=True)
class FaultEvent:
    """A fault went in (``kind`` ``injected``) or came out (``reverted``; ``ok`` False when the
    revert failed and the final sweep will retry), at run-clock ``t``."""

    kind: str
    fault: str
    type: str
    target: str
    t: float
    ok: bool = True


class Controller:
    """Runs one scenario's plan against a stack or a system, on the run clock from ``t0``.

    The constructor validates everything (phase-relative times against ``profile``, overlaps,
    the allowlist) and resolves the blast radius, and raises before anything is touched:
    ``SpecError`` (exit 2) or ``TargetRefused`` (exit 4). ``load``: a load runs alongside and
    writes ``timeline.jsonl`` in ``run_dir`` (the busy rate comes from it); otherwise the
    controller sends probe traffic."""

    def __init__(
        self,
        scenario: Scenario,
        stack: Target,
        run_dir: Path,
        profile: Profile | None = None,
        *,
        load: bool = False,
        on_abort: Callable[[str], None] | None = None,
        on_fault: Callable[[FaultEvent], None] | None = None,
        hosts: safety.Allowlist | None = None,
    ) -> None:
        self.scenario = scenario
        #: told, from a fault's thread, when it went in and when it came out
        self.on_fault = on_fault
        self.env: ChaosEnv = make_env(
            stack, tag=run_dir.name[-24:], patterns=scenario.allow, hosts=hosts
        )
        self.plan: Plan = Controller.check(scenario, self.env, profile, hosts=hosts)
        #: each fault's targets as resolved before anything is injected (fault id → targets)
        self.targets: dict[str, list[str]] = blast_radius(self.plan, self.env)
        self.stack: ReferenceStack | None = getattr(self.env, "stack", None)
        self.run_dir = run_dir
        self.load = load
        self.on_abort = on_abort
        self.lock = ControllerLock(self.env.lock_path(), run_dir)
        self.runs = [FaultRun(p) for p in self.plan.faults]
        self.status = ChaosStatus.PENDING
        self.reason: str | None = None
        self.before: list[ProbeResult] = []
        self.after: list[ProbeResult] = []
        self.stats = WindowStats()
        #: seconds from the last fault's end until the busy rate was back (None: not yet)
        self.recovered_in: float | None = None
        #: abort condition → its state as last evaluated ("ok (busy 3%)", "TRIPPED for 4s …")
        self.watch_states: dict[str, str] = {}
        self.t0 = 0.0
        self.journal: Journal | None = None
        self._halt = threading.Event()
        self._ready = threading.Event()  # the steady state held before the first fault
        self._finished = threading.Event()
        self._threads: list[threading.Thread] = []
        self._prober: Prober | None = None
        #: where the busy rate comes from (the run's timeline, or the probe traffic)
        self.source: BusySource | None = None
        self._result: ChaosResult | None = None
        self._lock = threading.Lock()

    @staticmethod
    def check(
        scenario: Scenario,
        stack: Target,
        profile: Profile | None = None,
        *,
        hosts: safety.Allowlist | None = None,
    ) -> Plan:
        """The plan on the run clock, after the safety checks (fault targets against the
        environment's components, probe URLs against ``hosts`` and a system's own allowlist:
        loopback when None); raises before anything is done."""
        plan = make_plan(scenario, profile)
        env = make_env(stack, tag="check", patterns=scenario.allow, hosts=hosts)
        Allowlist.for_env(env).enforce(plan)
        allow = getattr(env, "hosts", None) or hosts or safety.Allowlist()
        for i, probe in enumerate(scenario.steady_state.probes):
            if probe.url:
                allow.check_url(probe.url, what=f"steady_state.probes[{i}].url")
            if env.kind == "system" and probe.kind in (ProbeKind.READYZ, ProbeKind.INVARIANTS):
                raise ConfigError(
                    f"steady_state.probes[{i}] ({probe.name}): a {probe.kind.value} probe checks "
                    "the reference wallet; on a system, use http probes (or busy-rate, p95)"
                )
        return plan

    # -- public API ---------------------------------------------------------------------------

    @property
    def abort_reason(self) -> str | None:
        """Why an abort condition stopped the run (None: it did not)."""
        return self.reason if self.status is ChaosStatus.ABORTED else None

    def now(self) -> float:
        """Run-clock seconds."""
        return time.time() - self.t0

    @property
    def halted(self) -> bool:
        """True once a halt or an abort was asked for (faults are being, or were, reverted)."""
        return self._halt.is_set()

    @property
    def finished(self) -> bool:
        return self._finished.is_set()

    def acquire(self) -> None:
        """Take the system's lock (:class:`~loadkit.chaos.lock.ControllerBusy`, exit 4, when
        another controller holds it or an earlier run left faults in place). :meth:`start` does
        it too; call it first to be refused before anything else starts (the load)."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.lock.acquire()

    def start(self, t0: float | None = None) -> None:
        """Take the lock, open the journal and start the threads; returns at once. ``t0``: the
        run clock's origin (Unix time, from ``clock.json``); now when None."""
        self.acquire()
        self.t0 = time.time() if t0 is None else t0
        me = psutil.Process()
        header = {
            "run_id": self.run_dir.name,
            "scenario": self.scenario.name,
            "scenario_path": self.scenario.source,
            "env": self.env.describe(),
            "patterns": list(self.scenario.allow),
            "tag": self.env.tag,
            "controller_pid": me.pid,
            "controller_started": me.create_time(),
            "lock": str(self.lock.path),
            "plan": [_plan_entry(p, self.targets.get(p.id, [])) for p in self.plan.faults],
            "end_s": self.plan.end_s,
        }
        if self.stack is not None:
            header["stack_dir"] = str(self.stack.stack_dir)
        self.journal = Journal.create(self.run_dir / FILENAME, t0=self.t0, header=header)
        self.journal.write("scenario.start", faults=len(self.plan.faults), load=self.load)
        if self.load:
            self.source = TimelineSource(self.run_dir)
        else:
            system: System | None = getattr(self.env, "system", None)
            urls = tuple(p.url for p in system.probes) if system is not None else ()
            traffic = self.scenario.steady_state.traffic
            self._prober = Prober(self.stack, traffic, self.now, urls)
            self._prober.start()
            self.source = self._prober
        self.status = ChaosStatus.RUNNING
        for run in self.runs:
            self._spawn(self._fault_thread, run, f"chaos-{run.planned.id}")
        self._spawn(self._main, None, "chaos-main")

    def wait(self, timeout: float | None = None) -> bool:
        """True once the scenario has ended and everything is rolled back."""
        return self._finished.wait(timeout)

    def halt(self, reason: str = "halted") -> None:
        """Stop injecting and revert every active fault now (returns at once; then wait())."""
        with self._lock:
            if self._halt.is_set() or self._finished.is_set():
                return
            if self.status is ChaosStatus.RUNNING:
                self.status, self.reason = ChaosStatus.HALTED, reason
            self._halt.set()
        if self.journal is not None:
            self.journal.write("halt", reason=reason)

    def stop(self, reason: str = "the run ended", timeout: float = 300.0) -> ChaosResult:
        """Halt what is left (if anything), wait for the rollback, return the result. Ctrl-C
        meanwhile does not cut the rollback short (a second Ctrl-C used to leave faults in
        place with the journal ending at ``revert.begin``)."""
        if self.status is ChaosStatus.PENDING:
            self._finished.set()
            self.lock.release()
            return self.result()
        deadline = time.monotonic() + timeout
        asked = False
        while True:
            try:
                if not asked:
                    asked = True
                    self.halt(reason)
                self.wait(max(0.0, deadline - time.monotonic()))
                return self.result()
            except KeyboardInterrupt:
                log.warning(
                    "rolling back the faults: Ctrl-C does not stop that (if this process is "
                    "killed, run: loadkit chaos rollback %s)",
                    self.run_dir,
                )

    def result(self) -> ChaosResult:
        if self._result is not None:
            return self._result
        return self._summarize([])

    def __enter__(self) -> Controller:
        return self

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop("interrupted" if isinstance(e, KeyboardInterrupt) else "the run ended")

    # -- threads ------------------------------------------------------------------------------

    def _spawn(self, target: Callable[..., None], arg: object, name: str) -> None:
        thread = threading.Thread(target=target, args=(arg,) if arg else (), name=name, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _sleep_until(self, t: float) -> bool:
        """Sleep until run-clock ``t``; False when halted first."""
        return not self._halt.wait(max(0.0, t - self.now()))

    def _predecessors(self, run: FaultRun) -> list[FaultRun]:
        me = run.planned
        slot = FAULTS[me.spec.type].slot
        return [
            r
            for r in self.runs
            if r is not run
            and slot is not None
            and FAULTS[r.planned.spec.type].slot == slot
            and same_target(r.planned.spec, me.spec)
            and (r.planned.start_s, r.planned.id) < (me.start_s, me.id)
        ]

    def _fault_thread(self, run: FaultRun) -> None:
        try:
            self._one_fault(run)
        except Exception as exc:  # a bug must not leave the run waiting forever
            log.exception("fault %s", run.planned.id)
            run.error = run.error or f"{type(exc).__name__}: {exc}"
        finally:
            run.done.set()

    def _one_fault(self, run: FaultRun) -> None:
        p, journal = run.planned, self.journal
        assert journal is not None
        if not self._sleep_until(p.start_s - BEFORE_LEAD) or not self._wait_ready():
            return
        for earlier in self._predecessors(run):
            while not earlier.done.wait(0.05):
                if self._halt.is_set():
                    return
        if not self._sleep_until(p.start_s):
            return
        kind = FAULTS[p.spec.type]
        fault: Fault = kind.fault(self.env, p.spec.target, p.spec.params, p.spec.name)
        common = {"id": p.id, "fault": p.spec.name}
        refused = self._recheck(p)
        if refused:  # the system changed since the plan was checked: touch nothing
            run.error = "; ".join(refused)
            journal.write("inject.refused", **common, intended_t=p.start_s, reason=run.error)
            return
        try:
            state = fault.prepare()
        except (LoadkitError, OSError) as exc:
            run.error = _message(exc)
            journal.write("inject.skipped", **common, intended_t=p.start_s, error=run.error)
            return
        run.injected_t = journal.write(
            "inject.begin",
            **common,
            type=p.spec.type,
            target=p.spec.target,
            params=dict(p.spec.params),
            intended_t=p.start_s,
            state=state,
        )["t"]
        started = time.monotonic()
        try:
            added = fault.apply(state) or {}
            state.update(added)
            journal.write("inject.end", **common, result="ok", state=added, took=_since(started))
            self._tell(FaultEvent("injected", p.spec.name, p.spec.type, p.spec.target, self.now()))
        except Exception as exc:  # whatever went wrong, the revert below still runs
            run.error = _message(exc)
            journal.write("inject.end", **common, result="error", error=run.error)
        else:
            if p.end_s is not None:
                self._sleep_until(p.end_s)
        intended = p.end_s if p.end_s is not None and not self._halt.is_set() else None
        journal.write("revert.begin", **common, intended_t=intended, by="controller")
        started = time.monotonic()
        try:
            detail = fault.revert(state)
        except Exception as exc:  # journaled as failed: the final sweep tries again
            run.error = _message(exc)
            journal.write("revert.end", **common, result="error", error=run.error)
            self._tell(
                FaultEvent("reverted", p.spec.name, p.spec.type, p.spec.target, self.now(), False)
            )
            return
        journal.write("revert.end", **common, result="ok", detail=detail, took=_since(started))
        run.reverted_t = self.now()
        self._tell(FaultEvent("reverted", p.spec.name, p.spec.type, p.spec.target, run.reverted_t))

    def _recheck(self, p: PlannedFault) -> list[str]:
        """The fault's target against the allowlist again, at injection time (containers are
        checked by the fault itself when it chooses them)."""
        if FAULTS[p.spec.type].target is TargetKind.CONTAINER:
            return []
        try:
            return Allowlist.for_env(self.env).fault_problems(p.spec)
        except LoadkitError as exc:
            return [exc.message]

    def _tell(self, event: FaultEvent) -> None:
        if self.on_fault is None:
            return
        try:
            self.on_fault(event)
        except Exception:  # a listener must not stop a fault's revert
            log.exception("on_fault callback")

    def _wait_ready(self) -> bool:
        while not self._ready.wait(0.05):
            if self._halt.is_set():
                return False
        return not self._halt.is_set()

    def _main(self) -> None:
        journal = self.journal
        assert journal is not None
        try:
            watch = AbortWatch(self)
            self._before(watch)
            if not self._halt.is_set():
                self._ready.set()
            while not all(r.done.is_set() for r in self.runs):
                watch.tick()
                time.sleep(TICK if not self._halt.is_set() else 0.05)
            if self.status is ChaosStatus.RUNNING and self.scenario.steady_state.after:
                self._after(watch)
        except Exception as exc:
            log.exception("chaos controller")
            self.halt(f"controller error: {type(exc).__name__}: {exc}")
        finally:
            for run in self.runs:  # a halted fault thread still reverts; wait for it
                run.done.wait(120)
            self._finish(journal)

    def _before(self, watch: AbortWatch) -> None:
        steady = self.scenario.steady_state
        first = min((p.start_s for p in self.plan.faults), default=0.0)
        while self.now() < first - BEFORE_LEAD:  # abort conditions hold before any fault too
            watch.tick()
            if self._halt.wait(min(TICK, max(0.0, first - BEFORE_LEAD - self.now()))):
                return
        if not steady.before or self._halt.is_set():
            return
        self.before = self.check_probes()
        ok = all(r.ok for r in self.before)
        assert self.journal is not None
        self.journal.write("probe", stage="before", ok=ok, results=[vars(r) for r in self.before])
        if not ok:
            failed = "; ".join(f"{r.name}: {r.detail}" for r in self.before if not r.ok)
            self.abort(f"steady state not met before the first fault: {failed}")

    def _after(self, watch: AbortWatch) -> None:
        deadline = time.monotonic() + self.scenario.steady_state.recover_within_s
        while True:
            self.after = self.check_probes()
            if all(r.ok for r in self.after) or time.monotonic() >= deadline:
                break
            watch.tick()
            if self._halt.wait(1.0):
                break
        ok = all(r.ok for r in self.after)
        assert self.journal is not None
        self.journal.write("probe", stage="after", ok=ok, results=[vars(r) for r in self.after])
        if not ok and self.status is ChaosStatus.RUNNING:
            self.status = ChaosStatus.DEVIATED
            failed = "; ".join(f"{r.name}: {r.detail}" for r in self.after if not r.ok)
            self.reason = f"steady state not back after the faults: {failed}"

    def check_probes(self) -> list[ProbeResult]:
        assert self.source is not None
        now = self.now()
        return [
            _check_probe(p, self.env, self.source, now) for p in self.scenario.steady_state.probes
        ]

    def abort(self, reason: str, condition: str | None = None) -> None:
        """Fire an abort: journal it, tell the run (``on_abort``), halt and roll back."""
        with self._lock:
            if self._halt.is_set():
                return
            self.status, self.reason = ChaosStatus.ABORTED, reason
        if self.journal is not None:
            self.journal.write("abort", condition=condition, reason=reason)
        if self.on_abort is not None:
            try:
                self.on_abort(reason)
            except Exception:  # the run's callback must not stop the rollback
                log.exception("on_abort callback")
        self._halt.set()

    def _finish(self, journal: Journal) -> None:
        if self._prober is not None:
            self._prober.stop()
        sweep = revert_outstanding(journal, self.env, by="controller")
        self.env.close()
        if self.status is ChaosStatus.RUNNING:
            self.status = ChaosStatus.COMPLETED
        self._result = self._summarize([f"{f}: {e}" for f, e in sweep.failed])
        journal.write(
            "scenario.end",
            status=self.status.value,
            reason=self.reason,
            unreverted=self._result.unreverted,
        )
        journal.close()
        self.lock.release()
        self._finished.set()

    def _summarize(self, unreverted: list[str]) -> ChaosResult:
        return ChaosResult(
            status=self.status,
            reason=self.reason,
            run_dir=self.run_dir,
            injected=sum(1 for r in self.runs if r.injected_t is not None),
            reverted=sum(1 for r in self.runs if r.reverted_t is not None),
            errors=[f"{r.planned.spec.name}: {r.error}" for r in self.runs if r.error],
            before=self.before,
            after=self.after,
            unreverted=unreverted,
        )


def _plan_entry(p: PlannedFault, targets: list[str]) -> dict[str, object]:
    spec = p.spec
    return {
        "targets": targets,
        "id": p.id,
        "fault": spec.name,
        "type": spec.type,
        "target": spec.target,
        "start_s": p.start_s,
        "end_s": p.end_s,
        "at": str(spec.at),
    }


def _message(exc: BaseException) -> str:
    return getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"


def _since(started: float) -> float:
    return round(time.monotonic() - started, 4)
