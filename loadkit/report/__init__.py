"""Busy-rate reports of a run directory (docs/run-directory.md): one metrics implementation and
its renderers. Files a report writes into the run directory: ``report.json`` (schema
``loadkit.report/v1``, ``loadkit/report/schema/report-v1.schema.json``), ``summary.md``,
``junit.xml`` and ``report.html``; the terminal report prints::

    from loadkit.report import compute_metrics, render_terminal, write_reports
    m = compute_metrics(Path("reports/20261128-193000-double11"))
    m.verdict, m.total.action.busy_rate, m.fault("db-down").recovery_s
    write_reports(run_dir, ["html", "md", "json", "junit", "terminal"])

Modules: ``metrics`` (compute_metrics; definitions of windows, recovery and the limit),
``model`` (the dataclasses), ``aggregate`` (one pass over the timeline), ``hdr`` (fast histogram
decoding), ``rundata`` (run.json, clock, journal, profile, scenario, integrity), ``verdict``,
``jsonreport``, ``markdown``, ``terminal``, ``junit``, ``html`` + ``charts``, ``compare``,
``cli`` (``loadkit report`` and ``loadkit compare``), ``timeline`` (the incremental reader the
live display and the chaos probes use). Attributes load lazily: importing the package (as the
run orchestrator does for ``timeline``) pulls in neither numpy nor matplotlib.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from loadkit.cli.report import write_reports
    from loadkit.report.compare import compare_metrics
    from loadkit.report.html import render_html
    from loadkit.report.jsonreport import render_json
    from loadkit.report.junit import render_junit
    from loadkit.report.markdown import render_markdown
    from loadkit.report.metrics import compute_metrics
    from loadkit.report.model import FaultMetrics, PhaseMetrics, RunMetrics
    from loadkit.report.terminal import render_terminal

_WHERE = {
    "compute_metrics": "loadkit.report.metrics",
    "RunMetrics": "loadkit.report.model",
    "PhaseMetrics": "loadkit.report.model",
    "FaultMetrics": "loadkit.report.model",
    "render_html": "loadkit.report.html",
    "render_json": "loadkit.report.jsonreport",
    "render_junit": "loadkit.report.junit",
    "render_markdown": "loadkit.report.markdown",
    "render_terminal": "loadkit.report.terminal",
    "compare_metrics": "loadkit.report.compare",
    "write_reports": "loadkit.cli.report",
}

__all__ = [
    "FaultMetrics",
    "PhaseMetrics",
    "RunMetrics",
    "compare_metrics",
    "compute_metrics",
    "render_html",
    "render_json",
    "render_junit",
    "render_markdown",
    "render_terminal",
    "write_reports",
]


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'loadkit.report' has no attribute {name!r}")
