"""The Locust side of loadkit. For now: load profiles, the typed model of ``profiles/*.yaml``::

from loadkit.load import load_profile
load_profile("profiles/smoke.yaml").rate_at(10.0)
"""

from loadkit.load.profile import (
    AmountRange,
    ClientBehaviour,
    Curve,
    Expect,
    HttpJourney,
    HttpMethod,
    HttpStep,
    Journey,
    LoadModel,
    LocustClassJourney,
    NetworkClass,
    Outcome,
    Profile,
    Retries,
    Stage,
    UserPool,
    WalletJourney,
    WalletJourneyKind,
    load_profile,
)

__all__ = [
    "AmountRange",
    "ClientBehaviour",
    "Curve",
    "Expect",
    "HttpJourney",
    "HttpMethod",
    "HttpStep",
    "Journey",
    "LoadModel",
    "LocustClassJourney",
    "NetworkClass",
    "Outcome",
    "Profile",
    "Retries",
    "Stage",
    "UserPool",
    "WalletJourney",
    "WalletJourneyKind",
    "load_profile",
]
