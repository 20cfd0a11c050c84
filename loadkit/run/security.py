"""The wallet's own security throttling during a run, as a run listener: the reference wallet's
anomaly counters (wrong OTPs and locked challenges, failed logins and locked accounts, users over
the policy's rate, refusals by reason) read from every instance's admin API when the load starts
and once it is over, and their difference written to ``security.json`` (schema
``loadkit.security/v1``, docs/run-directory.md). Reports show it next to the busy rate: security
throttling at peak is one of the causes of "wallet busy"::

    SecurityListener().attach(runner.events)
    # after the run: RunDir(run_dir).read_json("security.json")["events"]["otp_failed"]

Counters live in each instance's memory since it started: an instance restarted during the run
(a crash fault) counts from its restart (``notes`` say so), one that does not answer at the end
is missing. Only the reference stack has this admin API; other targets get no file.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from loadkit.errors import LoadkitError
from loadkit.run.events import RunListener
from loadkit.rundir import SECURITY
from loadkit.stack.admin import WalletAdmin

if TYPE_CHECKING:
    from loadkit.run.orchestrator import Runner

SCHEMA = "loadkit.security/v1"

Snapshot = dict[str, dict[str, dict[str, int]]]  # instance → "events"/"refusals" → name → count


def _read(run: Runner) -> tuple[Snapshot, list[str]]:
    """Every instance's counters now, by instance name; notes for those that did not answer."""
    assert run.stack is not None
    found: Snapshot = {}
    notes: list[str] = []
    token = run.stack.manifest.admin_token
    for handle in run.stack.wallets:  # one by one: an instance that is down costs only itself
        one = WalletAdmin([handle.info.url], token, verify=handle.info.verify)
        try:
            (data,) = one.anomalies()
        except LoadkitError as exc:
            notes.append(f"{handle.name}: anomalies not read ({exc.message})")
            continue
        found[handle.name] = {
            "events": {str(k): int(v) for k, v in (data.get("events") or {}).items()},
            "refusals": {str(k): int(v) for k, v in (data.get("refusals") or {}).items()},
        }
    return found, notes


def difference(start: Snapshot, end: Snapshot) -> tuple[dict[str, dict[str, int]], list[str]]:
    """What each counter grew by during the run, summed over the instances; an instance whose
    counter went down was restarted: its count since the restart is taken (and noted)."""
    total: dict[str, dict[str, int]] = {"events": {}, "refusals": {}}
    notes: list[str] = []
    for name, now in end.items():
        before = start.get(name)
        if before is None:
            notes.append(f"{name}: no reading at the start; counted since it started")
        restarted = False
        for group in ("events", "refusals"):
            for counter, value in now[group].items():
                old = (before or {}).get(group, {}).get(counter, 0)
                if value < old:
                    restarted, old = True, 0
                total[group][counter] = total[group].get(counter, 0) + value - old
        if restarted:
            notes.append(f"{name}: restarted during the run; counted since its restart")
    for name in start:
        if name not in end:
            notes.append(f"{name}: no reading at the end; its counts are missing")
    return total, notes


class SecurityListener(RunListener):
    """Reads the counters at ``started`` and ``finishing``; writes ``security.json``."""

    def __init__(self) -> None:
        self.start: Snapshot = {}
        self.start_notes: list[str] = []
        self.started_at: float | None = None

    def on_started(self, run: Runner, t0: float) -> None:
        if run.stack is None:
            return
        self.started_at = time.time()
        self.start, self.start_notes = _read(run)

    def on_finishing(self, run: Runner) -> None:
        if run.stack is None or self.started_at is None:
            return
        end, notes = _read(run)
        total, diff_notes = difference(self.start, end)
        data: dict[str, Any] = {
            "schema": SCHEMA,
            "source": "reference",
            "from": self.started_at,
            "to": time.time(),
            "events": dict(sorted(total["events"].items())),
            "refusals": dict(sorted(total["refusals"].items(), key=lambda kv: (-kv[1], kv[0]))),
            "instances": sorted(end),
            "notes": [*self.start_notes, *notes, *diff_notes],
        }
        if run.rundir is not None:
            run.rundir.write_json(SECURITY, data)
