"""Busy-rate reports of a run directory (docs/run-directory.md): one metrics implementation and
its renderers. The formats and the files they write are in one registry
(:mod:`loadkit.report.formats`): ``report.html``, ``summary.md``, ``report.json`` (schema
``loadkit.report/v1``, ``loadkit/report/schema/report-v1.schema.json``), ``junit.xml``, and the
terminal report, which prints::

    from loadkit.report import compute_metrics, write_reports
    m = compute_metrics(Path("reports/20261128-193000-double11"))
    m.verdict, m.total.action.busy_rate, m.fault("db-down").recovery_s
    write_reports(run_dir, ALL_FORMATS, term=Console())

Modules: ``formats`` (the registry, ``write_reports``, ``parse_formats``), ``metrics``
(compute_metrics; definitions of windows, recovery and the limit), ``model`` (the dataclasses),
``aggregate`` (one pass over the timeline), ``hdr`` (fast histogram decoding), ``rundata``
(run.json, clock, journal, profile, scenario, integrity, gate), ``gateview`` (gate.json as every
renderer shows it), ``verdict``, the renderers ``html`` + ``charts``, ``markdown``,
``jsonreport``, ``junit``, ``terminal``, and ``compare``. The report never imports the gate: a
gated run's reports draw the gate from ``gate.json``. Attributes load lazily: importing the
package pulls in neither numpy nor matplotlib.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from loadkit.report.compare import compare_metrics
    from loadkit.report.formats import ALL_FORMATS, FILE_FORMATS, parse_formats, write_reports
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
    "write_reports": "loadkit.report.formats",
    "parse_formats": "loadkit.report.formats",
    "ALL_FORMATS": "loadkit.report.formats",
    "FILE_FORMATS": "loadkit.report.formats",
}

__all__ = [
    "ALL_FORMATS",
    "FILE_FORMATS",
    "FaultMetrics",
    "PhaseMetrics",
    "RunMetrics",
    "compare_metrics",
    "compute_metrics",
    "parse_formats",
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
