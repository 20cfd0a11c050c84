"""Load profiles: the typed model of a ``profiles/*.yaml`` file and the load it asks for over time.

A profile is a list of stages (each a duration, a target and a curve), a weighted journey mix, the
client's behaviour and its network classes. :func:`load_profile` reads and fully validates a file
(every mistake reported at ``file:line:column``, see :mod:`loadkit.spec`) before anything starts::

    profile = load_profile("profiles/double11.yaml")
    profile.rate_at(120.0), profile.phase_at(120.0)  # (4200.0, 'midnight-spike')

Time. Stage durations (and a sine's ``period`` and ``peak_at``) are *profile time*, the clock the
file describes. ``time_scale`` maps it to the *run clock*: run seconds = profile seconds ×
``time_scale``, while rates stay per run second. A 24 h profile with ``time_scale: 0.01`` runs
14.4 minutes at the rates it names, so a day's shape is compressed but its intensity is not.
Every stage must last at least :data:`MIN_STAGE_RUN_S` of run time, which is what makes a short
spike impossible to skip: the per-second recorder always sees it, and
:meth:`Profile.arrivals_between` integrates the curves exactly, so a driver that schedules from it
sends every arrival of even a sub-second slice.

Curves (``level`` is arrivals per second, or concurrent users in a closed-model profile):

- ``step``: ``rate`` for the whole stage;
- ``linear``: from ``from`` (default: where the previous stage ended, 0 for the first) to ``rate``;
- ``exponential``: the same endpoints, geometric in between (both must be above zero);
- ``sine``: ``rate`` is the mean, ``amplitude`` the swing as a fraction of it, with ``period``
  (default: the stage) and the peak at ``peak_at`` into the period (default: half way).

``variation`` multiplies the level by ``1 + variation × u``, with ``u`` uniform in [-1, 1], drawn
once per run second from ``seed``, the stage and the second: the same profile and seed always give
the same load.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path

from loadkit.errors import ConfigError
from loadkit.profile.data import DataFiles as DataFiles
from loadkit.profile.data import DataMode as DataMode
from loadkit.profile.data import DataSource as DataSource
from loadkit.profile.outcome import EXPECTABLE as EXPECTABLE
from loadkit.profile.outcome import Expect as Expect
from loadkit.profile.outcome import Outcome as Outcome
from loadkit.spec.template import Template
from loadkit.spec.values import did_you_mean

#: the shortest a stage may last on the run clock (after ``time_scale``)
MIN_STAGE_RUN_S = 1.0

#: the disk estimate of :meth:`Profile.disk_bytes` (measured: docs/design.md, "Disk guard")
DISK_BYTES_PER_ACTION = 400
DISK_BYTES_PER_SECOND = 16_000
DISK_SAFETY = 2.0
#: a closed-model user's actions per second, for the disk estimate (an upper guess)
CLOSED_ACTIONS_PER_USER_S = 2.0


class Curve(StrEnum):
    STEP = "step"
    LINEAR = "linear"
    EXPONENTIAL = "exponential"
    SINE = "sine"


class LoadModel(StrEnum):
    """Open: stages name arrival rates (``rate``). Closed: stages name concurrent ``users``."""

    OPEN = "open"
    CLOSED = "closed"


class WalletJourneyKind(StrEnum):
    """The reference wallet's journeys: the runner implements them, a profile picks and weighs."""

    LOGIN = "login"
    BALANCE = "balance"
    PAY_MERCHANT = "pay_merchant"
    P2P_TRANSFER = "p2p_transfer"
    TOPUP = "topup"
    HISTORY = "history"


class HttpMethod(StrEnum):
    GET = "GET"
    POST = "POST"
    PUT = "PUT"
    PATCH = "PATCH"
    DELETE = "DELETE"
    HEAD = "HEAD"
    OPTIONS = "OPTIONS"


@dataclass(frozen=True, slots=True)
class Stage:
    """One phase of the load. Durations are profile seconds; levels are per the profile's model.

    ``start`` is the resolved level at the stage's start (for ``step`` and ``sine`` it equals
    ``target``). ``mix``, when not empty, replaces the journeys' weights while the stage lasts
    (by journey name; journeys it leaves out are not chosen).
    """

    name: str
    duration_s: float
    target: float
    start: float
    curve: Curve = Curve.STEP
    variation: float = 0.0
    amplitude: float = 0.0
    period_s: float = 0.0
    peak_at_s: float = 0.0
    mix: Mapping[str, float] = field(default_factory=dict)

    @property
    def base_name(self) -> str:
        """The name without the ``#n`` a ``repeat`` group adds (``burst#2`` → ``burst``)."""
        return self.name.split("#", 1)[0]

    @property
    def end(self) -> float:
        """The level the stage ends at (where a following ramp starts by default)."""
        return self.level(self.duration_s)

    @property
    def peak(self) -> float:
        """The highest level of the curve, before variation."""
        if self.curve is Curve.SINE:
            return self.target * (1 + self.amplitude)
        return max(self.start, self.target)

    def level(self, tau: float) -> float:
        """The curve's level ``tau`` profile seconds into the stage, before variation."""
        u = tau / self.duration_s
        if self.curve is Curve.LINEAR:
            return self.start + (self.target - self.start) * u
        if self.curve is Curve.EXPONENTIAL:
            return self.start * math.pow(self.target / self.start, u)
        if self.curve is Curve.SINE:
            omega = 2 * math.pi / self.period_s
            return self.target * (1 + self.amplitude * math.cos(omega * (tau - self.peak_at_s)))
        return self.target

    def integral(self, a: float, b: float) -> float:
        """∫ level dτ over ``[a, b]`` profile seconds of this stage, in closed form."""
        d = self.duration_s
        if self.curve is Curve.LINEAR:
            return self.start * (b - a) + (self.target - self.start) * (b * b - a * a) / (2 * d)
        if self.curve is Curve.EXPONENTIAL and self.target != self.start:
            k = math.log(self.target / self.start) / d  # level = start · e^(kτ)
            return self.start / k * (math.exp(k * b) - math.exp(k * a))
        if self.curve is Curve.SINE:
            w, p = 2 * math.pi / self.period_s, self.peak_at_s
            swing = math.sin(w * (b - p)) - math.sin(w * (a - p))
            return self.target * ((b - a) + self.amplitude / w * swing)
        return self.target * (b - a)


@dataclass(frozen=True, slots=True)
class AmountRange:
    """Amounts a wallet journey draws from, in fen (1 CNY = 100 fen), both ends included."""

    min_fen: int
    max_fen: int


@dataclass(frozen=True, slots=True)
class WalletJourney:
    """A reference-wallet journey. ``otp``: complete the OTP step when the wallet asks for one
    (else its 403 counts as rejected). ``amount`` for payments, transfers and top-ups; ``limit``
    is the page size of ``history``."""

    name: str
    weight: float
    kind: WalletJourneyKind
    amount: AmountRange | None = None
    otp: bool = True
    limit: int | None = None
    tags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Money:
    """Marks an HTTP step as a money movement, so that the client logs it in ``acks.bin``
    for the integrity check: the idempotency key is the value the step sends in the header
    ``idempotency_header`` (usually ``{step.idempotency_key}``); ``id_field`` is where the answer
    carries the movement's id (a dotted path, optional); ``amount`` the body field holding the
    amount (optional, for the log)."""

    idempotency_header: str = "Idempotency-Key"
    id_field: str | None = None
    amount: str | None = None


@dataclass(frozen=True, slots=True)
class HttpStep:
    """One request of a declarative HTTP journey. ``name`` labels it in reports (by default
    ``METHOD path`` with the path unrendered, so reports have one row per endpoint, not per id).
    ``json`` is a body template: dicts, lists and scalars, with :class:`Template` strings.
    ``extract`` maps a variable name to a dotted path into the JSON answer (``data.token``)."""

    name: str
    method: HttpMethod
    path: Template
    headers: Mapping[str, Template] = field(default_factory=dict)
    json: object = None
    expect: Expect = field(default_factory=Expect)
    extract: Mapping[str, str] = field(default_factory=dict)
    money: Money | None = None

    def templates(self) -> Iterator[Template]:
        """Every template of the step: path, header values, and those inside the JSON body."""
        yield self.path
        yield from self.headers.values()
        stack: list[object] = [self.json]
        while stack:
            value = stack.pop()
            if isinstance(value, Template):
                yield value
            elif isinstance(value, dict):
                stack.extend(value.values())
            elif isinstance(value, list):
                stack.extend(value)


@dataclass(frozen=True, slots=True)
class HttpJourney:
    """A journey described in the file: its steps run in order, for any HTTP service."""

    name: str
    weight: float
    steps: tuple[HttpStep, ...]
    tags: tuple[str, ...] = ()
    #: the service of a system file it goes to (``--system``); None: the first service
    target: str | None = None

    def env_names(self) -> list[str]:
        """The ``env.*`` variables its templates use (checked where the run starts)."""
        names = {
            v[4:]
            for step in self.steps
            for template in step.templates()
            for v in template.variables
            if v.startswith("env.")
        }
        return sorted(names)


@dataclass(frozen=True, slots=True)
class LocustClassJourney:
    """A user-written Locust ``User`` class, given as ``module:Class`` and imported by workers."""

    name: str
    weight: float
    module: str
    cls: str
    tags: tuple[str, ...] = ()


Journey = WalletJourney | HttpJourney | LocustClassJourney


@dataclass(frozen=True, slots=True)
class Retries:
    """Client retries of one request: ``attempts`` counts the first one too (1 = no retry);
    the backoff doubles from ``backoff_s`` up to ``max_backoff_s``."""

    attempts: int = 1
    backoff_s: float = 0.1
    max_backoff_s: float = 5.0
    honour_retry_after: bool = True
    reuse_idempotency_key: bool = True


@dataclass(frozen=True, slots=True)
class Failover:
    """Client-side failover, like a load balancer's passive health check: a request whose
    connection to one target URL is refused, reset or closed before an answer is sent again at
    once (same idempotency key, no retry attempt used) to the next target URL of the user's list
    that is not ejected; the failed one is skipped for ``eject_s`` seconds (per load process)."""

    eject_s: float = 5.0


@dataclass(frozen=True, slots=True)
class ClientBehaviour:
    """How a simulated client waits and retries; ``think_time_s`` is a (min, max) pause between
    actions of a closed-model user (open-model arrivals ignore it); ``failover`` ``None`` keeps
    each user on its own target URL whatever happens to it."""

    timeout_s: float = 10.0
    think_time_s: tuple[float, float] = (0.0, 0.0)
    retries: Retries = field(default_factory=Retries)
    failover: Failover | None = None


@dataclass(frozen=True, slots=True)
class NetworkClass:
    """A share of users whose traffic goes through a client-side Toxiproxy proxy with these toxics.
    ``weight`` is a fraction of users (all classes add up to 1); ``bandwidth_kbps`` ``None`` is
    unlimited (Toxiproxy's bandwidth toxic takes KB/s: divide by 8)."""

    name: str
    weight: float
    latency_ms: float = 0.0
    jitter_ms: float = 0.0
    bandwidth_kbps: float | None = None


@dataclass(frozen=True, slots=True)
class UserPool:
    """The virtual users: ``accounts`` distinct identities (``user.index`` 0…accounts-1, ``user.id``
    from ``first_id``), and at most ``max_in_flight`` open-model arrivals in flight at once
    (arrivals beyond it are counted ``unsent``)."""

    accounts: int = 1000
    first_id: int = 1
    max_in_flight: int = 1000


@dataclass(frozen=True, slots=True)
class SqlIntegrityCheck:
    """``integrity.sql``: a query against the service's database returning the applied
    movements as ``(key, count)`` rows (or one ``key`` column, a row per application); ``$1`` in
    the query is the run's start time (Unix seconds). ``dsn`` or ``dsn_env`` (the name of an
    environment variable holding it)."""

    query: str
    dsn: str | None = None
    dsn_env: str | None = None


@dataclass(frozen=True, slots=True)
class HttpIntegrityCheck:
    """``integrity.http``: ``GET url?since=<run start>`` answering the applied ids or keys."""

    url: str
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class IntegrityCheck:
    """A profile's ``integrity:`` section: how to read the applied movements of the user's own
    service after the run (exactly one of ``sql`` and ``http``)."""

    sql: SqlIntegrityCheck | None = None
    http: HttpIntegrityCheck | None = None


@dataclass(frozen=True)
class Profile:
    """A validated load profile. Times given to its methods are run-clock seconds from t=0."""

    name: str
    stages: tuple[Stage, ...]
    journeys: tuple[Journey, ...]
    model: LoadModel = LoadModel.OPEN
    description: str = ""
    client: ClientBehaviour = field(default_factory=ClientBehaviour)
    network: tuple[NetworkClass, ...] = ()
    time_scale: float = 1.0
    users: UserPool = field(default_factory=UserPool)
    seed: int = 0
    source: str | None = None
    integrity: IntegrityCheck | None = None
    data: tuple[DataSource, ...] = ()
    _starts: tuple[float, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        starts, clock = [], 0.0
        for stage in self.stages:
            starts.append(clock)
            clock += stage.duration_s
        object.__setattr__(self, "_starts", tuple(starts))

    @property
    def profile_duration_s(self) -> float:
        """Length in profile time, as the file describes it."""
        return sum(stage.duration_s for stage in self.stages)

    @property
    def duration_s(self) -> float:
        """Length on the run clock (profile time × ``time_scale``)."""
        return self.profile_duration_s * self.time_scale

    def with_time_scale(self, time_scale: float) -> Profile:
        """The same profile on another run clock (``--time-scale``); raises
        :class:`~loadkit.errors.ConfigError` if a stage would last under :data:`MIN_STAGE_RUN_S`."""
        if not (math.isfinite(time_scale) and time_scale > 0):
            raise ConfigError(f"time scale must be a number above 0, got {time_scale}")
        for stage in self.stages:
            if (run := stage.duration_s * time_scale) < MIN_STAGE_RUN_S:
                raise ConfigError(
                    f"with time scale {time_scale:g}, stage '{stage.name}' would last {run:g}s of "
                    f"run time; stages must last at least {MIN_STAGE_RUN_S:g}s"
                )
        return replace(self, time_scale=time_scale)

    def with_tags(self, include: Iterable[str] = (), exclude: Iterable[str] = ()) -> Profile:
        """The same profile with only the journeys tagged one of ``include`` (all of them when
        it is empty) and none of ``exclude``; ``--tags`` and ``--exclude-tags`` on the command
        line. Raises :class:`~loadkit.errors.ConfigError` when an ``include`` tag is on no
        journey, when nothing is left, or when a stage's ``mix`` weighs only journeys left out::

            profile.with_tags(include=["payments"], exclude=["slow"]).journeys
        """
        wanted, unwanted = tuple(dict.fromkeys(include)), set(exclude)
        if not wanted and not unwanted:
            return self
        tags = sorted({tag for journey in self.journeys for tag in journey.tags})
        listing = ", ".join(tags) or "none"
        for tag in wanted:
            if tag not in tags:
                raise ConfigError(
                    f"no journey of profile '{self.name}' is tagged '{tag}'"
                    f"{did_you_mean(tag, tags)} (its tags: {listing})"
                )
        kept = tuple(
            j
            for j in self.journeys
            if (not wanted or set(j.tags) & set(wanted)) and not set(j.tags) & unwanted
        )
        parts = [f"include {', '.join(wanted)}"] if wanted else []
        parts += [f"exclude {', '.join(sorted(unwanted))}"] if unwanted else []
        chosen = f"the tag selection ({'; '.join(parts)})"
        if not kept:
            journeys = ", ".join(f"{j.name} [{', '.join(j.tags)}]" for j in self.journeys)
            raise ConfigError(
                f"{chosen} leaves no journey of profile '{self.name}' to run "
                f"(its journeys: {journeys})"
            )
        names = {j.name for j in kept}
        for stage in self.stages:
            if stage.mix and not any(w > 0 for n, w in stage.mix.items() if n in names):
                raise ConfigError(
                    f"{chosen} leaves stage '{stage.name}' nothing to run: its mix weighs "
                    f"only {', '.join(n for n, w in stage.mix.items() if w > 0)}"
                )
        return replace(self, journeys=kept)

    def stage_at(self, t: float) -> Stage | None:
        """The stage running at run second ``t``; ``None`` before 0 and from the end on."""
        return None if (found := self._locate(t)) is None else self.stages[found[0]]

    def phase_at(self, t: float) -> str | None:
        """The name of the stage running at run second ``t`` (the phase in reports)."""
        stage = self.stage_at(t)
        return None if stage is None else stage.name

    def journey_weights(self, stage: Stage) -> tuple[float, ...]:
        """The weights of :attr:`journeys`, in order, while ``stage`` runs (its ``mix`` applied)."""
        if not stage.mix:
            return tuple(journey.weight for journey in self.journeys)
        return tuple(stage.mix.get(journey.name, 0.0) for journey in self.journeys)

    def level_at(self, t: float) -> float:
        """Arrivals per second (open) or users (closed) at run second ``t``; 0 outside the run."""
        found = self._locate(t)
        if found is None:
            return 0.0
        index, tau = found
        stage = self.stages[index]
        return max(0.0, stage.level(tau) * self._noise(index, math.floor(t)))

    def rate_at(self, t: float) -> float:
        """Offered arrival rate (per second) at run second ``t`` of an open-model profile."""
        self._require(LoadModel.OPEN, "rate_at")
        return self.level_at(t)

    def users_at(self, t: float) -> int:
        """Concurrent users at run second ``t`` of a closed-model profile."""
        self._require(LoadModel.CLOSED, "users_at")
        return round(self.level_at(t))

    def arrivals_between(self, t0: float, t1: float) -> float:
        """Expected arrivals in run seconds ``[t0, t1)``: the exact integral of :meth:`rate_at`."""
        self._require(LoadModel.OPEN, "arrivals_between")
        return self._level_integral(t0, t1)

    def planned_actions(self) -> float:
        """The user actions the whole run plans: its arrivals (open model), or, for a closed
        model, its user-seconds × :data:`CLOSED_ACTIONS_PER_USER_S` (an upper guess: users wait
        for their answers, so they rarely act faster)."""
        level = self._level_integral(0.0, self.duration_s)
        return level if self.model is LoadModel.OPEN else level * CLOSED_ACTIONS_PER_USER_S

    def disk_bytes(self) -> int:
        """What this run is expected to write into its run directory, with a safety factor::

            (planned actions × DISK_BYTES_PER_ACTION + run seconds × DISK_BYTES_PER_SECOND)
              × DISK_SAFETY

        ``DISK_BYTES_PER_ACTION`` covers an action's acknowledgement records (``acks.jsonl``
        and the load process's own spill in ``acks.d/``: a money movement's views as JSON
        lines), ``DISK_BYTES_PER_SECOND`` the timeline's per-second deltas (one line per
        phase, journey, endpoint, instance and network seen that second, with its latency
        histogram) and the logs. The constants were measured on the reference wallet's
        journeys (docs/design.md, "Disk guard"); the run refuses to start when its output
        volume has less free space than this plus the guard's floor::

            load_profile("profiles/smoke.yaml").disk_bytes()   # about 2.5 MB
        """
        raw = (
            self.planned_actions() * DISK_BYTES_PER_ACTION + self.duration_s * DISK_BYTES_PER_SECOND
        )
        return int(raw * DISK_SAFETY)

    def _level_integral(self, t0: float, t1: float) -> float:
        """The integral of :meth:`level_at` over run seconds ``[t0, t1)``."""
        t0, t1 = max(t0, 0.0), min(t1, self.duration_s)
        total, scale = 0.0, self.time_scale
        for index, stage in enumerate(self.stages):
            begin = self._starts[index] * scale
            a, b = max(t0, begin), min(t1, begin + stage.duration_s * scale)
            while a < b:  # variation is constant within a run second: integrate piece by piece
                second = math.floor(a)
                piece_end = min(b, second + 1.0) if stage.variation else b
                integral = stage.integral((a - begin) / scale, (piece_end - begin) / scale)
                total += max(0.0, integral * scale * self._noise(index, second))
                a = piece_end
        return total

    def _locate(self, t: float) -> tuple[int, float] | None:
        tau = t / self.time_scale
        if not self.stages or tau < 0 or tau >= self.profile_duration_s:
            return None
        index = bisect.bisect_right(self._starts, tau) - 1
        return index, tau - self._starts[index]

    def _noise(self, index: int, second: int) -> float:
        variation = self.stages[index].variation
        if not variation:
            return 1.0
        u = _splitmix64(self.seed * 1_000_003 + index * 1_000_000_007 + second) / 2**63 - 1.0
        return 1.0 + variation * u

    def _require(self, model: LoadModel, method: str) -> None:
        if self.model is not model:
            raise ValueError(f"{method} needs an {model} profile; {self.name!r} is {self.model}")


def load_profile(path: str | Path, *, data: DataFiles = True) -> Profile:
    """Read and validate a profile file; raises :class:`~loadkit.spec.SpecError` listing every
    mistake (``file:line:col: field: message``). ``data``: read the CSV files of ``data:`` from
    disk (``True``), leave them unread (``False``: the structure only, as reports need), or take
    their text from a mapping by the file names the profile wrote (a remote load worker)."""
    # imported here: the spec validators build this module's classes, so they import it first
    from loadkit.profile.read import load_profile as load

    return load(path, data=data)


def _splitmix64(x: int) -> int:
    """A fast, well-mixed 64-bit hash: the same noise on every machine and in every process."""
    x = (x + 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    return x ^ (x >> 31)
