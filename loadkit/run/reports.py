"""Reports at the end of a run, as a run listener: at ``finished`` (however the run ended —
completed, invalid, aborted or interrupted — once load has started), the gate when an SLO is
given (``gate.json``), then every report format from the same metrics::

    reports = ReportListener(ALL_FORMATS, slo=load_slo("slo/smoke.yaml"), console=Console())
    reports.attach(runner.events)
    runner.run()
    reports.gate.passed if reports.gate else None
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from loadkit.gate import GateResult, Slo, gate_run
from loadkit.report.formats import FILE_FORMATS, write_reports
from loadkit.run.events import RunListener

if TYPE_CHECKING:
    from pathlib import Path

    from rich.console import Console

    from loadkit.run.orchestrator import Runner


class ReportListener(RunListener):
    def __init__(
        self,
        formats: Sequence[str] = FILE_FORMATS,
        *,
        slo: Slo | None = None,
        console: Console | None = None,
    ) -> None:
        self.formats = list(formats)
        self.slo = slo
        self.console = console
        #: the gate's verdict (None without an SLO, or when no load started)
        self.gate: GateResult | None = None
        #: the files written, by format
        self.written: dict[str, Path] = {}

    def on_finished(self, run: Runner, result: Any) -> None:
        if run.rundir is None or not run.rundir.timeline.exists():
            return  # no load was sent: nothing to report on
        if self.slo is not None:
            self.gate = gate_run(run.run_dir, self.slo, formats=self.formats, term=self.console)
            self.written = dict(self.gate.written)
        else:
            self.written = write_reports(run.run_dir, self.formats, term=self.console)
