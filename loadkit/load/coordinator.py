"""loadkit inside Locust: the run clock, the driver user, worker reports, the run-directory files.

One :class:`Coordinator` per Locust process, installed by ``loadkit/load/locustfile.py``:

- the master (or the single standalone process) reads ``--loadkit-config``, picks the run clock's
  ``t0`` one second after the test starts (every worker is connected by then: ``--expect-workers``),
  writes ``clock.json`` and sends every worker the custom message ``loadkit_start``
  (``t0``, the run config, the profile's text, each worker's share index), so workers need no
  files of their own;
- every load process runs exactly one :class:`DriverUser` (``-u`` = the number of load
  processes), whose only task runs the :class:`~loadkit.load.driver.Driver` for its share;
- workers report what they recorded every second, inside Locust's own worker reports
  (``report_to_master``, interval lowered to 1 s); the master merges and appends to
  ``timeline.jsonl`` and ``acks.bin`` every second;
- a worker whose driver finished forces a last report and sends ``loadkit_done``; when every share
  is done (or the drain plus a grace period is over) the master writes the rest, gives Locust's
  CSV writer time for one more round, and quits the run: every process exits on its own;
- a worker that stops answering Locust's heartbeats (killed, its machine gone) is *lost*: the
  master counts its share's arrivals from the second after its last report as ``unsent``,
  records it in ``workers.json`` (which worker, when, how many arrivals) and treats the share
  as done, so the run ends on time instead of waiting for it;
- every load process keeps its own acknowledgement log (its *spill*: every money movement's key
  before the request leaves, and its final view) in ``RUN_DIR/acks.d/`` when it can reach the
  run directory, else in ``$LOADKIT_SPILL_DIR`` (default the temporary directory)
  ``/loadkit-acks/<run id>/``; the records also travel in its reports (docs/integrity.md),
  unless its spill is in the run directory (which then holds each record once).

Exit codes: 0 when every share ran to its end, 2 for a configuration problem (bad run config or
profile, unset ``env.*`` variable, a custom class that does not import), 1 when a share never
reported back; busy answers never change it (Locust would exit 1 for its "failures")::

    locust -f loadkit/load/locustfile.py --headless -u 1 -r 1 --csv RUN/locust \\
        --loadkit-config RUN/run-config.json
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Final

import gevent
import gevent.event
import locust.runners
from locust import User, constant, task
from locust.runners import MasterRunner, WorkerRunner

from loadkit.errors import LoadkitError
from loadkit.load.driver import Driver, DriverResult, RunClock
from loadkit.load.journeys.http import template_env_names
from loadkit.load.recorder import ACTION, Recorder
from loadkit.load.runconfig import CONFIG_ARG, RunConfig, data_files, run_profile, sent_profile
from loadkit.profile.model import HttpJourney, LocustClassJourney, Profile
from loadkit.rundir import RUN_CONFIG, RunDir, spill_name
from loadkit.rundir.acks import AckLog
from loadkit.rundir.writer import RunWriter

log = logging.getLogger("loadkit.load")

START_MESSAGE: Final = "loadkit_start"
DONE_MESSAGE: Final = "loadkit_done"
#: run second 0 is this long after the test starts (all processes set up by then)
START_DELAY_S: Final = 1.0
#: how often the master appends to the timeline (the contract says: at least every 2 s)
FLUSH_INTERVAL_S: Final = 1.0
#: how long after the last data Locust's CSV writer (1 s cycle) gets before the run quits
CSV_SETTLE_S: Final = 1.5
#: how long past the drain the master waits for a share that does not report back
DONE_GRACE_S: Final = 30.0
#: how long a driver user waits for ``loadkit_start``
START_TIMEOUT_S: Final = 60.0

# worker reports carry the timeline: once a second rather than Locust's default 3 s
locust.runners.WORKER_REPORT_INTERVAL = 1.0


class Coordinator:
    """The loadkit side of one Locust process (see the module docstring)."""

    def __init__(self) -> None:
        self.environment: Any = None
        self.role = "standalone"
        self.recorder = Recorder()
        self.start_info: dict[str, Any] | None = None
        self.started = gevent.event.Event()
        self.writer: RunWriter | None = None
        self.config: RunConfig | None = None
        self.profile: Profile | None = None
        self.done: dict[int, dict[str, Any]] = {}
        self.driving = False
        self.finishing = False
        self.result: DriverResult | None = None
        self.driver: Driver | None = None
        self.stopping = False
        #: share index → what is known about the worker that lost it (master only)
        self.lost: dict[int, dict[str, Any]] = {}
        #: worker id → its actions reported so far, by (second, phase) (master only)
        self.reported: dict[str, dict[tuple[int, str], int]] = {}
        self._installed = False

    def install(self, events: Any) -> None:
        """Hook into Locust's events (once, however often the locustfile is imported)."""
        if self._installed:
            return
        self._installed = True
        events.init_command_line_parser.add_listener(self._add_arguments)
        events.init.add_listener(self._on_init)
        events.test_start.add_listener(self._on_test_start)
        events.report_to_master.add_listener(self._on_report_to_master)
        events.worker_report.add_listener(self._on_worker_report)
        events.test_stopping.add_listener(self._on_test_stopping)
        events.quitting.add_listener(self._on_quitting)

    # -- Locust events --------------------------------------------------------------------------

    @staticmethod
    def _add_arguments(parser: Any) -> None:
        parser.add_argument(
            CONFIG_ARG,
            type=str,
            default="",
            help="loadkit's run-config.json (needed on the master or standalone process)",
        )

    def _on_init(self, environment: Any, **_: Any) -> None:
        self.environment = environment
        runner = environment.runner
        if isinstance(runner, WorkerRunner):
            self.role = "worker"
            runner.register_message(START_MESSAGE, self._on_start_message)
            return
        if isinstance(runner, MasterRunner):
            self.role = "master"
            runner.register_message(DONE_MESSAGE, self._on_done_message)
        elif runner is None:
            return  # loaded for inspection (e.g. --list): nothing to run
        options = environment.parsed_options
        path = getattr(options, "loadkit_config", "") if options is not None else ""
        try:
            if not path:
                raise LoadkitError(f"the locustfile needs {CONFIG_ARG} RUN_DIR/run-config.json")
            # TLS files are read here, where they are: workers get their contents (to_dict)
            self.config = RunConfig.read(path).inlined()
            for url, tls in self.config.target.all_tls():
                tls.check(f"TLS of {url}")
            self.profile = run_profile(self.config)
            check_runnable(self.profile)
        except LoadkitError as exc:
            log.error("loadkit: %s", exc.message)
            logging.shutdown()
            os._exit(2)  # nothing has started yet; Locust has no clean early exit of its own

    def _on_test_start(self, environment: Any, **_: Any) -> None:
        if self.role == "worker" or self.start_info is not None or self.config is None:
            return
        assert self.profile is not None
        runner = environment.runner
        t0 = time.time() + START_DELAY_S
        if self.role == "master":
            clients = [*runner.clients.ready, *runner.clients.running, *runner.clients.spawning]
            ids = sorted((c.id for c in clients), key=runner.get_worker_index)
        else:
            ids = [runner.client_id]
        info = {
            "t0": t0,
            "config": self.config.to_dict(inline=True),
            "profile": Path(self.config.profile_path).read_text(),
            "profile_name": Path(self.config.profile_path).name,
            # the CSV files of the profile's data sources: a remote worker has no copy of them
            "data": data_files(self.profile, Path(self.config.profile_path)),
            "shares": {client_id: i for i, client_id in enumerate(ids)},
            "count": len(ids),
        }
        run_dir = Path(self.config.run_dir)
        self.writer = RunWriter(run_dir)
        RunDir(run_dir).write_clock(t0=t0, duration_s=self.profile.duration_s)
        self.start_info = info
        gevent.spawn(self._flush_loop)
        deadline = t0 + self.profile.duration_s + self.config.drain_s + DONE_GRACE_S
        gevent.spawn_later(max(deadline - time.time(), 0.0), self._give_up)
        if self.role == "master":
            runner.send_message(START_MESSAGE, info)
            log.info("loadkit: run clock t0=%.3f, %d worker(s)", t0, len(ids))
            self._write_workers()
            gevent.spawn(self._watch_workers)
        self.started.set()

    def _on_start_message(self, environment: Any, msg: Any, **_: Any) -> None:
        if self.start_info is None:
            self.start_info = msg.data
            self.started.set()

    def _on_report_to_master(self, client_id: str, data: dict[str, Any], **_: Any) -> None:
        data["loadkit"] = self.recorder.drain()

    def _on_worker_report(self, client_id: str, data: dict[str, Any], **_: Any) -> None:
        payload = data.get("loadkit")
        if payload and self.writer is not None:
            if self._share_of(client_id) in self.lost:
                # counted unsent already: its cells would count twice; its acks are welcome
                self.writer.add({"acks": payload.get("acks") or ()})
                return
            self.writer.add(payload)
            seen = self.reported.setdefault(client_id, {})
            for t, phase, _journey, _endpoint, level, n, *_ in payload.get("cells") or ():
                if level == ACTION:
                    seen[(t, phase)] = seen.get((t, phase), 0) + sum(n)

    def _on_done_message(self, environment: Any, msg: Any, **_: Any) -> None:
        data = msg.data or {}
        self.done[int(data.get("share", -1))] = data
        info = self.start_info
        if info is not None and len(self.done) >= info["count"] and not self.finishing:
            gevent.spawn(self._finish)

    def _on_test_stopping(self, environment: Any, **_: Any) -> None:
        self.stopping = True
        if self.driver is not None:
            self.driver.abort()  # an interrupted run: cut off what runs, keep what was recorded

    def _on_quitting(self, environment: Any, **_: Any) -> None:
        self.stopping = True
        if self.driver is not None:
            self.driver.abort()
        if self.writer is not None:
            if self.role == "standalone":
                self.writer.add(self.recorder.drain())
            self.writer.close()
            self.writer = None
        if self.recorder.spill is not None:
            self.recorder.spill.close()

    # -- the driver -----------------------------------------------------------------------------

    def drive(self, environment: Any) -> None:
        """Run this process's share of the run (the driver user's task); once per process."""
        if self.driving:
            return
        self.driving = True
        if not self.started.wait(timeout=START_TIMEOUT_S) or self.start_info is None:
            log.error("loadkit: no %s from the master within %gs", START_MESSAGE, START_TIMEOUT_S)
            self._report_done(0, None, "no start message")
            return
        info = self.start_info
        runner = environment.runner
        share = info["shares"].get(runner.client_id, 0) if self.role == "worker" else 0
        error = None
        result = None
        try:
            config = RunConfig.from_dict(info["config"])
            self._open_spill(config, share)
            profile = self.profile or sent_profile(
                config, info["profile"], info["profile_name"], info.get("data") or {}
            )
            driver = self.driver = Driver(
                profile,
                config,
                share=share,
                count=int(info["count"]),
                recorder=self.recorder,
                clock=RunClock(float(info["t0"])),
                environment=environment,
            )
            result = driver.run()
            self.driver = None
            log.info("loadkit: share %d done: %s", share, asdict(result))
        except LoadkitError as exc:
            error = exc.message
            log.error("loadkit: %s", error)
        self._report_done(share, result, error)

    def _open_spill(self, config: RunConfig, share: int) -> None:
        """This process's own acknowledgement log (docs/integrity.md); a run without it still
        runs (its keys then reach disk with the next report only), but says so."""
        path = spill_path(config, self.role, share)
        try:
            self.recorder.spill = AckLog(path)
            self.recorder.spill_in_run_dir = path.parent == RunDir(config.run_dir).acks_spill
        except OSError as exc:
            log.error("loadkit: no acknowledgement log of share %d at %s: %s", share, path, exc)
            return
        log.info("loadkit: acknowledgements of share %d also go to %s", share, path)

    def _report_done(self, share: int, result: DriverResult | None, error: str | None) -> None:
        self.result = result
        if self.stopping:
            return  # Locust is stopping the run already (Ctrl-C, SIGTERM, --run-time)
        runner = self.environment.runner
        data = {"share": share, "result": asdict(result) if result else None, "error": error}
        if self.role == "worker":
            runner._send_stats()  # the last recorder payload and Locust stats, before "done"
            runner.send_message(DONE_MESSAGE, data)
        else:
            self.done[share] = data
            gevent.spawn(self._finish)

    def _flush_loop(self) -> None:
        while self.writer is not None:
            gevent.sleep(FLUSH_INTERVAL_S)
            self._flush()

    def _flush(self) -> None:
        writer = self.writer
        if writer is None:
            return
        if self.role == "standalone":
            writer.add(self.recorder.drain())
        writer.flush()

    # -- lost workers ---------------------------------------------------------------------------

    def _share_of(self, client_id: str) -> int | None:
        info = self.start_info
        return None if info is None else info["shares"].get(client_id)

    def _watch_workers(self) -> None:
        """Every second: a share's worker that Locust marks missing (no heartbeat for
        ``HEARTBEAT_LIVENESS`` seconds), or that left, loses its share."""
        runner = self.environment.runner
        info = self.start_info
        assert info is not None
        while not self.finishing:
            gevent.sleep(1.0)
            for client_id, share in info["shares"].items():
                if share in self.done or share in self.lost:
                    continue
                node = runner.clients.get(client_id)
                if node is None or node.state == locust.runners.STATE_MISSING:
                    self._lose(client_id, share)

    def _lose(self, client_id: str, share: int) -> None:
        info = self.start_info
        assert info is not None and self.profile is not None
        reported = self.reported.get(client_id, {})
        now = time.time() - float(info["t0"])
        unsent, since = 0, None
        if self.profile.model.value == "open":
            count = int(info["count"])
            unsent, since = _count_lost(self.profile, share, count, reported, self.recorder)
            if self.writer is not None:
                self.writer.add(self.recorder.drain())
        self.lost[share] = {
            "share": share,
            "worker": client_id,
            "lost_at_s": round(max(now, 0.0), 1),
            "unsent_from_s": since,
            "unsent": unsent,
        }
        log.error(
            "loadkit: worker %s (share %d) lost at %.0fs: %d of its arrivals from second %d "
            "on counted unsent",
            client_id,
            share,
            now,
            unsent,
            since,
        )
        self._write_workers()
        self.done[share] = {"share": share, "result": None, "error": None, "lost": True}
        if len(self.done) >= info["count"] and not self.finishing:
            gevent.spawn(self._finish)

    def _write_workers(self) -> None:
        """``workers.json``: every share's worker, and the ones lost."""
        info = self.start_info
        if info is None or self.config is None:
            return
        RunDir(self.config.run_dir).write_workers(
            {
                "shares": {str(share): cid for cid, share in info["shares"].items()},
                "lost": sorted(self.lost.values(), key=lambda x: x["share"]),
            }
        )

    def _give_up(self) -> None:
        if not self.finishing:
            log.error("loadkit: shares %s never reported back", self._missing())
            self._finish()

    def _missing(self) -> list[int]:
        count = self.start_info["count"] if self.start_info else 0
        return [i for i in range(count) if i not in self.done]

    def _finish(self) -> None:
        """Write everything, let Locust's CSV writer catch up, and end the run."""
        if self.finishing:
            return
        self.finishing = True
        self._flush()
        gevent.sleep(CSV_SETTLE_S)
        self._flush()
        errors = [d["error"] for d in self.done.values() if d.get("error")]
        env = self.environment
        # a lost worker is not an error of the run: its arrivals count unsent (the run is
        # invalid when they are too many); a share that never reported back is
        env.process_exit_code = 2 if errors else 1 if self._missing() else 0
        gevent.spawn(env.runner.quit)


def _count_lost(
    profile: Profile,
    share: int,
    count: int,
    reported: dict[tuple[int, str], int],
    recorder: Recorder,
) -> tuple[int, int | None]:
    """Record every arrival of ``share`` its worker never reported (``reported``: its actions
    by second and phase) as ``unsent``, the journey chosen by the stage's weights as a driver
    would; how many, and the first second that had one."""
    import random

    from loadkit.load.recorder import ANY_ENDPOINT
    from loadkit.load.schedule import Share

    weights = [profile.journey_weights(stage) for stage in profile.stages]
    names = [journey.name for journey in profile.journeys]
    rng = random.Random(f"lost-{profile.seed}-{share}")
    sids: dict[str, int] = {}
    lost = Share(profile, share, count)
    left = dict(reported)
    total, since = 0, None
    while lost.next() != float("inf"):
        piece = lost.piece
        assert piece is not None
        key = (piece.t, piece.phase)
        if left.get(key, 0) > 0:
            left[key] -= 1
            continue
        since = piece.t if since is None else since
        name = rng.choices(names, weights=weights[piece.stage])[0]
        sid = sids.get(name)
        if sid is None:
            sid = sids[name] = recorder.series(name, ANY_ENDPOINT, ACTION)
        recorder.unsent(piece, sid)
        total += 1
    return total, since


def spill_path(config: RunConfig, role: str, share: int) -> Path:
    """Where this process keeps its own acknowledgement log: ``RUN_DIR/acks.d/`` when the run
    directory is here (it holds this run's ``run-config.json``: the master's machine, or a
    shared file system), else ``$LOADKIT_SPILL_DIR`` (default: the temporary directory)
    ``/loadkit-acks/<run id>/``. One file per process: ``<role>-<share>-<pid>.bin``."""
    name = spill_name(role, share, os.getpid())
    run_dir = Path(config.run_dir)
    try:
        here = json.loads((run_dir / RUN_CONFIG).read_text()).get("run_id") == config.run_id
    except (OSError, ValueError, AttributeError):
        here = False
    if here:
        return RunDir(run_dir).acks_spill / name
    base = Path(os.environ.get("LOADKIT_SPILL_DIR") or tempfile.gettempdir())
    return base / "loadkit-acks" / config.run_id / name


def check_runnable(profile: Profile) -> None:
    """What can only be checked where the run starts: ``env.*`` variables and custom classes."""
    from loadkit.load.journeys.custom import load_user_class

    for journey in profile.journeys:
        if isinstance(journey, HttpJourney):
            missing = sorted(n for n in template_env_names(journey) if n not in os.environ)
            if missing:
                raise LoadkitError(
                    f"journey '{journey.name}' uses unset environment variable(s): "
                    + ", ".join(missing)
                )
        elif isinstance(journey, LocustClassJourney):
            load_user_class(journey)


COORDINATOR = Coordinator()


class DriverUser(User):
    """The one user of each load process: its task drives the process's share of the run.

    After the run it waits (Locust's ``wait_time``) until the master quits: a waiting user stops
    at once, whatever ``--stop-timeout`` says.
    """

    wait_time = constant(24 * 3600)

    @task
    def drive(self) -> None:
        COORDINATOR.drive(self.environment)
