"""The shared kernel: the profile model and the outcome vocabulary every layer speaks.

A profile (``profiles/*.yaml``) is stages, a journey mix, the client's behaviour and network
classes; :func:`load_profile` reads and validates a whole file first (every mistake as
``file:line:col``). :mod:`loadkit.profile.outcome` is the one taxonomy of what an answer means
(``Outcome``, ``Cause``, :func:`classify`)::

    from loadkit.profile import classify, load_profile
    load_profile("profiles/smoke.yaml").rate_at(10.0)
    classify(429)  # (Outcome.BUSY, Cause.THROTTLED)

Modules: ``model`` (the typed profile), ``outcome`` (the vocabulary), ``read`` with
``read_stages`` and ``read_journeys`` (the validating reader), ``traffic`` (profiles fitted to
historical traffic). Nothing here imports Locust, gevent or a server.
"""

from loadkit.profile.model import (
    AmountRange,
    ClientBehaviour,
    Curve,
    HttpJourney,
    HttpMethod,
    HttpStep,
    Journey,
    LoadModel,
    LocustClassJourney,
    NetworkClass,
    Profile,
    Retries,
    Stage,
    UserPool,
    WalletJourney,
    WalletJourneyKind,
    load_profile,
)
from loadkit.profile.outcome import (
    CAUSE_INFO,
    EXPECTABLE,
    Cause,
    Expect,
    Failure,
    MoneyView,
    Outcome,
    classify,
    maintenance_marked,
    money_view,
)

__all__ = [
    "CAUSE_INFO",
    "EXPECTABLE",
    "AmountRange",
    "Cause",
    "ClientBehaviour",
    "Curve",
    "Expect",
    "Failure",
    "HttpJourney",
    "HttpMethod",
    "HttpStep",
    "Journey",
    "LoadModel",
    "LocustClassJourney",
    "MoneyView",
    "NetworkClass",
    "Outcome",
    "Profile",
    "Retries",
    "Stage",
    "UserPool",
    "WalletJourney",
    "WalletJourneyKind",
    "classify",
    "load_profile",
    "maintenance_marked",
    "money_view",
]
