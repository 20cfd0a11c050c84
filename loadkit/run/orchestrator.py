"""The run orchestrator behind ``loadkit run``: target, Locust processes, run clock, run directory.

This process never imports gevent: Locust runs as separate processes (one standalone process, or a
master and N workers) that read ``run-config.json`` and write ``timeline.jsonl``, ``acks.jsonl``
and ``clock.json`` into the run directory (docs/run-directory.md). The orchestrator starts the
reference stack when no target is given, routes network classes through Toxiproxy, watches the
timeline for live progress, and always leaves a readable run directory::

    result = run_profile(RunOptions(profile=Path("profiles/smoke.yaml")))
    print(result.status, result.run_dir)
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loadkit.chaos import Controller, Scenario, load_scenario
from loadkit.errors import ConfigError, Interrupted, LoadkitError, SafetyAbort, StackNotRunning
from loadkit.gate.watch import SloWatch
from loadkit.integrity import IntegrityResult, check_run, source_for
from loadkit.integrity.core import failed as integrity_failed
from loadkit.load.runconfig import RunConfig, Target, WalletTarget, locust_argv
from loadkit.profile.model import HttpJourney, Profile, WalletJourney, load_profile
from loadkit.run.network import NetworkRouting, has_toxics
from loadkit.rundir.record import (
    RunRecord,
    RunStatus,
    new_run_dir,
    read_json,
    write_json,
)
from loadkit.rundir.timeline import Timeline
from loadkit.safety import check_loopback_url
from loadkit.stack.ports import free_port
from loadkit.stack.process import ManagedProcess
from loadkit.stack.reference import ReferenceStack, StackOptions, stack_dir_from
from loadkit.stack.toxiproxy import ToxiproxyClient, start_server

LOCUSTFILE = Path(__file__).with_name("locustfile.py")
#: a run with more unsent arrivals than this share is invalid (DESIGN.md)
MAX_UNSENT = 0.01


@dataclass
class RunOptions:
    """What ``loadkit run`` was asked to do."""

    profile: Path
    target: str | None = None  # comma-separated URLs of the user's service; None = reference stack
    workers: int = 0
    out: Path = Path("reports")
    time_scale: float | None = None
    stack_dir: Path | None = None  # use the stack running here instead of starting one
    instances: int = 2  # wallet instances of a stack this run starts
    chaos: Path | None = None  # a chaos scenario run on the same clock
    remote_workers: int = 0  # workers joining from elsewhere with `loadkit worker --master`
    master_port: int | None = None  # the master's port (default: a free one)
    own_stack: bool = False  # always start a stack of the run's own, even if one is up
    #: start the run's own stack with this deliberately unsafe wallet mode (docs/integrity.md)
    wallet_unsafe: str | None = None
    command: list[str] = field(default_factory=lambda: list(sys.argv))
    slo: Path | None = None  # an SLO file: checked against the profile before anything starts
    slo_abort: bool = False  # stop the load once an objective of `slo` can no longer be met


@dataclass
class Progress:
    """A snapshot for the live display."""

    elapsed: float
    duration: float
    phase: str | None
    target_rate: float
    achieved_rate: float
    busy_rate: float
    p95_ms: float | None
    unsent: int
    answered: int


@dataclass
class RunResult:
    run_dir: Path
    status: str
    record: RunRecord
    timeline: Timeline
    profile: Profile
    #: the money integrity check (integrity.json); None when none ran
    integrity: IntegrityResult | None = None


def parse_targets(target: str) -> list[str]:
    """``--target`` URLs; only loopback hosts are allowed."""
    urls = [u.strip().rstrip("/") for u in target.split(",") if u.strip()]
    if not urls:
        raise ConfigError("--target: expected a URL like http://127.0.0.1:8080")
    for url in urls:
        check_loopback_url(url, what="--target")
    return urls


Accounts = list[tuple[int, str]]


def _wallet_accounts(dsn: str) -> tuple[Accounts, Accounts]:
    """Seeded users and merchants as ``(account_id, name)``, read from the wallet database."""
    import asyncpg

    async def fetch() -> tuple[Accounts, Accounts]:
        conn = await asyncpg.connect(dsn, timeout=10)
        try:
            rows = await conn.fetch(
                "SELECT id, name, kind FROM accounts WHERE kind IN ('user', 'merchant') ORDER BY id"
            )
        finally:
            await conn.close()
        users = [(int(r["id"]), str(r["name"])) for r in rows if r["kind"] == "user"]
        merchants = [(int(r["id"]), str(r["name"])) for r in rows if r["kind"] == "merchant"]
        return users, merchants

    return asyncio.run(fetch())


class Runner:
    def __init__(self, options: RunOptions, on_progress: Callable[[Progress], None] | None) -> None:
        self.options = options
        self.on_progress = on_progress
        self.profile = load_profile(options.profile)  # the whole file is validated first
        if options.time_scale is not None:
            self.profile = self.profile.with_time_scale(options.time_scale)
        self.target_urls = parse_targets(options.target) if options.target else None
        uses_wallet = any(isinstance(j, WalletJourney) for j in self.profile.journeys)
        if self.target_urls and uses_wallet and options.stack_dir is None:
            raise ConfigError(
                f"{options.profile}: the profile uses reference-wallet journeys, which need the "
                "reference stack; drop --target (loadkit starts the stack) or use http journeys"
            )
        for journey in self.profile.journeys:
            missing = journey.env_names() if isinstance(journey, HttpJourney) else []
            if missing := [n for n in missing if n not in os.environ]:
                raise ConfigError(
                    f"{options.profile}: journey '{journey.name}' uses unset environment "
                    f"variable(s) {', '.join(missing)}; set them before the run"
                )
        self.scenario: Scenario | None = None
        if options.chaos is not None:
            if self.target_urls and options.stack_dir is None:
                raise ConfigError(
                    "--chaos: faults go to the reference stack's components; drop --target "
                    "(loadkit starts the stack) or add --stack-dir"
                )
            self.scenario = load_scenario(options.chaos)  # validated before anything starts
        self.stack: ReferenceStack | None = None
        self.controller: Controller | None = None
        self.abort_reason: str | None = None
        self.slo_watch: SloWatch | None = None
        self.slo_abort_reason: str | None = None  # the SLO could no longer be met (--slo-abort)
        if options.slo is not None:
            self.slo_watch = self._slo(options.slo)
        elif options.slo_abort:
            raise ConfigError("--slo-abort stops a run that can no longer meet its SLO: add --slo")
        self.stop_reason: str | None = None  # stop() was called: an early, clean end
        if options.workers < 0 or options.workers > 64:
            raise ConfigError(f"--workers: expected 0 to 64, got {options.workers}")
        if options.remote_workers < 0 or options.remote_workers > 64:
            raise ConfigError(f"--remote-workers: expected 0 to 64, got {options.remote_workers}")
        self.timeline = Timeline()
        self.procs: list[ManagedProcess] = []
        self.integrity: IntegrityResult | None = None
        if options.wallet_unsafe is not None:
            if options.stack_dir is not None or self.target_urls is not None:
                raise ConfigError(
                    "--wallet-unsafe: only for a stack the run starts itself "
                    "(drop --stack-dir and --target)"
                )
            StackOptions(unsafe=options.wallet_unsafe).validate()

    # -- target -----------------------------------------------------------------------------

    def _target(
        self, cleanup: contextlib.ExitStack, run_dir: Path
    ) -> tuple[Target, dict[str, Any]]:
        """Where load goes, and what run.json says about it."""
        profile = self.profile
        needs_net = any(has_toxics(c) for c in profile.network)
        toxiproxy: ToxiproxyClient | None = None
        wallet: WalletTarget | None = None
        about: dict[str, Any] = {}
        if self.target_urls is None or self.options.stack_dir is not None:
            stack = self._stack(cleanup, run_dir)
            users, merchants = _wallet_accounts(stack.dsn)
            wallet = WalletTarget(
                stack.password,
                tuple(users),
                tuple(merchants),
                otp_outbox_token=stack.manifest.otp_outbox_token,
            )
            # through each instance's client-side proxy, where client network faults go
            urls = self.target_urls or [w.client_url for w in stack.manifest.wallets]
            about = {"kind": "reference", "stack_dir": str(stack.stack_dir)}
            toxiproxy = stack.toxiproxy
        else:
            urls = self.target_urls
            about = {"kind": "http"}
            if needs_net:
                toxiproxy = self._own_toxiproxy(cleanup, run_dir)
        network: dict[str, tuple[str, ...]] = {}
        if needs_net and toxiproxy is not None:
            # user -> class proxy (its toxics) -> target (for the stack: the client-side proxy)
            routing = NetworkRouting(toxiproxy, profile.network, urls, prefix=f"net-{run_dir.name}")
            network = {k: tuple(v) for k, v in cleanup.enter_context(routing).urls.items()}
        target = Target(
            urls=tuple(urls),
            kind="reference" if wallet is not None else "http",
            network=network,
            wallet=wallet,
        )
        about.update(urls=list(urls), network={k: list(v) for k, v in network.items()})
        return target, about

    def _stack(self, cleanup: contextlib.ExitStack, run_dir: Path) -> ReferenceStack:
        stack_dir = self.options.stack_dir
        if stack_dir is None and not self.options.own_stack and not self.options.wallet_unsafe:
            # a stack the user brought up with `loadkit stack up` (and that still runs)
            with contextlib.suppress(StackNotRunning):
                if ReferenceStack.attach(stack_dir_from()).any_alive():
                    stack_dir = stack_dir_from()
        if stack_dir is not None:
            self.stack = ReferenceStack.attach(stack_dir)
            return self.stack
        stack = self.stack = ReferenceStack.up(
            run_dir / "stack",
            StackOptions(
                instances=self.options.instances,
                users=self.profile.users.accounts,
                unsafe=self.options.wallet_unsafe,
            ),
        )
        cleanup.callback(stack.down)
        return stack

    def _own_toxiproxy(self, cleanup: contextlib.ExitStack, run_dir: Path) -> ToxiproxyClient:
        port = free_port()
        proc = start_server(port, run_dir / "logs" / "toxiproxy.log")
        cleanup.callback(proc.terminate, 5.0)
        return ToxiproxyClient(port=port)

    # -- locust -----------------------------------------------------------------------------

    def _spawn_locust(
        self, cleanup: contextlib.ExitStack, run_dir: Path, config: Path
    ) -> ManagedProcess:
        workers = self.options.workers + self.options.remote_workers
        # the master quits by itself after the profile and its drain; --run-time is a safety net
        run_time = int(self.profile.duration_s + self._drain_s() + 60)
        extra = ["--run-time", f"{run_time}s", "--stop-timeout", "30", "--exit-code-on-error", "0"]
        env = {
            "PYTHONUNBUFFERED": "1",
            # `locust: module:Class` journeys import from the user's working directory
            "PYTHONPATH": os.pathsep.join(
                filter(None, [os.getcwd(), os.environ.get("PYTHONPATH")])
            ),
        }
        logs = run_dir / "logs"
        cleanup.callback(self._stop_locust)
        python = [sys.executable, "-m", "locust"]

        def spawn(name: str, argv: list[str]) -> ManagedProcess:
            proc = ManagedProcess.spawn(name, [*python, *argv], logs / f"{name}.log", env=env)
            self.procs.append(proc)
            return proc

        if workers == 0:
            return spawn("locust", locust_argv(config, role="standalone", extra=extra))
        port = self.options.master_port or free_port()
        master = spawn(
            "locust-master",
            locust_argv(config, role="master", workers=workers, master_port=port, extra=extra),
        )
        for i in range(1, self.options.workers + 1):
            spawn(f"locust-worker-{i}", locust_argv(config, role="worker", master_port=port))
        return master

    def _drain_s(self) -> float:
        """How long answers may keep coming after the last arrival: every attempt's timeout and
        the backoffs between them."""
        client = self.profile.client
        attempts = client.retries.attempts
        backoff = sum(
            min(client.retries.backoff_s * 2**i, client.retries.max_backoff_s)
            for i in range(attempts - 1)
        )
        return float(attempts * client.timeout_s + backoff + 1.0)

    def _stop_locust(self) -> None:
        # SIGTERM: Locust stops its users, reports, writes its CSV files and exits
        for proc in self.procs:
            if proc.alive():
                proc.signal(signal.SIGTERM)
        for proc in self.procs:
            proc.terminate(timeout=30)

    # -- watching -----------------------------------------------------------------------------

    def _progress(self, run_dir: Path, t0: float | None) -> None:
        self.timeline.tail(run_dir / "timeline.jsonl")
        if self.on_progress is None or t0 is None:
            return
        elapsed = max(0.0, time.time() - t0)
        lag = 3  # seconds whose answers are still arriving
        window_end = int(elapsed) - lag
        recent = self.timeline.select("action", t_from=window_end - 10, t_to=window_end)
        rate_win = self.timeline.select("action", t_from=window_end - 3, t_to=window_end)
        total = self.timeline.totals("action")
        self.on_progress(
            Progress(
                elapsed=elapsed,
                duration=self.profile.duration_s,
                phase=self.profile.phase_at(min(elapsed, self.profile.duration_s - 1e-9)),
                # offered over the same (lagged) window as the achieved rate
                target_rate=self.profile.arrivals_between(
                    max(0.0, window_end - 3.0), max(0.0, float(window_end))
                )
                / 3.0
                if self.profile.model.value == "open" and window_end > 0
                else 0.0,
                achieved_rate=(rate_win.answered + rate_win.count("unsent")) / 3.0
                if window_end > 0
                else 0.0,
                busy_rate=recent.busy_rate,
                p95_ms=recent.percentile_ms(95),
                unsent=total.count("unsent"),
                answered=total.answered,
            )
        )

    def run(self) -> RunResult:
        opts = self.options
        run_dir = new_run_dir(opts.out, self.profile.name)
        (run_dir / "logs").mkdir()
        record = RunRecord(
            run_id=run_dir.name,
            command=list(opts.command),
            profile={
                "path": str(Path(opts.profile).absolute()),
                "name": self.profile.name,
                "duration_s": self.profile.duration_s,
                "time_scale": self.profile.time_scale,
            },
            target={
                "kind": "reference" if self.target_urls is None else "http",
                "urls": self.target_urls,
            },
            workers=opts.workers,
        )
        write_json(run_dir / "run.json", record.to_dict())
        # the files as they were for this run: reports read these, whatever happens to the originals
        shutil.copyfile(opts.profile, run_dir / "profile.yaml")
        if opts.chaos is not None:
            shutil.copyfile(opts.chaos, run_dir / "scenario.yaml")
        interrupted = False
        try:
            with contextlib.ExitStack() as cleanup:
                target, record.target = self._target(cleanup, run_dir)
                # runs after the load stopped and the chaos rollback, before the stack goes down
                cleanup.push(lambda kind, *_: self._check_integrity(run_dir, kind))
                write_json(run_dir / "run.json", record.to_dict())
                run_config = RunConfig(
                    run_id=run_dir.name,
                    run_dir=str(run_dir),
                    profile_path=str(Path(opts.profile).absolute()),
                    target=target,
                    time_scale=opts.time_scale,
                    workers=opts.workers + opts.remote_workers,
                    drain_s=self._drain_s(),
                )
                run_config.validate()
                config = run_config.write()
                if self.scenario is not None:
                    assert self.stack is not None
                    # plan and allowlist are checked here, before any load or fault
                    self.controller = Controller(
                        self.scenario,
                        self.stack,
                        run_dir,
                        self.profile,
                        load=True,
                        on_abort=self._abort,
                    )
                    record.scenario = {
                        "path": str(Path(str(opts.chaos)).absolute()),
                        "name": self.scenario.name,
                        "faults": len(self.controller.plan.faults),
                    }
                    cleanup.callback(self._stop_chaos, record)
                master = self._spawn_locust(cleanup, run_dir, config)
                t0: float | None = None
                while master.alive():
                    if t0 is None and (run_dir / "clock.json").exists():
                        with contextlib.suppress(OSError, ValueError, KeyError):
                            t0 = float(read_json(run_dir / "clock.json")["t0"])
                            record.clock_t0 = t0
                            write_json(run_dir / "run.json", record.to_dict())
                            if self.controller is not None:
                                self.controller.start(t0)
                    self._progress(run_dir, t0)
                    watch = self.slo_watch
                    if watch and t0 and (why := watch.check(self.timeline, time.time() - t0)):
                        self._slo_abort(why)
                    time.sleep(0.5)
                code = master.returncode()
                if code not in (0, None) and self.stop_reason is None and not self.slo_abort_reason:
                    record.status = RunStatus.FAILED
                    record.reason = f"Locust exited with code {code}; see {master.info.log}"
        except KeyboardInterrupt:
            interrupted = True
            record.status = RunStatus.INTERRUPTED
            record.reason = "interrupted (Ctrl-C or SIGTERM)"
        except LoadkitError as exc:
            record.status = RunStatus.FAILED
            record.reason = exc.message
            raise
        finally:
            self._finish(run_dir, record)
        if interrupted:
            raise Interrupted(f"run interrupted; what was recorded is in {run_dir}")
        if self.abort_reason is not None:
            raise SafetyAbort(
                f"run aborted: {self.abort_reason}; faults rolled back, load stopped; "
                f"what was recorded is in {run_dir}"
            )
        return RunResult(
            run_dir, record.status, record, self.timeline, self.profile, self.integrity
        )

    def stop(self, reason: str) -> None:
        """End the run early on purpose (``loadkit capacity`` once it has seen enough): the load
        stops, what was recorded stays, and the run counts as completed with ``reason``."""
        self.stop_reason = reason
        for proc in self.procs:
            proc.signal(signal.SIGTERM)

    def _slo(self, path: Path) -> SloWatch | None:
        """Validate the SLO file and its phase and fault names before anything starts."""
        from loadkit.gate.slo import check_names, load_slo

        slo = load_slo(path)
        faults = None
        if self.scenario is not None:
            faults = [f.name for f in self.scenario.faults]
            faults += [f"f{i + 1:02d}" for i in range(len(faults))]
        check_names(slo, phases=[s.name for s in self.profile.stages], faults=faults)
        return (
            SloWatch(slo, self.profile, drain_s=self._drain_s()) if self.options.slo_abort else None
        )

    def _slo_abort(self, reason: str) -> None:
        """--slo-abort: an objective can no longer be met; stop the load (the gate then fails)."""
        if self.slo_abort_reason is None:
            self.slo_abort_reason = reason
            for proc in self.procs:
                proc.signal(signal.SIGTERM)

    def _check_integrity(self, run_dir: Path, exc_type: type[BaseException] | None) -> None:
        """Acknowledged payments vs the ledger → integrity.json (not after Ctrl-C)."""
        if exc_type is not None and issubclass(exc_type, KeyboardInterrupt):
            return
        try:
            source = source_for(self.profile, self.stack)
            if source is not None:
                unsafe = self.stack.unsafe if self.stack is not None else None
                self.integrity = check_run(run_dir, source, unsafe_mode=unsafe)
        except Exception as exc:  # a check that breaks must not hide how the run ended
            check = self.profile.integrity
            kind = "reference" if check is None else "sql" if check.sql else "http"
            self.integrity = integrity_failed(kind, f"{type(exc).__name__}: {exc}")
            with contextlib.suppress(OSError):
                self.integrity.write(run_dir)

    def _abort(self, reason: str) -> None:
        """Called by the chaos controller (its thread) when an abort condition fires."""
        self.abort_reason = reason
        for proc in self.procs:
            proc.signal(signal.SIGTERM)  # stop the load; the controller rolls the faults back

    def _stop_chaos(self, record: RunRecord) -> None:
        if self.controller is None:
            return
        result = self.controller.stop()
        if record.scenario is not None:
            record.scenario.update(
                status=str(result.status),
                reason=result.reason,
                injected=result.injected,
                reverted=result.reverted,
                unreverted=list(result.unreverted),
                errors=list(result.errors),
            )

    def _finish(self, run_dir: Path, record: RunRecord) -> None:
        record.ended_at = time.time()
        with contextlib.suppress(OSError, ValueError, KeyError):
            record.clock_t0 = float(read_json(run_dir / "clock.json")["t0"])
        self.timeline.tail(run_dir / "timeline.jsonl")
        actions, requests = self.timeline.totals("action"), self.timeline.totals("request")
        scheduled = actions.answered + actions.count("unsent")
        record.totals = {
            "actions": dict(actions.n),
            "requests": dict(requests.n),
            "busy_causes": dict(requests.busy),
            "scheduled": scheduled,
        }
        record.locust_totals = read_locust_totals(run_dir / "locust_stats.csv")
        if self.abort_reason is not None and record.status == RunStatus.RUNNING:
            record.status = RunStatus.ABORTED
            record.reason = self.abort_reason
        if self.slo_abort_reason is not None and record.status == RunStatus.RUNNING:
            record.status = RunStatus.ABORTED
            record.reason = f"stopped by --slo-abort: {self.slo_abort_reason}"
        if self.stop_reason is not None and record.status == RunStatus.RUNNING:
            record.reason = f"stopped early: {self.stop_reason}"
        if record.status == RunStatus.RUNNING:
            if scheduled and actions.count("unsent") / scheduled > MAX_UNSENT:
                record.status = RunStatus.INVALID
                record.reason = (
                    f"{actions.count('unsent')} of {scheduled} arrivals unsent "
                    f"(> {MAX_UNSENT:.0%}): the generator could not keep the schedule"
                )
            else:
                record.status = RunStatus.COMPLETED
        write_json(run_dir / "run.json", record.to_dict())


def read_locust_totals(path: Path) -> dict[str, Any]:
    """The ``Aggregated`` row of Locust's ``*_stats.csv``."""
    import csv

    try:
        with path.open(newline="") as fh:
            for row in csv.DictReader(fh):
                if row.get("Name") == "Aggregated":
                    return {
                        "requests": int(row["Request Count"]),
                        "failures": int(row["Failure Count"]),
                    }
    except (OSError, KeyError, ValueError):
        pass
    return {}


def run_profile(
    options: RunOptions, on_progress: Callable[[Progress], None] | None = None
) -> RunResult:
    """Run one profile end to end. Raises ConfigError (before anything starts) on bad input,
    Interrupted after a clean stop on Ctrl-C; otherwise returns with the run's status."""
    return Runner(options, on_progress).run()


def worker_argv(master: str) -> Sequence[str]:
    """``loadkit worker --master HOST:PORT``: a Locust worker for a master on another machine."""
    host, _, port = master.rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"--master: expected HOST:PORT, got {master!r}")
    return [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(LOCUSTFILE),
        "--worker",
        "--master-host",
        host,
        "--master-port",
        port,
    ]
