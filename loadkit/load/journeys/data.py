"""The rows of a profile's data sources, handed to actions in one load process.

One :class:`Feeder` per data source and process (shared by every journey that uses the source),
following the source's mode (:mod:`loadkit.profile.data`): per-user rows by the virtual user's
index (through a shuffle of the file, the same in every process, for ``per-user-random``),
shared rows by a counter that interleaves the processes (``shared-sequential``) or by the
process's seeded generator (``shared-random``)::

    feeder = Feeder(source, seed=profile.seed, rng=rng, share=0, count=2)
    feeder.row(user_index=3)  # ('alice', 's3cret')
"""

from __future__ import annotations

import random

from loadkit.profile.data import DataMode, DataSource


class Feeder:
    """Which row of one data source an action uses, in one load process."""

    __slots__ = ("_next", "_order", "_rng", "_step", "columns", "mode", "name", "rows", "slot")

    def __init__(
        self, source: DataSource, *, seed: int, rng: random.Random, share: int, count: int
    ) -> None:
        if not source.rows:
            raise ValueError(f"data source '{source.name}' has no rows (was it read?)")
        self.name = source.name
        #: where an action keeps its row of a shared source (``Action.vars``: no extracted
        #: variable's name can start with NUL)
        self.slot = f"\0data.{source.name}"
        self.mode = source.mode
        self.rows = source.rows
        self.columns = {column: i for i, column in enumerate(source.columns)}
        self._rng = rng
        self._next = share
        self._step = max(count, 1)
        self._order: list[int] = []
        if source.mode is DataMode.PER_USER_RANDOM:
            # the same deal in every process: a user's row must not depend on who serves it
            self._order = list(range(len(source.rows)))
            random.Random(f"{seed}/data/{source.name}").shuffle(self._order)

    @property
    def per_user(self) -> bool:
        return self.mode.per_user

    def row(self, user_index: int) -> tuple[object, ...]:
        """The row for one action of user ``user_index`` (per-user modes always give a user the
        same row; shared modes move on at every call)."""
        mode = self.mode
        if mode is DataMode.PER_USER:
            return self.rows[user_index]
        if mode is DataMode.PER_USER_RANDOM:
            return self.rows[self._order[user_index]]
        if mode is DataMode.SHARED_RANDOM:
            return self.rows[self._rng.randrange(len(self.rows))]
        index = self._next % len(self.rows)
        self._next += self._step
        return self.rows[index]
