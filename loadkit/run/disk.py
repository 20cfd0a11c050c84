"""The disk guard: a run never starts without room for what it will record, and a disk that fills
while it goes stops the run cleanly instead of cutting its files short.

Before anything starts, :func:`check_free_space` compares the free space of the output volume
with the profile's estimate (:meth:`~loadkit.profile.model.Profile.disk_bytes`) plus the floor,
and refuses the run (:class:`~loadkit.errors.EnvironmentProblem`, exit 3) when it does not fit.
While the run goes, :class:`DiskGuard` checks the free space at every ``tick``; below
:data:`FLOOR_BYTES` it aborts the run (status ``aborted``, reason ``disk full: …``, exit 4): the
load stops, faults are reverted, and ``run.json``, the integrity check and the reports are
written into the room the floor kept. The guard also keeps a small reserve file in the run
directory (:data:`RESERVE_NAME`) and deletes it as the load stops, so even a disk that something
else filled to the last byte has room for ``run.json`` and the reports::

    check_free_space(profile, Path("reports"))          # before the run: exit 3 if too little
    DiskGuard().attach(runner.events)                   # during it (the orchestrator does both)
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from loadkit.errors import EnvironmentProblem
from loadkit.profile.model import Profile
from loadkit.run.events import RunListener

if TYPE_CHECKING:
    from loadkit.run.orchestrator import Runner

log = logging.getLogger("loadkit.run")

#: below this much free space on the run directory's volume the run stops
FLOOR_BYTES = 32 * 2**20
#: kept in the run directory while the load runs, deleted when it stops: room for the ending
RESERVE_BYTES = 4 * 2**20
RESERVE_NAME = ".disk-reserve"
#: what a reference stack the run starts in its own directory needs: PostgreSQL's data directory
#: and WAL (a rough bound, checked against runs of the reference wallet), and per action
STACK_BASE_BYTES = 128 * 2**20
STACK_BYTES_PER_ACTION = 2_000


def volume_of(path: Path) -> Path:
    """``path``, or its nearest existing parent (the output directory may not exist yet)."""
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def free_bytes(path: Path) -> int:
    """Free space for this user on the volume holding ``path`` (or its nearest parent)."""
    return shutil.disk_usage(volume_of(path)).free


def mb(n: float) -> str:
    return f"{n / 2**20:,.0f} MB" if n >= 2**20 else f"{n / 2**10:,.0f} kB"


def check_free_space(
    profile: Profile, out: Path, *, floor: int = FLOOR_BYTES, extra: int = 0
) -> int:
    """Raise :class:`EnvironmentProblem` (exit 3, nothing started) when the volume of ``out``
    has less free space than the profile's estimate plus ``floor`` (plus ``extra``: what a
    stack the run starts needs); returns the estimate."""
    need = profile.disk_bytes() + extra
    free = free_bytes(out)
    if free < need + floor:
        raise EnvironmentProblem(
            f"not enough disk space for this run: {mb(free)} free on the volume of {out}, "
            f"the run needs about {mb(need)} (profile '{profile.name}': "
            f"{profile.planned_actions():,.0f} actions over {profile.duration_s:g}s) "
            f"plus a floor of {mb(floor)}; free some space or use --out on another volume"
        )
    return need


def check_run(run: Runner) -> int:
    """:func:`check_free_space` for one run: its profile, its output directory, and the stack it
    starts in its run directory when it starts one."""
    options = run.options
    extra = 0
    if (
        run.target_urls is None
        and not run.services
        and options.stack_dir is None
        and run._starts_a_stack()
    ):
        extra = int(STACK_BASE_BYTES + run.profile.planned_actions() * STACK_BYTES_PER_ACTION)
    return check_free_space(run.profile, options.out, extra=extra)


def is_disk_full(exc: BaseException) -> bool:
    """An ``OSError`` saying the disk (or the user's quota) is full."""
    return isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)


class DiskGuard(RunListener):
    """Stops the run when its volume's free space drops below ``floor`` (checked every tick)."""

    def __init__(self, floor: int = FLOOR_BYTES, reserve: int = RESERVE_BYTES) -> None:
        self.floor = floor
        self.reserve = reserve
        #: the lowest free space seen during the run (bytes), None before the first tick
        self.lowest: int | None = None
        self._reserve_path: Path | None = None

    def on_starting(self, run: Runner) -> None:
        path = run.run_dir / RESERVE_NAME
        try:
            with path.open("wb") as fh:
                # written, not truncated: a sparse file would keep no room at all
                chunk = b"\0" * 2**20
                for _ in range(self.reserve // len(chunk)):
                    fh.write(chunk)
            self._reserve_path = path
        except OSError as exc:
            path.unlink(missing_ok=True)
            log.warning("disk guard: no reserve file in %s (%s)", run.run_dir, exc)

    def on_tick(self, run: Runner, t: float) -> None:
        try:
            free = free_bytes(run.run_dir)
        except OSError:
            return
        self.lowest = free if self.lowest is None else min(self.lowest, free)
        if free < self.floor and run.abort_reason is None:
            self.release()
            run.abort(
                f"disk full: {mb(free)} free on the run directory's volume at {t:.0f}s, below "
                f"the floor of {mb(self.floor)}"
            )

    def on_stopping(self, run: Runner, reason: str | None) -> None:
        self.release()

    def on_finished(self, run: Runner, result: object) -> None:
        self.release()

    def release(self) -> None:
        """Delete the reserve file: its room goes to ``run.json``, the integrity check and the
        reports."""
        if self._reserve_path is not None:
            with contextlib.suppress(OSError):
                os.unlink(self._reserve_path)
            self._reserve_path = None
