"""Stacks left behind by runs that died: found under the runs' directories and stopped.

A run that starts its own stack puts it in ``<run dir>/stack`` and stops it when it ends; its
watchdog stops it when the run is killed (:mod:`loadkit.stack.watchdog`). If both were killed
(or the machine went down), the stack's manifest is still there. A stack is *stale* when its
run is over — ``run.json`` says anything but ``running``, a killed run included — while its
manifest remains. ``loadkit stack down`` and ``loadkit doctor`` stop them::

    for found in stale_stacks(Path("reports")):
        print(found.stack_dir, found.run_status, found.alive)
    stop_stale_stacks(Path("reports"))       # [(Path('reports/…/stack'), ['wallet-1', …])]
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

from loadkit.errors import LoadkitError, StackNotRunning
from loadkit.rundir import STACK, RunDir, RunStatus
from loadkit.stack.manifest import FILENAME


@dataclass(frozen=True)
class StaleStack:
    """A run's stack whose run is over: ``run_status`` as ``run.json`` reads now (``killed``
    for a run whose process is gone), ``alive`` whether any of its processes still runs."""

    stack_dir: Path
    run_dir: Path
    run_status: str
    alive: bool


def stale_stacks(runs: Path) -> list[StaleStack]:
    """Every ``runs/*/stack`` with a manifest whose run is no longer running, oldest first."""
    from loadkit.stack.reference import ReferenceStack

    found: list[StaleStack] = []
    if not runs.is_dir():
        return found
    for manifest in sorted(runs.glob(f"*/{STACK}/{FILENAME}")):
        stack_dir = manifest.parent
        record = RunDir(stack_dir.parent).read_record()
        status = str(record.get("status")) if record else "unknown"
        if status == RunStatus.RUNNING:
            continue  # its run still goes (and will stop it)
        alive = False
        with contextlib.suppress(LoadkitError, OSError, ValueError, KeyError, TypeError):
            alive = ReferenceStack.attach(stack_dir).any_alive()
        found.append(StaleStack(stack_dir.absolute(), stack_dir.parent.absolute(), status, alive))
    return found


def stop_stale_stacks(runs: Path) -> list[tuple[StaleStack, list[str]]]:
    """Stop every stale stack under ``runs`` (:meth:`ReferenceStack.down`: its processes, its
    database), and whatever else of its dead run still writes into the run directory (Locust
    processes go on until their own time is up); each with what was still running."""
    from loadkit.stack.reference import ReferenceStack
    from loadkit.stack.watchdog import processes_writing_into, stop_processes

    stopped = []
    for stale in stale_stacks(runs):
        orphans = processes_writing_into(stale.run_dir)
        try:
            names = ReferenceStack.attach(stale.stack_dir).down()
        except StackNotRunning:
            names = []
        left = processes_writing_into(stale.run_dir)
        if left:
            stop_processes(left)
            names.append(f"{len(left)} more process(es) of the run")
        elif orphans and not names:
            names.append(f"{len(orphans)} process(es) of the run")
        stopped.append((stale, names))
    return stopped
