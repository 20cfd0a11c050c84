"""What the live view shows about the run that is going: its clocks and phases, the per-second
:class:`~loadkit.live.series.Series`, and the chaos scenario's timeline (faults pending, active
or reverted with their targets, abort conditions and steady-state probes with their state).

One :class:`LiveState` per command; a capacity search starts it again for every pass
(:meth:`LiveState.begin`). Everything is read and written under its lock: the run's own thread
feeds it, the web and metrics threads read it::

    state = LiveState("loadkit run")
    state.begin(run_id="20261128-193000-double11", run_dir=path, profile=profile)
    state.payload(t_from=0)          # the page's JSON, as bytes
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from loadkit.live.series import Series
from loadkit.profile.model import Profile
from loadkit.profile.outcome import CAUSE_INFO
from loadkit.rundir import (
    EVENTS,
    GATE,
    INTEGRITY,
    JUNIT_XML,
    REPORT_HTML,
    REPORT_JSON,
    RUN,
    SUMMARY_MD,
)

if TYPE_CHECKING:
    from loadkit.chaos.controller import Controller

#: the run-directory files the page links to once they exist, in this order
REPORT_FILES = (REPORT_HTML, SUMMARY_MD, REPORT_JSON, JUNIT_XML, GATE, INTEGRITY, EVENTS, RUN)
#: seconds of answers still arriving: tiles look this far back (as the terminal's progress)
LAG_S = 3


@dataclass
class FaultView:
    """One planned fault as it goes (run-clock seconds)."""

    id: str
    name: str
    type: str
    target: str
    start_s: float
    end_s: float | None
    state: str = "pending"
    injected_t: float | None = None
    reverted_t: float | None = None
    error: str | None = None


@dataclass
class RunView:
    """The run being watched."""

    run_id: str = ""
    run_dir: Path | None = None
    kind: str = "run"
    title: str = ""
    status: str = "waiting"  # waiting, starting, running, stopping, finished
    reason: str | None = None
    t0: float | None = None
    duration_s: float = 0.0
    phases: list[dict[str, Any]] = field(default_factory=list)
    stopped_at: float | None = None  # run clock when the load stopped
    started_wall: float = field(default_factory=time.time)


class LiveState:
    """Everything the page and the metrics show (see the module docstring)."""

    def __init__(self, title: str) -> None:
        self.title = title
        self.lock = threading.RLock()
        self.run = RunView(title=title)
        self.series = Series()
        self.profile: Profile | None = None
        self.controller: Controller | None = None
        self.scenario: str | None = None
        self.faults: list[FaultView] = []
        self.chaos: dict[str, Any] | None = None
        self.halt: dict[str, Any] | None = None  # who asked, when, why
        self.busy_limit: tuple[float, str] | None = None  # (fraction, where it comes from)
        #: the page's last poll (time.time()); None: no page ever connected
        self.last_poll: float | None = None
        self.revision = 0

    # -- fed by the run ----------------------------------------------------------------------

    def begin(
        self,
        *,
        run_id: str,
        run_dir: Path,
        profile: Profile | None,
        kind: str = "run",
        title: str | None = None,
        duration_s: float | None = None,
    ) -> None:
        """A new run: everything shown so far is for the previous one."""
        with self.lock:
            self.run = RunView(
                run_id=run_id,
                run_dir=run_dir,
                kind=kind,
                title=title or self.title,
                status="starting",
                duration_s=duration_s or (profile.duration_s if profile else 0.0),
                phases=_phases(profile),
            )
            self.profile = profile
            self.series = Series(profile)
            self.controller = None
            self.scenario = None
            self.faults = []
            self.chaos = None
            self.halt = None
            self.revision += 1

    def watch_chaos(self, controller: Controller) -> None:
        """Show this controller's plan, abort conditions and probes (and keep them current)."""
        with self.lock:
            self.controller = controller
            self.scenario = controller.scenario.name
            self.faults = [
                FaultView(
                    p.id,
                    p.spec.name,
                    p.spec.type,
                    _target(controller, p.spec.target),
                    p.start_s,
                    p.end_s,
                )
                for p in controller.plan.faults
            ]
            if not self.run.duration_s:
                self.run.duration_s = controller.plan.end_s
            self.refresh_chaos()

    def refresh_chaos(self) -> None:
        """Fault states, abort conditions and probes as the controller has them now."""
        c = self.controller
        if c is None:
            return
        with self.lock:
            for view, run in zip(self.faults, c.runs, strict=True):
                view.injected_t, view.reverted_t, view.error = (
                    run.injected_t,
                    run.reverted_t,
                    run.error,
                )
                view.state = _fault_state(
                    run.injected_t, run.reverted_t, run.done.is_set(), run.error, c.halted
                )
            before = {r.name: r for r in c.before}
            after = {r.name: r for r in c.after}
            probes = []
            for p in c.scenario.steady_state.probes:
                row: dict[str, Any] = {"name": p.name, "kind": str(p.kind)}
                for stage, results in (("before", before), ("after", after)):
                    r = results.get(p.name)
                    row[stage] = None if r is None else {"ok": r.ok, "detail": r.detail}
                probes.append(row)
            self.chaos = {
                "status": str(c.status),
                "reason": c.reason,
                "halted": c.halted,
                "finished": c.finished,
                "steady_before": c.scenario.steady_state.before,
                "steady_after": c.scenario.steady_state.after,
                "conditions": [
                    {
                        "name": cond.name,
                        "when": cond.describe(),
                        "state": c.watch_states.get(cond.name),
                    }
                    for cond in c.scenario.abort
                ],
                "probes": probes,
            }

    # -- read by the page and the metrics ----------------------------------------------------

    def now(self) -> float | None:
        """Run-clock seconds now (None before the clock started)."""
        t0 = self.run.t0
        return None if t0 is None else time.time() - t0

    def report_files(self) -> list[str]:
        run_dir = self.run.run_dir
        if run_dir is None or self.run.status != "finished":
            return []
        return [name for name in REPORT_FILES if (run_dir / name).is_file()]

    def payload(self, t_from: int = 0) -> bytes:
        """The page's JSON: the run, its points from ``t_from`` on, tiles, the scenario."""
        with self.lock:
            self.last_poll = time.time()
            run = self.run
            now = self.now()
            end = int(now) - LAG_S if now is not None else 0
            if run.status == "finished":  # the whole of the last seconds is in
                end = (self.series.last_t or 0) + 1
            recent = self.series.window(end - 10, end)
            rate = self.series.window(end - 3, end)
            offered = self.series.offered(end - 3, end)
            body = {
                "revision": self.revision,
                "server_time": time.time(),
                "run": {
                    "run_id": run.run_id,
                    "kind": run.kind,
                    "title": run.title,
                    "status": run.status,
                    "reason": run.reason,
                    "t0": run.t0,
                    "now": now,
                    "duration_s": run.duration_s,
                    "stopped_at": run.stopped_at,
                    "phases": run.phases,
                    "phase": self.phase_at(now),
                    "scenario": self.scenario,
                },
                "points": self.series.points(max(0, t_from)),
                "recent": {
                    **recent,
                    "rate_a": rate["a"],
                    "offered_per_s": None if offered is None else offered / 3,
                    "totals": self.series.totals,
                },
                "faults": [vars(f) for f in self.faults],
                "chaos": self.chaos,
                "halt": self.halt,
                "reports": self.report_files(),
                "busy_limit": self.busy_limit[0] if self.busy_limit else None,
                "colours": {c.value: info.colour for c, info in CAUSE_INFO.items()},
            }
        return orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY)

    def phase_at(self, now: float | None) -> str | None:
        """The profile phase running at run-clock ``now`` (None before, after, or without)."""
        if now is None or self.profile is None or self.run.status == "finished":
            return None
        return self.profile.phase_at(min(now, self.profile.duration_s - 1e-9))


def _phases(profile: Profile | None) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    if profile is None:
        return out
    clock = 0.0
    for stage in profile.stages:
        length = stage.duration_s * profile.time_scale
        out.append({"name": stage.name, "start_s": clock, "end_s": clock + length})
        clock += length
    return out


def _target(controller: Controller, target: str) -> str:
    """A fault's target, with the instances a group (``wallets``) stands for."""
    from loadkit.chaos.faults.base import ALL_WALLETS

    if target == ALL_WALLETS:
        try:
            return f"{target} ({', '.join(controller.env.wallet_names(target))})"
        except Exception:  # the stack's manifest is read; a target that cannot be listed stays
            return target
    return target


def _fault_state(
    injected: float | None, reverted: float | None, done: bool, error: str | None, halted: bool
) -> str:
    if reverted is not None:
        return "failed, reverted" if error else "reverted"
    if injected is not None:
        if not done:
            return "reverting" if halted else "active"
        return "revert failed" if error else "reverted"
    if done:
        return "failed" if error else "not run"
    return "pending"
