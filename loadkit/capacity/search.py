"""The capacity search: step the arrival rate with a profile's journey mix until the objective
is lost, then step finely around that point; the knee is the highest rate that still met it.

Each pass is one ordinary run (:class:`~loadkit.run.orchestrator.Runner`) of a generated profile
(:mod:`loadkit.capacity.plan`): a ``ramp`` to the first rate, then the steps, ``step-NN-warmup``
(not measured) and ``step-NN`` (measured), each at one constant rate with the source profile's
journeys, client, users and network. A pass stops early
once ``stop_after`` steps in a row have lost the objective (higher rates only cost time). The
``coarse`` pass goes from ``start_rate`` to ``max_rate`` in ``step`` increments; the ``fine`` pass
re-checks the last passing rate and steps by ``resolution`` up to the first failing one::

    result = find_capacity(CapacityOptions(profile=Path("profiles/double11.yaml"),
                                           objectives=(StepObjective(Measure.BUSY_RATE, 0.01),)))
    result.outcome, result.knee_rate      # (Outcome.KNEE, 1450.0)

Steps whose generator could not keep the schedule (more than 1% unsent) are reported as
``generator-limited``, never as busy. On the reference stack the wallet's own busy causes
(``rate_limited``, ``db_pool_timeout``, ``db_unavailable``…) are read from every instance's
``/metrics`` while the steps run, so each step says where its busy answers came from.
"""

from __future__ import annotations

import contextlib
import ssl
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from loadkit.capacity.causes import WalletCauses
from loadkit.capacity.judge import bracket, conclude, from_bucket, from_stats, judge, verdict_of
from loadkit.capacity.model import (
    CapacityResult,
    PassRecord,
    StepObjective,
    StepResult,
    Verdict,
)
from loadkit.capacity.plan import (
    CapacityOptions,
    Settings,
    ramp_s,
    resolve_settings,
    step_profile_text,
)
from loadkit.errors import ConfigError, StackNotRunning
from loadkit.profile.model import load_profile
from loadkit.rundir import RunDir
from loadkit.rundir.record import new_run_dir

__all__ = ["CapacityOptions", "CapacitySearch", "Settings", "find_capacity"]


# -- one pass ---------------------------------------------------------------------------------


class _Watch:
    """The pass's live view: samples wallet metrics, judges steps as their answers arrive,
    reports them, and stops the run after ``stop_after`` failing steps in a row."""

    def __init__(
        self,
        runner: Any,
        steps: list[StepResult],
        objectives: tuple[StepObjective, ...],
        lag_s: float,
        stop_after: int,
        causes: WalletCauses,
        say: Callable[[str], None],
    ) -> None:
        self.runner = runner
        self.steps = steps
        self.objectives = objectives
        self.lag_s = lag_s
        self.stop_after = stop_after
        self.causes = causes
        self.say = say
        self.judged = 0
        self.bad_in_row = 0
        self.stopped_at: float | None = None  # run-clock seconds

    def __call__(self, progress: Any) -> None:
        self.causes.sample()
        elapsed = float(progress.elapsed)
        while self.judged < len(self.steps) and self.stopped_at is None:
            step = self.steps[self.judged]
            if elapsed < step.end_s + self.lag_s:
                return
            self.judged += 1
            timeline = self.runner.timeline
            measured = {
                level: from_bucket(timeline.select(level, phase=step.phase))
                for level in ("action", "request")
            }
            failed = judge(measured, self.objectives)
            verdict = verdict_of(measured["action"], failed)
            a = measured["action"]
            rate = a.busy / a.answered if a.answered else 0.0
            self.say(
                f"  {step.pass_name} step {step.index}: {step.rate:g}/s → {verdict.value}"
                f" (busy {rate * 100:.2f}%"
                + (f", p99 {a.p99_ms:,.0f}ms" if a.p99_ms is not None else "")
                + ")"
            )
            bad = verdict in (Verdict.FAIL, Verdict.GENERATOR_LIMITED)
            self.bad_in_row = self.bad_in_row + 1 if bad else 0
            if self.bad_in_row >= self.stop_after and self.judged < len(self.steps):
                self.stopped_at = elapsed
                self.runner.stop(f"{self.bad_in_row} steps in a row lost the objective")
                self.say(f"  {step.pass_name} pass: seen enough, stopping")


class CapacitySearch:
    """One search (see the module docstring); :func:`find_capacity` is the short way."""

    def __init__(
        self,
        options: CapacityOptions,
        on_event: Callable[[str], None] | None = None,
        *,
        on_runner: Callable[[Any], object] | None = None,
    ) -> None:
        self.options = options
        self.say = on_event or (lambda _line: None)
        #: called with each pass's Runner before it runs (the live view attaches there)
        self.on_runner = on_runner
        #: halt() was called: the pass going stops, no other starts
        self.halted: str | None = None
        self._runner: Any = None
        if not options.objectives:
            raise ConfigError("capacity needs at least one objective (e.g. --max-busy 1%)")
        for obj in options.objectives:
            if obj.level not in ("action", "request"):
                raise ConfigError(f"objective {obj.label()}: level must be action or request")
        self.profile = load_profile(options.profile)  # validated before anything starts
        self.settings = resolve_settings(options, self.profile)
        # what a pass's run will check (target, journeys, scenario, workers), checked now on the
        # source profile: a Runner starts nothing until run()
        from loadkit.run.orchestrator import Runner

        Runner(self._run_options(options.profile, None, Path(options.out)), None)
        self.notes: list[str] = []
        client = self.profile.client
        self.lag_s = min(client.timeout_s * client.retries.attempts, 10.0) + 1.5

    def halt(self, reason: str) -> None:
        """Stop the pass that is going (its steps so far are judged) and start no other."""
        self.halted = reason
        if self._runner is not None:
            self._runner.abort(reason, safety=False)

    def run(self) -> CapacityResult:
        opts = self.options
        started = time.time()
        if opts.stack_dir is not None:
            from loadkit.stack.reference import ReferenceStack

            ReferenceStack.attach(opts.stack_dir)  # StackNotRunning (exit 3) before any file
        cdir = new_run_dir(opts.out, f"{self.profile.name}-capacity")
        steps: list[StepResult] = []
        passes: list[PassRecord] = []
        notes = self.notes
        with contextlib.ExitStack() as cleanup:
            stack_dir = self._stack(cleanup, cdir)
            urls: list[str] = []
            verify: ssl.SSLContext | bool = True
            if stack_dir is not None:
                from loadkit.stack.reference import ReferenceStack

                wallets = ReferenceStack.attach(stack_dir).manifest.wallets
                urls = [w.url for w in wallets]
                verify = wallets[0].verify if wallets else True  # the stack CA's, over HTTPS
            causes = WalletCauses(urls, verify=verify)
            cleanup.callback(causes.close)
            coarse = self.settings.coarse_rates()
            self.say(
                f"coarse pass: {len(coarse)} steps of {self.settings.hold_s:g}s from "
                f"{coarse[0]:g}/s to {coarse[-1]:g}/s"
            )
            record, found = self._pass("coarse", coarse, cdir, stack_dir, causes)
            passes.append(record)
            steps.extend(found)
            low, high = bracket(steps)
            if self.halted is not None:
                notes.append(f"halted: {self.halted}; no fine pass")
            elif low is not None and high is not None and high - low > self.settings.resolution:
                fine = self.settings.fine_rates(low, high)
                self.say(
                    f"fine pass: {len(fine)} steps from {fine[0]:g}/s to {fine[-1]:g}/s "
                    f"(first failing rate {high:g}/s)"
                )
                record, found = self._pass("fine", fine, cdir, stack_dir, causes)
                passes.append(record)
                steps.extend(found)
        result = conclude(steps)
        outcome, knee, at_least, first_fail, message = result
        if any(s.verdict is Verdict.GENERATOR_LIMITED for s in steps):
            notes.append(
                "some steps were generator-limited (more than 1% of arrivals unsent): add "
                "--workers or raise users.max_in_flight; they count neither as pass nor as fail"
            )
        return CapacityResult(
            capacity_dir=str(cdir),
            profile=self.profile.name,
            objectives=[o.label() for o in opts.objectives],
            outcome=outcome,
            knee_rate=knee,
            at_least=at_least,
            first_failing_rate=first_fail,
            message=message,
            steps=steps,
            passes=passes,
            settings={
                "start_rate": self.settings.start_rate,
                "max_rate": self.settings.max_rate,
                "step": self.settings.step,
                "resolution": self.settings.resolution,
                "hold_s": self.settings.hold_s,
                "warmup_s": self.settings.warmup_s,
                "stop_after": opts.stop_after,
                "slo": opts.slo_name,
                "profile_path": str(Path(opts.profile).absolute()),
            },
            scenario=str(opts.chaos) if opts.chaos else None,
            target="system"
            if opts.system
            else "http"
            if opts.target and opts.stack_dir is None
            else "reference",
            started_at=started,
            ended_at=time.time(),
            notes=notes,
        )

    def _stack(self, cleanup: contextlib.ExitStack, cdir: Path) -> Path | None:
        """The stack every pass uses: the one given, a running default one, or one of its own
        (started once, stopped at the end); ``None`` for a ``--target`` service."""
        from loadkit.stack.reference import ReferenceStack, StackOptions, stack_dir_from
        from loadkit.stack.watchdog import Watchdog

        opts = self.options
        if opts.stack_dir is not None:
            return opts.stack_dir
        if opts.target or opts.system:
            return None
        with contextlib.suppress(StackNotRunning):
            if ReferenceStack.attach(stack_dir_from()).any_alive():
                return stack_dir_from()
        self.say("starting the reference wallet stack…")
        # the stack dies with this process however it ends (SIGKILL too): see stack/watchdog.py
        watchdog = Watchdog.start(cdir, cdir / "logs" / "watchdog.log")
        cleanup.callback(watchdog.release)
        watchdog.watch_stack(cdir / "stack")
        stack = ReferenceStack.up(
            cdir / "stack",
            StackOptions(instances=opts.instances, users=self.profile.users.accounts),
        )
        cleanup.callback(stack.down)
        return stack.stack_dir

    def _run_options(self, profile: Path, stack_dir: Path | None, out: Path) -> Any:
        from loadkit.run.orchestrator import RunOptions

        opts = self.options
        return RunOptions(
            profile=profile,
            target=opts.target,
            workers=opts.workers,
            out=out,
            stack_dir=stack_dir if stack_dir is not None else opts.stack_dir,
            chaos=opts.chaos,
            command=list(opts.command),
            allow=opts.allow,
            system=opts.system,
            ca=opts.ca,
        )

    def _pass(
        self,
        name: str,
        rates: list[float],
        cdir: Path,
        stack_dir: Path | None,
        causes: WalletCauses,
    ) -> tuple[PassRecord, list[StepResult]]:
        from loadkit.report import write_reports
        from loadkit.report.metrics import compute_metrics
        from loadkit.run.orchestrator import Runner

        opts, s = self.options, self.settings
        path = cdir / f"{name}.yaml"
        path.write_text(
            step_profile_text(opts.profile, self.profile, name, rates, s), encoding="utf-8"
        )
        ramp = ramp_s(self.profile, rates[0], s)
        steps = [
            StepResult(
                index=i,
                pass_name=name,
                rate=rate,
                start_s=ramp + (i - 1) * s.hold_s + s.warmup_s,
                end_s=ramp + i * s.hold_s,
            )
            for i, rate in enumerate(rates, start=1)
        ]
        runner = Runner(self._run_options(path, stack_dir, cdir / "runs"), None)
        watch = _Watch(
            runner, steps, opts.objectives, self.lag_s, opts.stop_after, causes, self.say
        )
        runner.on_progress = watch
        self._runner = runner
        if self.on_runner is not None:
            self.on_runner(runner)
        result = runner.run()
        causes.sample(force=True)
        t0 = result.record.clock_t0
        if (clock := RunDir(result.run_dir).read_clock()) is not None:
            t0 = clock.t0
        m = compute_metrics(result.run_dir)
        write_reports(result.run_dir, metrics=m)  # each pass's run directory: every report file
        for step in steps:
            step.run_id = result.run_dir.name
            if watch.stopped_at is not None and step.end_s + self.lag_s > watch.stopped_at:
                continue  # not measured: the pass stopped before its answers were in
            phase = m.phase(step.phase)
            if phase is None:
                continue
            a, r = phase.action, phase.request
            measured = {"action": from_stats(a), "request": from_stats(r)}
            step.failed = judge(measured, opts.objectives)
            step.verdict = verdict_of(measured["action"], step.failed)
            step.offered_rate = phase.offered_rate
            step.achieved_rate = phase.achieved_rate
            step.answered, step.busy, step.unsent = (
                a.counts.answered,
                a.counts.busy,
                a.counts.unsent,
            )
            step.busy_rate, step.request_busy_rate = a.busy_rate, r.busy_rate
            step.p50_ms, step.p95_ms, step.p99_ms = a.latency.p50, a.latency.p95, a.latency.p99
            scheduled = a.counts.scheduled
            step.unsent_share = a.counts.unsent / scheduled if scheduled else 0.0
            step.causes = dict(r.counts.causes)
            if t0 is not None and causes.urls:
                step.wallet_causes = causes.between(t0 + step.start_s, t0 + step.end_s)
        record = PassRecord(name, str(result.run_dir), result.status, result.record.reason)
        if result.status != "completed":
            self.notes.append(
                f"the {name} pass ended {result.status}: {result.record.reason}; "
                "its steps were judged on what was recorded"
            )
        return record, steps


def find_capacity(
    options: CapacityOptions, on_event: Callable[[str], None] | None = None
) -> CapacityResult:
    """Run a capacity search and write its files (``capacity.json``, ``capacity.html``,
    ``summary.md``) into its own directory under ``options.out``."""
    from loadkit.capacity.report import write_capacity_files

    result = CapacitySearch(options, on_event).run()
    write_capacity_files(result)
    return result
