"""The load driver of one Locust process: open-model arrivals without coordinated omission, or
the closed model's looping users.

**Open model.** A pool of pre-allocated sender greenlets (``users.max_in_flight``, split over
the processes) pulls the next due arrival from the process's :class:`~loadkit.load.schedule.Share`,
sleeps until it is due, and runs its journey. Latency counts from the *intended* time: when every
sender is busy the schedule runs late, and that lateness is latency the user saw. An arrival due
within :data:`EARLY_S` goes at once, with the others of that loop iteration (its latency still
counts from its due time, at least 0). An arrival a sender picks up more than
``client.timeout`` after it was due is counted ``unsent`` (action level) and skipped: the pool
was exhausted for longer than the user would have waited for an answer, so the generator, not
the service, decided its fate. Senders keep no per-arrival state beyond one reused
:class:`~loadkit.load.client.Action`; they read the clock once before sleeping and twice per
request.

**Closed model.** ``users_at(t)`` users (their share of them) loop: action, think time, action…
Each action is timed from its start (a closed loop has no schedule to fall behind).

After the profile's duration the driver waits ``drain_s`` for answers; actions still running
then are cut off and count as busy ``timeout`` (their users saw no answer within the run)::

    driver = Driver(profile, config, share=0, count=1, recorder=Recorder(), clock=RunClock(t0))
    result = driver.run()        # blocks until the run (and its drain) is over
"""

from __future__ import annotations

import bisect
import logging
import math
import random
import time
from dataclasses import dataclass
from typing import Any

import gevent

from loadkit.load.client import Action, HttpClient, KeyMaker, RunOver, Target
from loadkit.load.journeys import Journey, Setup, VirtualUser, build_journeys, make_users
from loadkit.load.journeys.base import make_user, pool_size
from loadkit.load.journeys.wallet import bind_accounts
from loadkit.load.recorder import Recorder
from loadkit.load.runconfig import RunConfig
from loadkit.load.schedule import Piece, PieceIndex, Share, share_size
from loadkit.profile.model import LoadModel, Profile, WalletJourney
from loadkit.profile.outcome import CONNECTION_LOST, NO_DETAIL, TIMED_OUT, UNSENT

log = logging.getLogger("loadkit.load")
#: how often the closed model's user count is brought to the profile's
CLOSED_TICK_S = 0.1
#: an arrival due sooner than this is sent at once: the event loop's timers are no finer, and
#: at high rates this sends the arrivals of one loop iteration as a batch, without a timer each
EARLY_S = 0.0002


class RunClock:
    """The run clock: run second ``t`` = wall time − ``t0``, kept on ``time.perf_counter``.

    ``base`` is the ``perf_counter`` reading at run second 0: the hot path compares
    ``perf_counter()`` with ``base + t`` and never calls a Python function for the time.
    """

    def __init__(self, t0: float) -> None:
        self.t0 = t0
        self.base = time.perf_counter() - (time.time() - t0)

    def now(self) -> float:
        """Run seconds since ``t0``."""
        return time.perf_counter() - self.base


class _Picker:
    """Chooses a journey by one stage's weights."""

    __slots__ = ("_cumulative", "_journeys", "_only", "_total")

    def __init__(self, journeys: list[Journey], weights: tuple[float, ...]) -> None:
        pairs = [(j, w) for j, w in zip(journeys, weights, strict=True) if w > 0]
        if not pairs:
            raise ValueError("a stage whose mix weighs every journey 0")
        self._journeys = [j for j, _ in pairs]
        self._cumulative = []
        total = 0.0
        for _, weight in pairs:
            total += weight
            self._cumulative.append(total)
        self._total = total
        self._only = self._journeys[0] if len(pairs) == 1 else None

    def pick(self, rng: random.Random) -> Journey:
        if self._only is not None:
            return self._only
        index = bisect.bisect_right(self._cumulative, rng.random() * self._total)
        return self._journeys[min(index, len(self._journeys) - 1)]


@dataclass
class DriverResult:
    """What one process did: arrivals it was due to serve, how many it could not send, and the
    requests it made."""

    arrivals: int = 0
    unsent: int = 0
    cut_off: int = 0
    errors: int = 0
    requests: int = 0
    #: run second when the last action ended (a driver that keeps up ends near the duration)
    finished_at: float = 0.0


class Driver:
    """Drives one process's share of a run (see the module docstring)."""

    def __init__(
        self,
        profile: Profile,
        config: RunConfig,
        *,
        share: int,
        count: int,
        recorder: Recorder,
        clock: RunClock,
        environment: Any = None,
    ) -> None:
        self.profile = profile
        self.config = config
        self.share = share
        self.count = count
        self.recorder = recorder
        self.clock = clock
        self.timeout_s = profile.client.timeout_s
        self.run_end = profile.duration_s + config.drain_s
        fire = environment.events.request.fire if environment is not None else None
        self.client = HttpClient(
            recorder=recorder,
            fire=fire,
            clock=time.perf_counter,
            retries=profile.client.retries,
            run_end=clock.base + self.run_end,
            new_key=KeyMaker(share),
            failover=profile.client.failover,
        )
        self.targets: dict[str, Target] = {}
        self.rng = random.Random(f"{profile.seed}/{share}")
        self.setup = Setup(
            profile=profile,
            config=config,
            client=self.client,
            recorder=recorder,
            rng=self.rng,
            all_users=pool_size(profile, config),
            environment=environment,
            base=clock.base,
            share=share,
            count=count,
        )
        self.users = make_users(profile, config, self.targets, share, count, recorder)
        self.journeys = build_journeys(self.setup, self.users)
        self._pickers = [
            _Picker(self.journeys, profile.journey_weights(stage)) for stage in profile.stages
        ]
        self.result = DriverResult()
        self._next_user = 0
        self._errors_logged = 0
        self._last_end = clock.base
        self._greenlets: list[gevent.Greenlet] = []
        self._aborted = False
        self._wallet = any(isinstance(j, WalletJourney) for j in profile.journeys)

    def run(self) -> DriverResult:
        """Serve the whole run; returns when every action ended (or was cut off)."""
        try:
            if self.profile.model is LoadModel.OPEN:
                self._run_open()
            else:
                self._run_closed()
        finally:
            for target in self.targets.values():
                target.close()
        self.result.requests = self.client.requests
        self.result.finished_at = round(self._last_end - self.clock.base, 4)
        return self.result

    # -- open model -----------------------------------------------------------------------------

    def _run_open(self) -> None:
        share = Share(self.profile, self.share, self.count)
        senders = share_size(self.profile.users.max_in_flight, self.share, self.count) or 1
        group = [gevent.spawn(self._sender, share) for _ in range(senders)]
        self._greenlets = group
        self._finish(group)

    def _sender(self, share: Share) -> None:
        a = Action(self.timeout_s)
        base = self.clock.base
        bound = self.timeout_s
        perf = time.perf_counter
        sleep = gevent.sleep
        pickers = self._pickers
        rng = self.rng
        recorder = self.recorder
        users = self.users
        result = self.result
        skipped = 0
        try:
            while True:
                t = share.next()
                if t == math.inf:
                    return
                piece = share.piece
                assert piece is not None
                journey = pickers[piece.stage].pick(rng)
                result.arrivals += 1
                due = base + t
                wait = due - perf()
                if wait < -bound:  # counted where the next user would have sent it
                    recorder.unsent(piece, journey.action_sid | users[self._next_user].where)
                    result.unsent += 1
                    skipped += 1
                    if skipped % 512 == 0:
                        sleep(0)  # a long backlog: let the other greenlets breathe
                    continue
                if wait > EARLY_S:
                    sleep(wait)
                index = self._next_user
                self._next_user = index + 1 if index + 1 < len(users) else 0
                self._serve(a, due, piece, users[index], journey)
        except RunOver:
            return

    # -- closed model ---------------------------------------------------------------------------

    def _run_closed(self) -> None:
        pieces = PieceIndex(self.profile)
        total = pool_size(self.profile, self.config)
        running: dict[int, gevent.Greenlet] = {}
        stopping: set[int] = set()
        duration = self.profile.duration_s
        now = self.clock.now()
        while now < duration and not self._aborted:
            wanted = set(range(self.share, self.profile.users_at(max(now, 0.0)), self.count))
            for u in wanted - running.keys():
                stopping.discard(u)
                user = make_user(self.profile, self.config, self.targets, u % total, self.recorder)
                if self._wallet:
                    bind_accounts([user], self.setup)
                running[u] = gevent.spawn(self._user_loop, u, user, pieces, stopping)
                self._greenlets.append(running[u])
            for u in running.keys() - wanted:
                stopping.add(u)
            for u in [u for u, g in running.items() if g.dead]:
                del running[u]
            gevent.sleep(min(CLOSED_TICK_S, max(duration - now, 0.0)))
            now = self.clock.now()
        stopping.update(running)
        self._finish(list(running.values()))

    def _user_loop(self, u: int, user: VirtualUser, pieces: PieceIndex, stop: set[int]) -> None:
        a = Action(self.timeout_s)
        base = self.clock.base
        low, high = self.profile.client.think_time_s
        try:
            while u not in stop:
                due = time.perf_counter()
                piece = pieces.at(due - base)
                journey = self._pickers[piece.stage].pick(self.rng)
                self.result.arrivals += 1
                self._serve(a, due, piece, user, journey)
                think = low if high <= low else self.rng.uniform(low, high)
                if think > 0 and u not in stop:
                    gevent.sleep(think)
        except RunOver:
            return

    # -- both -----------------------------------------------------------------------------------

    def _serve(self, a: Action, due: float, piece: Piece, user: VirtualUser, journey: Any) -> None:
        a.begin(due, piece, user)
        try:
            journey.run(a)
        except RunOver:
            self.result.cut_off += 1
            a.outcome, a.cause = TIMED_OUT
            a.end = time.perf_counter()
            self._record(a, piece, journey)
            raise
        except Exception:
            # a loadkit or user-code bug, not the service: the arrival was not served as meant
            self.result.errors += 1
            if self._errors_logged < 5:
                self._errors_logged += 1
                log.exception("journey %s failed", journey.name)
            self.recorder.unsent(piece, journey.action_sid | a.where)
            return
        self._record(a, piece, journey)

    def _record(self, a: Action, piece: Piece, journey: Journey) -> None:
        end = a.end
        if end > self._last_end:
            self._last_end = end
        first = a.first_send if a.first_send >= 0 else end
        key = journey.action_sid | a.where
        if a.outcome == UNSENT:  # never left by a journey; kept exhaustive
            self.recorder.unsent(piece, key)
            return
        self.recorder.record(
            piece,
            key,
            a.outcome,
            a.cause,
            int((end - a.t) * 1e6),
            int((end - first) * 1e6),
        )
        if a.detail != NO_DETAIL and a.cause == CONNECTION_LOST[1]:  # e.g. a TLS failure
            self.recorder.detail(piece, key, a.detail)

    def abort(self) -> None:
        """End the run now (Ctrl-C, SIGTERM): running actions are cut off and recorded."""
        self._aborted = True
        alive = [g for g in self._greenlets if not g.dead]
        for greenlet in alive:
            greenlet.kill(RunOver, block=False)
        gevent.joinall(alive, timeout=2.0)

    def _finish(self, group: list[gevent.Greenlet]) -> None:
        """Wait for ``group`` until the drain is over, then cut off what still runs."""
        remaining = self.clock.base + self.run_end - time.perf_counter()
        gevent.joinall(group, timeout=max(remaining, 0.0))
        alive = [g for g in group if not g.dead]
        if alive:
            log.info("cutting off %d actions still running after the drain", len(alive))
            for greenlet in alive:
                greenlet.kill(RunOver, block=False)
            gevent.joinall(alive, timeout=5.0)
