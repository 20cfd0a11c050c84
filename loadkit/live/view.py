"""The live outputs of one command — the web view (``--web``), the OpenMetrics endpoint
(``--metrics``) and Pushgateway pushes (``--push-to``) — and the feeds that keep them current.

:class:`LiveView` is made (addresses checked, nothing bound) before anything starts, started,
attached to each run (:meth:`LiveView.attach` for a :class:`~loadkit.run.Runner`, one after the
other for a capacity search; :meth:`LiveView.watch_gameday` for ``loadkit chaos run``), and
closed at the end::

    view = LiveView(LiveOptions(web="8089", metrics="9464"), runner.allowlist, title="double11")
    view.start()                      # prints nothing: view.urls() says where
    view.attach(runner)
    try:
        runner.run()
    finally:
        view.close()

The halt button does what the terminal dashboard's halt key does: every fault reverted, the
load stopped, the reports written (``loadkit run``: the run ends ``aborted``; ``loadkit chaos
run``: ``halted``, as with ``h``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from loadkit.errors import ConfigError
from loadkit.live.address import Listen, parse_listen
from loadkit.live.metrics import MetricsServer, Pusher, metrics_registry
from loadkit.live.series import TimelineTail
from loadkit.live.server import LiveServer
from loadkit.live.state import LiveState
from loadkit.run.events import RunListener
from loadkit.safety import Allowlist

if TYPE_CHECKING:
    from loadkit.chaos.controller import Controller
    from loadkit.chaos.results import ChaosResult
    from loadkit.profile.model import Profile
    from loadkit.run.orchestrator import Runner

log = logging.getLogger(__name__)

#: after the run, the page keeps its reports served while it is open, at most this long
LINGER_S = 600.0
#: a page that has not polled for this long is closed
PAGE_GONE_S = 12.0
#: after the run, wait this long at most for Prometheus to scrape the final numbers
LAST_SCRAPE_S = 15.0


@dataclass(frozen=True)
class LiveOptions:
    """``--web [ADDR:]PORT``, ``--metrics [ADDR:]PORT``, ``--push-to URL``."""

    web: str | None = None
    metrics: str | None = None
    push_to: str | None = None

    def __bool__(self) -> bool:
        return bool(self.web or self.metrics or self.push_to)


class LiveView:
    """See the module docstring. ``busy_limit``: the busy-rate objective (fraction, source)
    the page draws and the metrics export for the alert rules."""

    def __init__(
        self,
        options: LiveOptions,
        allowlist: Allowlist,
        *,
        title: str,
        busy_limit: tuple[float, str] | None = None,
    ) -> None:
        self.options = options
        self.web_listen: Listen | None = (
            parse_listen(options.web, allowlist, what="--web") if options.web else None
        )
        self.metrics_listen: Listen | None = (
            parse_listen(options.metrics, allowlist, what="--metrics") if options.metrics else None
        )
        if options.push_to:
            allowlist.check_url(options.push_to, what="--push-to")
        self.state = LiveState(title)
        self.state.busy_limit = busy_limit
        self.registry, self.collector = metrics_registry(self.state)
        self.web: LiveServer | None = None
        self.metrics: MetricsServer | None = None
        self.pusher: Pusher | None = None
        self._halt: Callable[[str], None] | None = None
        self._halt_lock = threading.Lock()

    # -- life --------------------------------------------------------------------------------

    def start(self) -> None:
        """Bind and serve (a port in use is a ConfigError, exit 2)."""
        try:
            if self.web_listen is not None:
                self.web = LiveServer(self.web_listen, self.state, self.halt)
                self.web.start()
            if self.metrics_listen is not None:
                self.metrics = MetricsServer(self.metrics_listen, self.registry)
                self.metrics.start()
        except OSError as exc:
            self.close(linger_s=0)
            raise ConfigError(f"--web/--metrics: cannot listen there: {exc}") from exc
        if self.options.push_to:
            self.pusher = Pusher(self.options.push_to, self.registry, self.state)
            self.pusher.start()

    def urls(self) -> list[tuple[str, str]]:
        """``[("live view", url), ("metrics", url)]``: what to print (with the token, if any)."""
        out = []
        if self.web is not None:
            out.append(("live view", self.web.url))
        if self.metrics is not None:
            out.append(("metrics", self.metrics.url))
        if self.pusher is not None:
            out.append(("pushing to", self.pusher.url))
        return out

    def page_open(self) -> bool:
        last = self.state.last_poll
        return last is not None and time.time() - last < PAGE_GONE_S

    def close(self, *, linger_s: float = 0.0, say: Callable[[str], None] | None = None) -> None:
        """Stop serving. With ``linger_s``, first keep the reports served while a page is open
        (at most that long; Ctrl-C ends it) and wait for Prometheus's last scrape."""
        if self.metrics is not None and self.collector.scrapes:
            # Prometheus gets the final totals: one more scrape, of everything recorded
            self.collector.wait_for_scrape(time.monotonic(), LAST_SCRAPE_S)
        if self.pusher is not None:
            self.pusher.close()
        if self.web is not None and linger_s > 0 and self.page_open():
            if say is not None:
                say(
                    f"live view: the reports stay at {self.web.url} while the page is open "
                    f"(at most {linger_s / 60:g} min; Ctrl-C to quit)"
                )
            deadline = time.monotonic() + linger_s
            try:
                while self.page_open() and time.monotonic() < deadline:
                    time.sleep(0.5)
            except KeyboardInterrupt:
                pass
        for server in (self.web, self.metrics):
            if server is not None:
                server.close()
        self.web = self.metrics = None

    # -- halt --------------------------------------------------------------------------------

    def halt(self, reason: str, who: str = "") -> bool:
        """What the halt button does; False when nothing is running to halt."""
        with self._halt_lock:
            action = self._halt
            if action is None or self.state.halt is not None:
                return self.state.halt is not None
            with self.state.lock:
                self.state.halt = {"at": time.time(), "by": who, "reason": reason}
                self.state.run.reason = reason
        log.warning("%s (by %s)", reason, who or "?")
        action(reason)
        return True

    def on_halt(self, action: Callable[[str], None] | None) -> None:
        """What :meth:`halt` calls for the run going now (None: nothing to halt)."""
        with self._halt_lock:
            self._halt = action

    # -- feeds -------------------------------------------------------------------------------

    def attach(
        self,
        runner: Runner,
        *,
        kind: str = "run",
        title: str | None = None,
        also_halt: Callable[[str], None] | None = None,
    ) -> RunFeed:
        """Follow ``runner`` (attach before :meth:`Runner.run`); ``also_halt`` is called too
        when the halt button is pressed (a capacity search: no further pass)."""
        feed = RunFeed(self, kind=kind, title=title, also_halt=also_halt)
        feed.attach(runner.events)
        return feed

    def watch_gameday(self, profile: Profile | None = None) -> GamedayFeed:
        """A ``watch`` callback for :func:`loadkit.run.gameday.run_gameday`."""
        return GamedayFeed(self, profile)


class RunFeed(RunListener):
    """Keeps a :class:`LiveView` current from one run's events (ticks twice a second)."""

    def __init__(
        self,
        view: LiveView,
        *,
        kind: str = "run",
        title: str | None = None,
        also_halt: Callable[[str], None] | None = None,
    ) -> None:
        self.view = view
        self.kind = kind
        self.title = title
        self.also_halt = also_halt
        self.tail: TimelineTail | None = None
        #: seconds the last update took (the bench reads it)
        self.update_s: list[float] = []

    def on_starting(self, run: Runner) -> None:
        state = self.view.state
        assert run.rundir is not None
        state.begin(
            run_id=run.rundir.name,
            run_dir=run.rundir.path,
            profile=run.profile,
            kind=self.kind,
            title=self.title,
        )
        self.tail = TimelineTail(run.rundir.timeline)
        controller = run.chaos.controller if run.chaos is not None else None
        if controller is not None:
            state.watch_chaos(controller)
            if state.busy_limit is None:
                state.busy_limit = _scenario_limit(controller)

        def halt(reason: str) -> None:
            if controller is not None:
                controller.halt(reason)  # faults start coming out now, in their threads
            if self.also_halt is not None:
                self.also_halt(reason)
            run.abort(reason, safety=False)  # then the load stops; reports at `finished`

        self.view.on_halt(halt)

    def on_started(self, run: Runner, t0: float) -> None:
        with self.view.state.lock:
            self.view.state.run.t0 = t0
            self.view.state.run.status = "running"

    def on_tick(self, run: Runner, t: float) -> None:
        self.update()

    def on_fault_injected(self, run: Runner, fault: str, type: str, target: str, t: float) -> None:
        self.view.state.refresh_chaos()

    def on_fault_reverted(
        self, run: Runner, fault: str, type: str, target: str, t: float, ok: bool
    ) -> None:
        self.view.state.refresh_chaos()

    def on_stopping(self, run: Runner, reason: str | None) -> None:
        state = self.view.state
        with state.lock:
            state.run.status = "stopping"
            state.run.stopped_at = state.now()
            if reason:
                state.run.reason = reason

    def on_finishing(self, run: Runner) -> None:
        self.update()

    def on_finished(self, run: Runner, result: Any) -> None:
        self.view.on_halt(None)
        self.update()
        state = self.view.state
        with state.lock:
            state.run.status = "finished"
            state.run.reason = f"{result.status}" + (
                f": {result.record.reason}" if result.record.reason else ""
            )
            if state.run.stopped_at is None:
                state.run.stopped_at = state.now()

    def update(self) -> None:
        if self.tail is None:
            return
        started = time.perf_counter()
        lines = self.tail.read()
        state = self.view.state
        with state.lock:
            state.series.add_lines(lines)
            state.series.settle()
        state.refresh_chaos()
        self.update_s.append(time.perf_counter() - started)


class GamedayFeed:
    """``loadkit chaos run``'s watch callback: the controller's probe answers and states."""

    def __init__(self, view: LiveView, profile: Profile | None) -> None:
        self.view = view
        self.profile = profile
        self.controller: Controller | None = None
        self._last: Any = None

    def __call__(self, controller: Controller) -> None:
        state = self.view.state
        if self.controller is None:
            self.controller = controller
            state.begin(
                run_id=controller.run_dir.name,
                run_dir=controller.run_dir,
                profile=self.profile,
                kind="chaos",
                duration_s=controller.plan.end_s,
            )
            state.watch_chaos(controller)
            if state.busy_limit is None:
                state.busy_limit = _scenario_limit(controller)
            with state.lock:
                state.run.t0 = controller.t0
                state.run.status = "running"
            self.view.on_halt(controller.halt)  # the dashboard's halt key, exactly
        self._samples(controller)
        state.refresh_chaos()

    def _samples(self, controller: Controller) -> None:
        from loadkit.chaos.probes import Prober

        source = controller.source
        if not isinstance(source, Prober):
            return
        snap = list(source.samples)
        start = 0
        if self._last is not None:
            # the deque only grows at its end: new samples follow the last one taken (one
            # dropped off its front, hours later, makes us take the whole window again)
            for i in range(len(snap) - 1, -1, -1):
                if snap[i] is self._last:
                    start = i + 1
                    break
        if snap:
            self._last = snap[-1]
        state = self.view.state
        with state.lock:
            for s in snap[start:]:
                state.series.add_answer(s.t, s.outcome, s.cause, s.latency_s)
            state.series.settle()

    def finish(self, result: ChaosResult) -> None:
        """After :func:`run_gameday` returned (everything rolled back)."""
        self.view.on_halt(None)
        if self.controller is not None:
            self._samples(self.controller)
        state = self.view.state
        state.refresh_chaos()
        with state.lock:
            state.run.status = "finished"
            state.run.stopped_at = state.now()
            state.run.reason = f"{result.status}" + (f": {result.reason}" if result.reason else "")


def _scenario_limit(controller: Controller) -> tuple[float, str] | None:
    from loadkit.chaos.scenario import ProbeKind

    for probe in controller.scenario.steady_state.probes:
        if probe.kind is ProbeKind.BUSY_RATE and probe.max is not None:
            return probe.max, f"scenario probe {probe.name}"
    return None
