"""Journeys: what a virtual user does in one action, for each kind a profile can name.

- :mod:`~loadkit.load.journeys.wallet` — the reference wallet's own journeys;
- :mod:`~loadkit.load.journeys.http` — declarative HTTP steps, for any service;
- :mod:`~loadkit.load.journeys.custom` — user-written Locust classes (imported lazily: only a run
  that names one pays for it).

::

    journeys = build_journeys(setup, users)
    journeys[0].run(action)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from loadkit.load.journeys.base import Journey, Setup, VirtualUser, make_users
from loadkit.load.journeys.http import HttpJourneyRunner
from loadkit.load.journeys.wallet import WalletJourneyRunner, bind_accounts
from loadkit.profile.model import HttpJourney, LocustClassJourney, WalletJourney


class _Context:
    """What runners of one process share: the custom-class request hook, made on first use."""

    def __init__(self, setup: Setup) -> None:
        self.setup = setup
        self._requests: Any = None

    def custom_requests(self) -> Any:
        if self._requests is None:
            from loadkit.load.journeys.custom import CustomRequests

            self._requests = CustomRequests(self.setup.recorder, self.setup.clock)
            self.setup.environment.events.request.add_listener(self._requests.on_request)
        return self._requests


def _wallet(spec: Any, setup: Setup, ctx: _Context) -> Journey:
    return WalletJourneyRunner(spec, setup)


def _http(spec: Any, setup: Setup, ctx: _Context) -> Journey:
    return HttpJourneyRunner(spec, setup)


def _custom(spec: Any, setup: Setup, ctx: _Context) -> Journey:
    # imported here: only a run that names a `locust:` class pays for its import
    from loadkit.load.journeys.custom import LocustClassRunner

    return LocustClassRunner(spec, setup, ctx.custom_requests())


#: the journey kinds: a profile journey's model (loadkit/profile/model.py, read by
#: loadkit/profile/read_journeys.py's ``KINDS``) → how to build its runner. A new kind is one
#: entry here, its model, and its reader.
RUNNERS: dict[type, Callable[[Any, Setup, _Context], Journey]] = {
    WalletJourney: _wallet,
    HttpJourney: _http,
    LocustClassJourney: _custom,
}


def build_journeys(setup: Setup, users: list[VirtualUser]) -> list[Journey]:
    """A runner per journey of the profile, in the profile's order (its weights' order)."""
    if any(isinstance(j, WalletJourney) for j in setup.profile.journeys):
        bind_accounts(users, setup)
    ctx = _Context(setup)
    journeys: list[Journey] = []
    for spec in setup.profile.journeys:
        build = RUNNERS.get(type(spec))
        if build is None:
            raise TypeError(f"no runner for journey kind {type(spec).__name__}")
        journeys.append(build(spec, setup, ctx))
    return journeys


__all__ = ["RUNNERS", "Journey", "Setup", "VirtualUser", "build_journeys", "make_users"]
