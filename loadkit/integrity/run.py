"""The integrity check of one run directory: its acknowledgement logs (``acks.bin`` and the load
processes' spills in ``acks.d/``) against a ledger → ``integrity.json``.

``loadkit run`` calls :func:`check_run` after the chaos rollback and before its own stack goes
down; it can also be called on any run directory while the ledger is still there::

    result = check_run(run_dir, ReferenceLedger(stack))
    result.ok, result.lost, result.duplicated        # False, 12, 0
"""

from __future__ import annotations

import contextlib
import logging
import ssl
from pathlib import Path
from typing import TYPE_CHECKING

import orjson

from loadkit.errors import LoadkitError
from loadkit.integrity.columns import of_this_run_table, read_ack_table
from loadkit.integrity.core import IntegrityResult, compare, failed
from loadkit.integrity.sources import HttpLedger, LedgerSource, ReferenceLedger, SqlLedger
from loadkit.rundir import RunDir

if TYPE_CHECKING:
    from loadkit.profile.model import Profile
    from loadkit.safety import Allowlist
    from loadkit.stack.reference import ReferenceStack

log = logging.getLogger("loadkit.integrity")


def _run_started(run_dir: Path) -> float | None:
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        return float(orjson.loads(RunDir(run_dir).run_json.read_bytes())["started_at"])
    return None


def check_run(
    run_dir: Path,
    source: LedgerSource,
    *,
    since: float | None = None,
    unsafe_mode: str | None = None,
    write: bool = True,
) -> IntegrityResult:
    """Compare the run's acknowledgement log with ``source`` and write ``integrity.json``.

    ``since`` (Unix seconds; default: the run's start from ``run.json``) bounds what the ledger
    counts as this run's. A source that cannot be read gives a result with ``ok`` None and the
    reason in ``error`` (it never raises for that)."""
    start = since if since is not None else _run_started(run_dir)
    if start is None:
        result = failed(source.name, "run.json has no start time", unsafe_mode=unsafe_mode)
    else:
        try:
            view = source.fetch(start)
        except LoadkitError as exc:
            result = failed(source.name, exc.message, unsafe_mode=unsafe_mode)
        except Exception as exc:  # a user's source can fail in any way: say how, do not crash
            result = failed(source.name, f"{type(exc).__name__}: {exc}", unsafe_mode=unsafe_mode)
        else:
            acks = read_ack_table(*RunDir(run_dir).ack_logs())
            applied, others = of_this_run_table(acks, view.applied)
            if others:
                view.notes.append(
                    f"{others} applied movements of other runs left out (keys made by load "
                    "processes that were not this run's)"
                )
            result = compare(
                acks,
                applied,
                source=source.name,
                money_conserved=view.money_conserved,
                negative_balances=view.negative_balances,
                unsafe_mode=unsafe_mode,
                ledger=view.facts,
            )
            if view.notes:
                result.ledger = {**(result.ledger or {}), "notes": view.notes}
    if write:
        result.write(run_dir)
    if result.ok is False:
        log.warning("integrity violated in %s: %s", run_dir, "; ".join(result.problems()))
    return result


def source_for(
    profile: Profile,
    stack: ReferenceStack | None,
    allow: Allowlist | None = None,
    verify: ssl.SSLContext | bool = True,
) -> LedgerSource | None:
    """The ledger a run's check reads: the profile's declared check, else the reference
    stack's database, else none (a ``--target`` run without ``integrity:`` is not checked).
    A declared check's URL or DSN must be on loopback or in ``allow`` (ConfigError)."""
    check = profile.integrity
    if check is not None and check.sql is not None:
        return SqlLedger(check.sql, allow=allow)
    if check is not None and check.http is not None:
        return HttpLedger(check.http, allow=allow, verify=verify)
    if stack is not None:
        return ReferenceLedger(stack)
    return None


def read_integrity(run_dir: Path) -> dict[str, object] | None:
    """``integrity.json`` of a run directory (None when no check ran)."""
    try:
        data = orjson.loads(RunDir(run_dir).integrity.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None
