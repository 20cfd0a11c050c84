"""What a chaos run reports: its status, each fault as it went, and the end result::

result = controller.stop()
if result.status is ChaosStatus.ABORTED: print(result.reason)
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from loadkit.chaos.probes import ProbeResult
from loadkit.chaos.scenario import PlannedFault


class ChaosStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"  # every fault ran and was reverted; steady state back
    DEVIATED = "deviated"  # completed, but the steady state did not come back in time
    ABORTED = "aborted"  # an abort condition fired (exit 4)
    HALTED = "halted"  # stopped from outside: Ctrl-C, SIGTERM, the halt key, the run ending


@dataclass
class FaultRun:
    """One planned fault as it goes: when it was injected and reverted, and how it went."""

    planned: PlannedFault
    done: threading.Event = field(default_factory=threading.Event)
    injected_t: float | None = None
    reverted_t: float | None = None
    error: str | None = None


@dataclass
class ChaosResult:
    """How a scenario ended (``reason`` says why it did not complete)."""

    status: ChaosStatus
    reason: str | None
    run_dir: Path
    injected: int
    reverted: int
    errors: list[str]
    before: list[ProbeResult]
    after: list[ProbeResult]
    unreverted: list[str]
