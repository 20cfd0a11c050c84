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

from loadkit.load.journeys.base import Journey, Setup, VirtualUser, make_users
from loadkit.load.journeys.http import HttpJourneyRunner
from loadkit.load.journeys.wallet import WalletJourneyRunner, bind_accounts
from loadkit.profile.model import HttpJourney, LocustClassJourney, WalletJourney


def build_journeys(setup: Setup, users: list[VirtualUser]) -> list[Journey]:
    """A runner per journey of the profile, in the profile's order (its weights' order)."""
    journeys: list[Journey] = []
    requests = None
    if any(isinstance(j, WalletJourney) for j in setup.profile.journeys):
        bind_accounts(users, setup)
    for spec in setup.profile.journeys:
        if isinstance(spec, WalletJourney):
            journeys.append(WalletJourneyRunner(spec, setup))
        elif isinstance(spec, HttpJourney):
            journeys.append(HttpJourneyRunner(spec, setup))
        elif isinstance(spec, LocustClassJourney):
            from loadkit.load.journeys.custom import CustomRequests, LocustClassRunner

            fresh = requests is None
            requests = requests or CustomRequests(setup.recorder, setup.clock)
            journeys.append(LocustClassRunner(spec, setup, requests))
            if fresh:
                setup.environment.events.request.add_listener(requests.on_request)
    return journeys


__all__ = ["Journey", "Setup", "VirtualUser", "build_journeys", "make_users"]
