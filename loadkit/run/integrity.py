"""The money integrity check as a run listener: acknowledged payments against the ledger,
after the load stopped and the faults were reverted, before the run's own stack goes down
(``finishing``). Not after Ctrl-C: an interrupted run is not judged. The result goes to
``integrity.json`` and to ``run.integrity``::

    IntegrityListener().attach(runner.events)
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from loadkit.integrity import check_run, source_for
from loadkit.integrity.core import failed as integrity_failed
from loadkit.run.events import RunListener
from loadkit.rundir import RunStatus

if TYPE_CHECKING:
    from loadkit.run.orchestrator import Runner


class IntegrityListener(RunListener):
    def on_finishing(self, run: Runner) -> None:
        if run.record.status == RunStatus.INTERRUPTED:
            return
        check = run.profile.integrity
        url = check.http.url if check is not None and check.http is not None else None
        try:
            source = source_for(run.profile, run.stack, run.allowlist, run.verify_for(url))
            if source is not None:
                unsafe = run.stack.unsafe if run.stack is not None else None
                run.integrity = check_run(run.run_dir, source, unsafe_mode=unsafe)
        except Exception as exc:  # a check that breaks must not hide how the run ended
            check = run.profile.integrity
            kind = "reference" if check is None else "sql" if check.sql else "http"
            run.integrity = integrity_failed(kind, f"{type(exc).__name__}: {exc}")
            with contextlib.suppress(OSError):
                run.integrity.write(run.run_dir)
