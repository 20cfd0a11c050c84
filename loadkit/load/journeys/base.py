"""What every journey kind shares: virtual users, the setup journeys are built from, endpoints.

A *virtual user* is one identity of the profile's user pool (``user.index`` 0…accounts-1), bound
to one target URL: users are assigned a network class by weight (an even, deterministic spread)
and spread evenly over their class's URLs (``target.network[class]``, else ``target.urls``),
which are one failover ring (``client.failover``).
Each Locust process serves its own share of them (index ``i`` belongs to share ``i % count``)::

    users = make_users(profile, config, targets, share=0, count=2, recorder=recorder)
    users[0].index, users[0].target.url       # 0, 'http://127.0.0.1:41001'

Given the recorder, each target gets the route of its instance (the run config's name for its
URL) and each user the index of its network class, so the timeline says where answers came
from.

A journey is built once per process and runs one action per call of :meth:`Journey.run`, leaving
the action's final outcome on the :class:`~loadkit.load.client.Action`.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from loadkit.errors import ConfigError
from loadkit.load.client import Action, Endpoint, HttpClient, Target, link, make_target
from loadkit.load.journeys.data import Feeder
from loadkit.load.recorder import ACTION, ANY_ENDPOINT, REQUEST, Recorder
from loadkit.load.runconfig import RunConfig
from loadkit.load.runconfig import Target as TargetConfig
from loadkit.profile.model import Expect, Profile
from loadkit.profile.outcome import StatusTable

#: the golden ratio's fraction: user i's point (i × φ) mod 1 spreads classes evenly
_PHI = 0.6180339887498949


class VirtualUser:
    """One identity of the user pool, with what its journeys keep between actions."""

    __slots__ = (
        "account",
        "auth",
        "custom",
        "index",
        "login_body",
        "net",
        "network",
        "services",
        "target",
        "token",
        "uid",
        "username",
        "where",
    )

    def __init__(
        self, index: int, uid: int, target: Target, network: str | None, net: int = 0
    ) -> None:
        self.index = index
        self.uid = uid
        self.target = target
        #: the system file's services by name (``--system``): what ``target: NAME`` journeys use
        self.services: dict[str, Target] = {}
        self.network = network
        #: the recorder's index of the network class, and the home target's route with it
        self.net = net
        self.where = target.route | net
        self.account = 0
        self.username = ""
        self.token: str | None = None
        self.auth = ""
        self.login_body = b""
        self.custom: dict[str, Any] = {}


class Journey(Protocol):
    """One journey of the profile, ready to run actions."""

    name: str
    action_sid: int

    def run(self, a: Action) -> None:
        """Run one action for ``a.user``; leave its final outcome and cause on ``a``."""
        ...


@dataclass
class Setup:
    """What journeys are built from, in one Locust process."""

    profile: Profile
    config: RunConfig
    client: HttpClient
    recorder: Recorder
    rng: random.Random
    #: all virtual users of the run (every share), by index
    all_users: int
    environment: Any = None
    #: the clock actions are timed with (``time.perf_counter``) and its reading at run second 0
    clock: Callable[[], float] = time.perf_counter
    base: float = 0.0
    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    #: this process's share of the run and how many shares there are (data sources' sequences)
    share: int = 0
    count: int = 1
    _tables: dict[int, StatusTable] = field(default_factory=dict)
    _feeders: dict[str, Feeder] = field(default_factory=dict)

    def feeder(self, name: str) -> Feeder:
        """The rows of data source ``name`` for this process (one per source, built once)."""
        feeder = self._feeders.get(name)
        if feeder is None:
            source = next((s for s in self.profile.data if s.name == name), None)
            if source is None:
                raise ConfigError(f"the profile has no data source '{name}'")
            feeder = self._feeders[name] = Feeder(
                source, seed=self.profile.seed, rng=self.rng, share=self.share, count=self.count
            )
        return feeder

    def endpoint(
        self, journey: str, label: str, method: str, expect: Expect | None = None
    ) -> Endpoint:
        """A request of ``journey`` labelled ``label`` in the timeline (``METHOD /path``);
        Locust's name is the label without the method."""
        key = id(expect) if expect is not None else 0
        table = self._tables.get(key)
        if table is None:
            table = self._tables[key] = StatusTable(expect)
        prefix = f"{method} "
        locust_name = label[len(prefix) :] if label.startswith(prefix) else label
        sid = self.recorder.series(journey, label, REQUEST)
        return Endpoint(label, method, sid, locust_name, table)

    def action_series(self, journey: str) -> int:
        return self.recorder.series(journey, ANY_ENDPOINT, ACTION)


def network_class(profile: Profile, index: int) -> str | None:
    """The network class of user ``index`` (``None`` when the profile has none)."""
    if not profile.network:
        return None
    point = (index * _PHI) % 1.0
    cumulative = 0.0
    for cls in profile.network:
        cumulative += cls.weight
        if point < cumulative:
            return cls.name
    return profile.network[-1].name


def pool_size(profile: Profile, config: RunConfig) -> int:
    """How many virtual users the run has: the profile's accounts (for the reference wallet, at
    most as many as were seeded)."""
    accounts = profile.users.accounts
    if config.target.kind == "reference":
        wallet = config.target.wallet
        if wallet is None or not wallet.users:
            raise ConfigError("run config: a reference target needs target.wallet.users")
        accounts = min(accounts, len(wallet.users))
    return accounts


def make_user(
    profile: Profile,
    config: RunConfig,
    targets: dict[str, Target],
    index: int,
    recorder: Recorder | None = None,
) -> VirtualUser:
    """Virtual user ``index``, bound to its target (``targets`` caches one per URL)."""
    network = network_class(profile, index)
    net = recorder.network(network) if recorder is not None else 0
    home = _bind(config.target, network, index, targets, recorder)
    user = VirtualUser(index, profile.users.first_id + index, home, network, net)
    for name, service in config.services.items():
        user.services[name] = _bind(service, network, index, targets, recorder)
    return user


def _bind(
    service: TargetConfig,
    network: str | None,
    index: int,
    targets: dict[str, Target],
    recorder: Recorder | None,
) -> Target:
    """The client target user ``index`` of ``network`` uses for ``service``: its class's URLs
    (else the service's), in turn; a service's URLs form one failover ring."""
    urls = service.network.get(network or "", ()) or service.urls
    url = urls[index % len(urls)]
    target = targets.get(url)
    if target is None:  # the first user of these URLs: one failover ring of them all
        link(
            tuple(
                targets.get(u) or targets.setdefault(u, _target(service, u, recorder))
                for u in dict.fromkeys(urls)
            )
        )
        target = targets[url]
    return target


def _target(service: TargetConfig, url: str, recorder: Recorder | None) -> Target:
    """The client's target for ``url``, with its TLS and the timeline's route to its instance."""
    target = make_target(url, service.tls_for(url))
    if recorder is not None:
        target.route = recorder.instance(service.instance_of(url))
    return target


def make_users(
    profile: Profile,
    config: RunConfig,
    targets: dict[str, Target],
    share: int,
    count: int,
    recorder: Recorder | None = None,
) -> list[VirtualUser]:
    """This share's virtual users (all of them when there are fewer users than shares)."""
    total = pool_size(profile, config)
    indexes = list(range(share, total, count)) or list(range(total))
    return [make_user(profile, config, targets, index, recorder) for index in indexes]
