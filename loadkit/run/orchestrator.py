"""The run orchestrator behind ``loadkit run``: target, Locust processes, run clock, run directory,
and the run events its listeners hook (see :mod:`loadkit.run.events`).

This process never imports gevent: Locust runs as separate processes (one standalone process, or a
master and N workers) that read ``run-config.json`` and write ``timeline.jsonl``, ``acks.bin``
and ``clock.json`` into the run directory (docs/run-directory.md). The orchestrator resolves the
target (:mod:`loadkit.run.target`), starts Locust, follows the timeline, fires the events, and
always leaves a readable run directory. The chaos controller (:mod:`loadkit.run.chaos`), the SLO
watch (:mod:`loadkit.run.slo`), the integrity check (:mod:`loadkit.run.integrity`) and live
progress are listeners it attaches from the options; anything else can be added::

    runner = Runner(RunOptions(profile=Path("profiles/smoke.yaml")))
    runner.events.finished.add_listener(lambda run, result: print(result.status))
    result = runner.run()
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
import shutil
import signal
import ssl
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from loadkit.errors import ConfigError, Interrupted, LoadkitError, SafetyAbort, StackNotRunning
from loadkit.extras import require_extra
from loadkit.integrity import IntegrityResult
from loadkit.load.runconfig import LOCUSTFILE, RunConfig, locust_argv
from loadkit.load.tls import Tls, client_context
from loadkit.profile.model import HttpJourney, Profile, WalletJourney, load_profile
from loadkit.run.disk import DiskGuard, check_run
from loadkit.run.events import RunEvents
from loadkit.run.progress import Progress, progress_of
from loadkit.run.target import Service, TargetResolver, parse_targets, services_of
from loadkit.rundir import RunDir, RunRecord, RunStatus
from loadkit.rundir.live_timeline import LiveTimeline
from loadkit.rundir.timeline import Timeline
from loadkit.safety import Allowlist, is_every_interface
from loadkit.stack.ports import free_port
from loadkit.stack.process import ManagedProcess
from loadkit.stack.reference import ReferenceStack, StackOptions, stack_dir_from
from loadkit.stack.system import System, load_system
from loadkit.stack.watchdog import Watchdog

if TYPE_CHECKING:
    from loadkit.run.chaos import ChaosListener

#: a run with more unsent arrivals than this share is invalid (docs/design.md)
MAX_UNSENT = 0.01
#: how often the orchestrator reads the timeline and fires ``tick``
TICK_S = 0.5

__all__ = [
    "MAX_UNSENT",
    "Progress",
    "RunOptions",
    "RunResult",
    "Runner",
    "parse_targets",
    "read_locust_totals",
    "run_profile",
    "worker_argv",
]


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
    #: the address (and port) the Locust master listens on for workers on other hosts:
    #: loopback by default; another address only when allowed (``allow``)
    master_bind: str | None = None
    own_stack: bool = False  # always start a stack of the run's own, even if one is up
    #: start the run's own stack with this deliberately unsafe wallet mode (docs/integrity.md)
    wallet_unsafe: str | None = None
    #: the run's own stack serves HTTPS with its own CA (``loadkit demo --tls``)
    stack_tls: bool = False
    command: list[str] = field(default_factory=lambda: list(sys.argv))
    slo: Path | None = None  # an SLO file: checked against the profile before anything starts
    slo_abort: bool = False  # stop the load once an objective of `slo` can no longer be met
    #: hosts, addresses, networks or *.suffixes beyond loopback that load and faults may reach
    allow: tuple[str, ...] = ()
    #: a system file (``systems/*.yaml``): the services load goes to, its allowlist, its checks,
    #: and what --chaos faults act on (its toxiproxy, docker, postgres, commands)
    system: Path | None = None
    #: a CA bundle for --target's https URLs (instead of the system's trust store)
    ca: Path | None = None
    #: run only the journeys with one of these tags, and none of ``exclude_tags``
    tags: tuple[str, ...] = ()
    exclude_tags: tuple[str, ...] = ()


@dataclass
class RunResult:
    run_dir: Path
    status: str
    record: RunRecord
    profile: Profile
    #: the money integrity check (integrity.json); None when none ran
    integrity: IntegrityResult | None = None

    @functools.cached_property
    def timeline(self) -> Timeline:
        """Every second of the run, read from ``timeline.jsonl`` on first use (the runner's own
        ``timeline`` keeps only the last minute per second, to stay small over long runs)."""
        return Timeline.read(RunDir(self.run_dir).timeline)


class Runner:
    """One run. Constructing it validates everything (profile, target, scenario, SLO) and starts
    nothing; :meth:`run` does the run. It is also the ``run`` every event listener receives:
    ``run_dir``, ``rundir``, ``profile``, ``options``, ``record`` (``run.json``), ``timeline``
    (what arrived so far), ``stack`` (None for the user's own service), ``allowlist``, ``t0``,
    ``integrity``, and :meth:`stop` / :meth:`abort` to end the load early."""

    def __init__(
        self,
        options: RunOptions,
        on_progress: Callable[[Progress], None] | None = None,
        *,
        events: RunEvents | None = None,
    ) -> None:
        self.options = options
        #: called with a :class:`Progress` snapshot on every tick (the live display, capacity)
        self.on_progress = on_progress
        self.events = events or RunEvents()
        self.profile = load_profile(options.profile)  # the whole file is validated first
        if options.tags or options.exclude_tags:
            self.profile = self.profile.with_tags(options.tags, options.exclude_tags)
        if options.time_scale is not None:
            self.profile = self.profile.with_time_scale(options.time_scale)
        #: where this run may send load, probes and faults (loopback, plus what the user allowed)
        self.allowlist = Allowlist.parse(options.allow, source="--allow")
        #: the system file's description of the services (``--system``), or None
        self.system: System | None = None
        self.services: list[Service] = []
        if options.system is not None:
            self._use_system(options.system)
        self.target_urls = parse_targets(options.target, self.allowlist) if options.target else None
        self.tls = self._target_tls()
        self.master_host, self.master_port = self._master_address()
        self._check_options()
        self.rundir: RunDir | None = None
        self.record = RunRecord(run_id="", command=list(options.command), profile={}, target={})
        #: what arrived so far: windows of the last minute, phases and totals of the whole run
        self.timeline: Timeline = LiveTimeline()
        self.stack: ReferenceStack | None = None
        self.t0: float | None = None
        self.integrity: IntegrityResult | None = None
        self.procs: list[ManagedProcess] = []
        #: stops what the run started if this process dies without cleaning up (SIGKILL)
        self.watchdog: Watchdog | None = None
        #: stop() was called: an early, clean end
        self.stop_reason: str | None = None
        #: abort() was called: the run ends ``aborted``; a safety abort raises SafetyAbort (exit 4)
        self.abort_reason: str | None = None
        self._safety_abort = False
        #: the chaos listener of ``--chaos`` (its ``controller`` exists from ``starting`` on)
        self.chaos: ChaosListener | None = None
        self._attach_listeners()

    # -- what listeners use -----------------------------------------------------------------

    @property
    def run_dir(self) -> Path:
        if self.rundir is None:
            raise RuntimeError("the run has not started: no run directory yet")
        return self.rundir.path

    def stop(self, reason: str) -> None:
        """End the run early on purpose (``loadkit capacity`` once it has seen enough): the load
        stops, what was recorded stays, and the run counts as completed with ``reason``."""
        self.stop_reason = reason
        self._signal_locust()

    def abort(self, reason: str, *, safety: bool = True) -> None:
        """Stop the load: the run ends ``aborted`` with ``reason``. ``safety``: an abort
        condition fired (the run then raises SafetyAbort, exit 4, after the rollback); else the
        run simply ends aborted (``--slo-abort``: the gate at the end fails it)."""
        if self.abort_reason is None:
            self.abort_reason, self._safety_abort = reason, safety
        self._signal_locust()

    # -- set-up -----------------------------------------------------------------------------

    def _use_system(self, path: Path) -> None:
        """``--system FILE``: its services, allowlist and integrity check, all checked now."""
        if self.options.target is not None:
            raise ConfigError("--system and --target both say where load goes: give one of them")
        system = self.system = load_system(path)
        self.allowlist = self.allowlist + system.allowlist
        system.check(self.allowlist)
        for described in system.services:
            described.rendered_headers()  # every {env.NAME} it uses is set
        self.services = services_of(system)
        for resolved in self.services:
            if resolved.tls is not None:
                resolved.tls.check(f"{path}: services.{resolved.name}.tls")
        if system.integrity is not None and self.profile.integrity is None:
            self.profile = dataclasses.replace(self.profile, integrity=system.integrity)

    def verify_for(self, url: str | None) -> ssl.SSLContext | bool:
        """How loadkit's own requests to ``url`` (an integrity endpoint, a probe, a metrics
        endpoint) check its certificate: the TLS settings of the service on the same host and
        port, else of one on the same host, else the system's trust store."""
        if url is None or not url.startswith("https://"):
            return True
        parts = urlsplit(url)
        candidates = [(s.urls, s.tls) for s in self.services]
        candidates.append((self.target_urls or [], self.tls))
        # the service on the same host and port, else on the same host (a metrics port beside
        # the service's is signed by the same CA)
        for field_ in ("netloc", "hostname"):
            for urls, tls in candidates:
                if tls is not None and any(
                    getattr(urlsplit(u), field_) == getattr(parts, field_) for u in urls
                ):
                    return client_context(tls, where=url)
        return True

    def _target_tls(self) -> Tls | None:
        """``--ca FILE``: the TLS of --target's https URLs (checked now: exit 2 if it does
        not load)."""
        ca = self.options.ca
        if ca is None:
            return None
        if self.target_urls is None or not any(u.startswith("https://") for u in self.target_urls):
            raise ConfigError("--ca: for --target https:// URLs (a system file has tls: ca:)")
        tls = Tls(ca=str(Path(ca).absolute()))
        tls.check("--ca")
        return tls

    def _check_options(self) -> None:
        options = self.options
        names = [s.name for s in self.services]
        for journey in self.profile.journeys:
            wanted = getattr(journey, "target", None)
            if wanted is not None and wanted not in names:
                where = (
                    f"the system's services are {', '.join(names)}"
                    if names
                    else "only a run with --system FILE has named services"
                )
                raise ConfigError(
                    f"{options.profile}: journey '{journey.name}' goes to service '{wanted}'; "
                    + where
                )
        uses_wallet = any(isinstance(j, WalletJourney) for j in self.profile.journeys)
        if (self.target_urls or self.services) and uses_wallet and options.stack_dir is None:
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
        if (
            options.chaos is not None
            and self.target_urls
            and options.stack_dir is None
            and self.system is None
        ):
            raise ConfigError(
                "--chaos: faults act on the reference stack's components or on a system file's; "
                "use --system FILE instead of --target (its services take the load, its "
                "toxiproxy, docker, postgres and commands the faults: docs/game-day.md), drop "
                "--target (loadkit starts the stack) or add --stack-dir"
            )
        check = self.profile.integrity
        if check is not None and check.http is not None:
            self.allowlist.check_url(check.http.url, what="integrity.http.url")
        if check is not None and check.sql is not None and check.sql.dsn:
            self.allowlist.check_dsn(check.sql.dsn, what="integrity.sql.dsn")
        if options.slo is None and options.slo_abort:
            raise ConfigError("--slo-abort stops a run that can no longer meet its SLO: add --slo")
        if options.workers < 0 or options.workers > 64:
            raise ConfigError(f"--workers: expected 0 to 64, got {options.workers}")
        if options.remote_workers < 0 or options.remote_workers > 64:
            raise ConfigError(f"--remote-workers: expected 0 to 64, got {options.remote_workers}")
        if (
            self.target_urls is None
            and not self.services
            and options.stack_dir is None
            and self._starts_a_stack()
        ):
            require_extra("stack", "a run without --target starts the reference stack")
        if options.wallet_unsafe is not None:
            if options.stack_dir is not None or self.target_urls is not None or self.services:
                raise ConfigError(
                    "--wallet-unsafe: only for a stack the run starts itself "
                    "(drop --stack-dir and --target)"
                )
            StackOptions(unsafe=options.wallet_unsafe).validate()
        if options.stack_tls and (options.stack_dir is not None or self.target_urls is not None):
            raise ConfigError(
                "TLS for the run's own stack: only for a stack the run starts itself "
                "(a stack started with `loadkit stack up --tls` is used over HTTPS by itself)"
            )

    def _master_address(self) -> tuple[str, int | None]:
        """``--master-bind ADDR[:PORT]`` (and ``--master-port``): where the master listens."""
        options = self.options
        if options.master_bind is None:
            return "127.0.0.1", options.master_port
        text = options.master_bind.strip()
        host, port = text, options.master_port
        if text.count(":") == 1 or (text.startswith("[") and "]:" in text):
            host, _, port_text = text.rpartition(":")
            if not port_text.isdigit() or not 0 < int(port_text) < 65536:
                raise ConfigError(f"--master-bind: expected ADDR[:PORT], got {text!r}")
            port = int(port_text)
        host = host.strip("[]")
        if not host:
            raise ConfigError(f"--master-bind: expected ADDR[:PORT], got {text!r}")
        if is_every_interface(host):
            if not self.allowlist.allows_every_interface(host):
                raise ConfigError(
                    f"--master-bind: {host} listens on every interface; name the address "
                    f"workers reach, or add --allow {host} to mean it"
                )
        else:
            self.allowlist.check_host(host, what="--master-bind")
        return host, port

    def _starts_a_stack(self) -> bool:
        """Whether this run will start a reference stack of its own (no running one to use)."""
        if self.options.own_stack or self.options.wallet_unsafe or self.options.stack_tls:
            return True
        with contextlib.suppress(StackNotRunning):
            return not ReferenceStack.attach(stack_dir_from()).any_alive()
        return True

    def _attach_listeners(self) -> None:
        """The listeners the options ask for; each validates its input now (nothing started)."""
        from loadkit.run.integrity import IntegrityListener
        from loadkit.run.security import SecurityListener

        options = self.options
        faults: list[str] | None = None
        if options.chaos is not None:
            from loadkit.run.chaos import ChaosListener

            chaos = self.chaos = ChaosListener(options.chaos)
            chaos.attach(self.events)
            faults = chaos.fault_names
        if options.slo is not None:
            from loadkit.run.slo import SloListener

            SloListener(
                options.slo,
                self.profile,
                faults=faults,
                abort=options.slo_abort,
                drain_s=self.drain_s(),
            ).attach(self.events)
        IntegrityListener().attach(self.events)
        DiskGuard().attach(self.events)  # stops the run cleanly if its disk fills
        SecurityListener().attach(self.events)  # the reference wallet's anomaly counters
        if self.system is None and (self.target_urls is None or options.stack_dir is not None):
            from loadkit.run.servercauses import ServerCausesListener

            # the reference wallet says why it was busy: its causes beside the client's
            ServerCausesListener().attach(self.events)
        elif self.system is not None:
            from loadkit.run.servercauses import ServerCausesListener, system_endpoints

            # a system's services that name a metrics endpoint say why they were busy
            endpoints = system_endpoints(self.system, self.verify_for)
            if endpoints:
                ServerCausesListener(endpoints).attach(self.events)
        self.events.tick.add_listener(_report_progress)

    def drain_s(self) -> float:
        """How long answers may keep coming after the last arrival: every attempt's timeout and
        the backoffs between them."""
        client = self.profile.client
        attempts = client.retries.attempts
        backoff = sum(
            min(client.retries.backoff_s * 2**i, client.retries.max_backoff_s)
            for i in range(attempts - 1)
        )
        return float(attempts * client.timeout_s + backoff + 1.0)

    # -- locust -----------------------------------------------------------------------------

    def _spawn_locust(self, cleanup: contextlib.ExitStack, rd: RunDir) -> ManagedProcess:
        workers = self.options.workers + self.options.remote_workers
        # the master quits by itself after the profile and its drain; --run-time is a safety net
        run_time = int(self.profile.duration_s + self.drain_s() + 60)
        extra = ["--run-time", f"{run_time}s", "--stop-timeout", "30", "--exit-code-on-error", "0"]
        env = {
            "PYTHONUNBUFFERED": "1",
            # `locust: module:Class` journeys import from the user's working directory
            "PYTHONPATH": os.pathsep.join(
                filter(None, [os.getcwd(), os.environ.get("PYTHONPATH")])
            ),
        }
        cleanup.callback(self._stop_locust)
        python = [sys.executable, "-m", "locust"]
        config = rd.run_config

        def spawn(name: str, argv: list[str]) -> ManagedProcess:
            proc = ManagedProcess.spawn(name, [*python, *argv], rd.log(name), env=env)
            self.procs.append(proc)
            return proc

        if workers == 0:
            return spawn("locust", locust_argv(config, role="standalone", extra=extra))
        bind = self.master_host
        port = self.master_port or free_port()
        self.record.master = {"bind": bind, "port": port}
        master = spawn(
            "locust-master",
            locust_argv(
                config,
                role="master",
                workers=workers,
                master_host=bind,
                master_port=port,
                extra=extra,
            ),
        )
        # local workers reach the master where it listens (loopback when it listens everywhere)
        reach = "127.0.0.1" if is_every_interface(bind) else bind
        for i in range(1, self.options.workers + 1):
            spawn(
                f"locust-worker-{i}",
                locust_argv(config, role="worker", master_host=reach, master_port=port),
            )
        return master

    def _signal_locust(self) -> None:
        for proc in self.procs:
            proc.signal(signal.SIGTERM)

    def _stop_locust(self) -> None:
        # SIGTERM: Locust stops its users, reports, writes its CSV files and exits
        for proc in self.procs:
            if proc.alive():
                proc.signal(signal.SIGTERM)
        for proc in self.procs:
            proc.terminate(timeout=30)

    def _fire_stopping(self) -> None:
        """The load is over (Locust has stopped): the listeners revert what they did."""
        self.events.stopping.fire(self, reason=self.stop_reason or self.abort_reason)

    def _note_interrupt(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: Any
    ) -> bool:
        """Ctrl-C: ``finishing`` listeners see the run as interrupted (no integrity verdict)."""
        if exc_type is not None and issubclass(exc_type, KeyboardInterrupt):
            self.record.status = RunStatus.INTERRUPTED
            self.record.reason = "interrupted (Ctrl-C or SIGTERM)"
        return False

    # -- the run ----------------------------------------------------------------------------

    def run(self) -> RunResult:
        opts = self.options
        # nothing started yet: refuse a run whose output volume lacks room for it (exit 3)
        check_run(self)
        rd = self.rundir = RunDir.create(opts.out, self.profile.name)
        # before anything is started: whatever the run starts dies with it, however it dies
        watchdog = self.watchdog = Watchdog.start(rd.path, rd.log("watchdog"))
        record = self.record
        record.run_id = rd.name
        record.profile = {
            "path": str(Path(opts.profile).absolute()),
            "name": self.profile.name,
            "duration_s": self.profile.duration_s,
            "time_scale": self.profile.time_scale,
        }
        record.target = {
            "kind": "system" if self.services else "http" if self.target_urls else "reference",
            "urls": self.target_urls or (self.services[0].urls if self.services else None),
        }
        if self.system is not None:
            record.target["system"] = str(Path(str(opts.system)).absolute())
        record.workers = opts.workers
        rd.write_record(record)
        # the files as they were for this run: reports read these, whatever happens to the originals
        shutil.copyfile(opts.profile, rd.profile)
        if opts.chaos is not None:
            shutil.copyfile(opts.chaos, rd.scenario)
        interrupted = False
        try:
            with contextlib.ExitStack() as cleanup:
                resolved = TargetResolver(
                    self.profile,
                    self.target_urls,
                    stack_dir=opts.stack_dir,
                    own_stack=opts.own_stack,
                    instances=opts.instances,
                    wallet_unsafe=opts.wallet_unsafe,
                    tls=self.tls,
                    services=self.services,
                    watchdog=self.watchdog,
                    stack_tls=opts.stack_tls,
                ).resolve(cleanup, rd)
                self.stack, record.target = resolved.stack, resolved.about
                # the order things end in (last registered, first run): Locust stops, then
                # `stopping` (faults reverted), then `finishing` (the integrity check) while the
                # run's own stack is still up, then the stack and proxies go
                cleanup.callback(self.events.finishing.fire, self)
                cleanup.push(self._note_interrupt)
                rd.write_record(record)
                run_config = RunConfig(
                    run_id=rd.name,
                    run_dir=str(rd.path),
                    profile_path=str(Path(opts.profile).absolute()),
                    target=resolved.target,
                    time_scale=opts.time_scale,
                    workers=opts.workers + opts.remote_workers,
                    drain_s=self.drain_s(),
                    allow=tuple(self.allowlist.texts),
                    tags=tuple(opts.tags),
                    exclude_tags=tuple(opts.exclude_tags),
                    services=resolved.services,
                )
                run_config.validate()
                run_config.write(rd.run_config)
                self.events.starting.fire(self)
                rd.write_record(record)
                cleanup.callback(self._fire_stopping)
                master = self._spawn_locust(cleanup, rd)
                self._follow(master, rd)
                code = master.returncode()
                if code not in (0, None) and self.stop_reason is None and not self.abort_reason:
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
            try:
                if self.chaos is not None:  # `stopping` may be cut short by a second Ctrl-C
                    self.chaos.roll_back(self)
                self._finish(rd)
            finally:
                watchdog.release()  # everything is stopped: nothing left for it to do
        result = RunResult(rd.path, record.status, record, self.profile)
        result.integrity = self.integrity
        self.events.finished.fire(self, result=result)
        if interrupted:
            raise Interrupted(f"run interrupted; what was recorded is in {rd.path}")
        if self.abort_reason is not None and self._safety_abort:
            raise SafetyAbort(
                f"run aborted: {self.abort_reason}; faults rolled back, load stopped; "
                f"what was recorded is in {rd.path}"
            )
        return result

    def _follow(self, master: ManagedProcess, rd: RunDir) -> None:
        """While Locust runs: the clock (``started``), the timeline and ``tick``."""
        while master.alive():
            if self.t0 is None and (clock := rd.read_clock()) is not None:
                self.t0 = self.record.clock_t0 = clock.t0
                rd.write_record(self.record)
                self.events.started.fire(self, t0=clock.t0)
            self.timeline.tail(rd.timeline)
            if self.t0 is not None:
                self.events.tick.fire(self, t=max(0.0, time.time() - self.t0))
            time.sleep(TICK_S)

    def _finish(self, rd: RunDir) -> None:
        record = self.record
        record.ended_at = time.time()
        if (clock := rd.read_clock()) is not None:
            record.clock_t0 = clock.t0
        self.timeline.tail(rd.timeline)
        actions, requests = self.timeline.totals("action"), self.timeline.totals("request")
        scheduled = actions.answered + actions.count("unsent")
        record.totals = {
            "actions": dict(actions.n),
            "requests": dict(requests.n),
            "busy_causes": dict(requests.busy),
            "scheduled": scheduled,
        }
        record.locust_totals = read_locust_totals(rd.locust_stats)
        if self.abort_reason is not None and record.status == RunStatus.RUNNING:
            record.status = RunStatus.ABORTED
            record.reason = self.abort_reason
        if self.stop_reason is not None and record.status == RunStatus.RUNNING:
            record.reason = f"stopped early: {self.stop_reason}"
        lost = rd.lost_workers()
        record.lost_workers = lost
        lost_text = "; ".join(
            f"worker {w['worker']} (share {w['share']}) lost at {w['lost_at_s']:g}s, its "
            f"{w['unsent']} arrivals from second {w['unsent_from_s']} on counted unsent"
            for w in lost
        )
        if record.status == RunStatus.RUNNING:
            if scheduled and actions.count("unsent") / scheduled > MAX_UNSENT:
                record.status = RunStatus.INVALID
                record.reason = (
                    f"{actions.count('unsent')} of {scheduled} arrivals unsent "
                    f"(> {MAX_UNSENT:.0%}): "
                    + (lost_text or "the generator could not keep the schedule")
                )
            else:
                record.status = RunStatus.COMPLETED
                if lost_text:
                    record.reason = lost_text
        rd.write_record(record)


def _report_progress(run: Runner, t: float) -> None:
    """The ``on_progress`` callback of the run, at every tick."""
    if run.on_progress is not None:
        run.on_progress(progress_of(run.profile, run.timeline, t))


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
