"""Run events: the hooks one run publishes, in the spirit of Locust's ``events``.

The orchestrator fires them; the chaos controller, the SLO watch, the integrity check, the live
progress display and report writing are listeners, and so can be anything a user adds::

    def on_tick(run: RunContext, t: float) -> None:
        print(f"{t:6.1f}s busy {run.timeline.totals('action').busy_rate:.1%}")

    runner = Runner(RunOptions(profile=Path("profiles/smoke.yaml")))
    runner.events.tick.add_listener(on_tick)
    runner.run()

Every listener gets the run (a :class:`RunContext`) as its first argument and the event's own
arguments by keyword. Events, in the order they fire:

``starting(run)``
    The run directory exists and the target is resolved; nothing is sending yet. Listeners that
    act on the target (the chaos controller) get ready here: an error stops the run before load.
``started(run, t0)``
    The run clock started (``t0``, Unix time; run-clock second 0).
``tick(run, t)``
    About twice a second while the load runs, after ``run.timeline`` took in what arrived
    (``t``: run-clock seconds).
``fault_injected(run, fault, type, target, t)`` / ``fault_reverted(run, fault, type, target, t,
ok)``
    A chaos fault went in or came out (``fault``: its name; ``target``: what it hit).
``stopping(run, reason)``
    The load has stopped (``reason`` is None when it ran to its end): faults are reverted here.
``finishing(run)``
    Everything is reverted; the run's own stack is still up (the integrity check runs here).
``finished(run, result)``
    ``run.json`` holds the final status; the run's own stack is down (reports are written here).

A listener that raises an ``Exception`` is logged and the run goes on (``stopping``,
``finishing`` and ``finished`` still reach every other listener). Control flow passes:
``KeyboardInterrupt`` and ``SystemExit`` always propagate, and so does any error raised by a
``starting`` listener, so a listener can refuse to start a run (a ``ConfigError`` exits 2).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from loadkit.run.orchestrator import Runner as RunContext

log = logging.getLogger("loadkit.run")

Listener = Callable[..., None]


class EventHook:
    """One event: its listeners, called in the order they were added."""

    def __init__(self, name: str, *, fatal: bool = False) -> None:
        self.name = name
        #: errors of listeners propagate (``starting``: a listener may refuse to start the run)
        self.fatal = fatal
        self._listeners: list[Listener] = []

    def __repr__(self) -> str:
        return f"<EventHook {self.name}: {len(self._listeners)} listener(s)>"

    def add_listener(self, listener: Listener) -> Listener:
        """Add ``listener``; returns it, so this works as a decorator."""
        self._listeners.append(listener)
        return listener

    def remove_listener(self, listener: Listener) -> None:
        self._listeners.remove(listener)

    @property
    def listeners(self) -> tuple[Listener, ...]:
        return tuple(self._listeners)

    def fire(self, run: RunContext, **kwargs: Any) -> None:
        for listener in list(self._listeners):
            try:
                listener(run, **kwargs)
            except Exception:
                if self.fatal:
                    raise
                log.exception("run event %s: listener %r failed", self.name, listener)


class RunEvents:
    """The events of one run (see the module docstring for when each fires)."""

    def __init__(self) -> None:
        self.starting = EventHook("starting", fatal=True)
        self.started = EventHook("started")
        self.tick = EventHook("tick")
        self.fault_injected = EventHook("fault_injected")
        self.fault_reverted = EventHook("fault_reverted")
        self.stopping = EventHook("stopping")
        self.finishing = EventHook("finishing")
        self.finished = EventHook("finished")

    def __iter__(self) -> Any:
        return iter(
            (
                self.starting,
                self.started,
                self.tick,
                self.fault_injected,
                self.fault_reverted,
                self.stopping,
                self.finishing,
                self.finished,
            )
        )


class RunListener:
    """Base for a listener object that hooks several events: override the ``on_<event>``
    methods you need and :meth:`attach` it; methods left as they are add no listener::

        class Printer(RunListener):
            def on_started(self, run: RunContext, t0: float) -> None:
                print("clock started", t0)

        Printer().attach(runner.events)
    """

    def attach(self, events: RunEvents) -> None:
        for hook in events:
            method = getattr(self, f"on_{hook.name}", None)
            base = getattr(RunListener, f"on_{hook.name}", None)
            if method is not None and getattr(method, "__func__", None) is not base:
                hook.add_listener(method)

    def on_starting(self, run: RunContext) -> None: ...
    def on_started(self, run: RunContext, t0: float) -> None: ...
    def on_tick(self, run: RunContext, t: float) -> None: ...
    def on_fault_injected(
        self, run: RunContext, fault: str, type: str, target: str, t: float
    ) -> None: ...
    def on_fault_reverted(
        self, run: RunContext, fault: str, type: str, target: str, t: float, ok: bool
    ) -> None: ...
    def on_stopping(self, run: RunContext, reason: str | None) -> None: ...
    def on_finishing(self, run: RunContext) -> None: ...
    def on_finished(self, run: RunContext, result: Any) -> None: ...
