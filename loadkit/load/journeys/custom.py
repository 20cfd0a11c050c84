"""User-written Locust ``User`` classes (``locust: module:Class``) as journeys, best effort.

One arrival of such a journey runs **one task** of the class for the virtual user, as one action:
the instance is created (with ``host`` = the virtual user's target URL) and its ``on_start`` run
on the user's first action of this journey, then every action picks a task by the class's weights.
A task that is a ``TaskSet`` is instantiated once per user (its ``on_start`` included) and one
of *its* tasks runs, recursively. The class's requests, made through its own ``client``, fire
Locust's request event as usual; loadkit records each of them at request level and gives the
action the worst outcome among them (busy, else rejected, else ok).

Limits, by design of the open model: ``wait_time`` is never used (arrivals are scheduled),
``on_stop`` never runs, ``self.interrupt()``, ``RescheduleTask`` and ``StopUser`` just end the
action, and the class's own client settings (timeouts, retries) apply, not the profile's
``client`` block. Requests are attributed to the action running in the current greenlet, so a task
that spawns greenlets of its own makes requests loadkit cannot count (Locust still does: the
totals then disagree). A ``catch_response`` failure on a 2xx answer stays ``ok``: outcomes come
from statuses. An exception from the task is logged and reported to Locust (``user_error``); the
action keeps the outcome of its requests::

    journey = LocustClassRunner(spec, setup, requests)
    journey.run(action)
"""

from __future__ import annotations

import importlib
import logging
import ssl
from typing import Any

import gevent
from locust import TaskSet, User
from locust.exception import InterruptTaskSet, RescheduleTask, RescheduleTaskImmediately, StopUser

from loadkit.errors import ConfigError
from loadkit.load.client import OWN_EVENT, Action, RunOver
from loadkit.load.journeys.base import Setup, VirtualUser
from loadkit.load.recorder import REQUEST, Recorder
from loadkit.profile.model import LocustClassJourney
from loadkit.profile.outcome import (
    BUSY,
    CONNECTION_LOST,
    MAINTENANCE_HEADER,
    NO_DETAIL,
    OK,
    REJECTED,
    TIMED_OUT,
    TLS_FAILED,
    StatusTable,
    maintenance_marked,
)

log = logging.getLogger("loadkit.load")
_ENDS_ACTION = (InterruptTaskSet, RescheduleTask, RescheduleTaskImmediately, StopUser)
_MAX_DEPTH = 8


class CustomRequests:
    """Attributes request events of user-written classes to the action of the current greenlet
    (a listener on Locust's ``request`` event; loadkit's own events are skipped)."""

    def __init__(self, recorder: Recorder, clock: Any) -> None:
        self.recorder = recorder
        self.clock = clock
        self.current: dict[object, tuple[Action, str]] = {}
        self._table = StatusTable()

    def on_request(
        self,
        request_type: str,
        name: str,
        response_time: float,
        response_length: int,
        exception: BaseException | None = None,
        context: object = None,
        response: object = None,
        **_: object,
    ) -> None:
        if context is OWN_EVENT or not self.current:
            return
        entry = self.current.get(gevent.getcurrent())
        if entry is None:
            return
        a, journey = entry
        status = getattr(response, "status_code", 0) or 0
        detail = NO_DETAIL
        if isinstance(status, int) and status > 0:
            outcome, cause = self._table.lookup(status, _maintenance(response))
        elif exception is not None and _is_timeout(exception):
            outcome, cause = TIMED_OUT
        else:
            outcome, cause = CONNECTION_LOST
            if _is_tls(exception):
                detail = TLS_FAILED
        end = self.clock()
        start = end - (response_time or 0.0) / 1000.0
        if a.first_send < 0:
            a.first_send = start
        key = self.recorder.series(journey, f"{request_type} {name}", REQUEST) | a.where
        assert a.piece is not None
        self.recorder.record(
            a.piece, key, outcome, cause, int((end - a.due) * 1e6), int((end - start) * 1e6)
        )
        if detail != NO_DETAIL:
            self.recorder.detail(a.piece, key, detail)
        a.due = a.end = end
        a.status = status if isinstance(status, int) else 0
        if outcome == BUSY or (outcome == REJECTED and a.outcome == OK):
            a.outcome, a.cause, a.detail = outcome, cause, detail


def _is_timeout(exc: BaseException) -> bool:
    return isinstance(exc, TimeoutError) or "timeout" in type(exc).__name__.lower()


def _is_tls(exc: BaseException | None) -> bool:
    """An SSL error, or one caused by it (requests wraps it in its own ``SSLError``)."""
    seen = 0
    while exc is not None and seen < 5:
        if isinstance(exc, ssl.SSLError) or type(exc).__name__ == "SSLError":
            return True
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return False


def _maintenance(response: object) -> bool:
    """:func:`~loadkit.profile.outcome.maintenance_marked` for whatever response object a
    user's Locust client gives (``headers`` and ``content`` where it has them)."""
    try:
        headers = getattr(response, "headers", None)
        header = headers.get(MAINTENANCE_HEADER) if headers is not None else None
        body = getattr(response, "content", None)
    except Exception:  # a client with unusual headers: not worth failing the request over
        return False
    return maintenance_marked(header, body if isinstance(body, bytes) else None)


def load_user_class(spec: LocustClassJourney) -> type[User]:
    """Import ``module:Class``; :class:`ConfigError` when it is not a Locust ``User``."""
    try:
        module = importlib.import_module(spec.module)
    except ImportError as exc:
        raise ConfigError(f"journey '{spec.name}': cannot import {spec.module}: {exc}") from None
    cls = getattr(module, spec.cls, None)
    if not (isinstance(cls, type) and issubclass(cls, User)):
        raise ConfigError(f"journey '{spec.name}': {spec.module}:{spec.cls} is not a Locust User")
    return cls


class LocustClassRunner:
    """One ``locust: module:Class`` journey (see the module docstring)."""

    def __init__(self, spec: LocustClassJourney, setup: Setup, requests: CustomRequests) -> None:
        if setup.environment is None:
            raise ConfigError(f"journey '{spec.name}': Locust classes need a Locust environment")
        self.name = spec.name
        self.action_sid = setup.action_series(spec.name)
        self.cls = load_user_class(spec)
        self.environment = setup.environment
        self.rng = setup.rng
        self.requests = requests
        self._by_url: dict[str, type[User]] = {}

    def run(self, a: Action) -> None:
        user: VirtualUser = a.user
        me = gevent.getcurrent()
        self.requests.current[me] = (a, self.name)
        instance = user.custom.get(self.name)
        try:
            if instance is None:
                instance = user.custom[self.name] = self._instance(user.target.url)
                instance.on_start()
            self._one_task(user, instance, instance, 0)
        except _ENDS_ACTION:
            pass
        except (RunOver, gevent.GreenletExit):
            raise
        except Exception as exc:
            log.exception("journey %s: the task raised %s", self.name, type(exc).__name__)
            self.environment.events.user_error.fire(
                user_instance=instance, exception=exc, tb=exc.__traceback__
            )
        finally:
            self.requests.current.pop(me, None)

    def _instance(self, url: str) -> User:
        cls = self._by_url.get(url)
        if cls is None:
            base = self.cls
            cls = self._by_url[url] = type(
                base.__name__, (base,), {"host": url, "__module__": base.__module__}
            )
        return cls(self.environment)

    def _one_task(self, user: VirtualUser, holder: Any, parent: Any, depth: int) -> None:
        tasks = holder.tasks
        if not tasks or depth > _MAX_DEPTH:
            return
        task = tasks[self.rng.randrange(len(tasks))]
        if isinstance(task, type) and issubclass(task, TaskSet):
            key = f"{self.name}/{id(parent)}/{task.__qualname__}"
            taskset = user.custom.get(key)
            if taskset is None:
                taskset = user.custom[key] = task(parent)
                taskset.on_start()
            self._one_task(user, taskset, taskset, depth + 1)
        else:
            task(parent)
