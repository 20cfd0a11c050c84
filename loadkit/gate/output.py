"""What the gate writes and prints: ``gate.json`` (schema ``loadkit.gate/v1``, the verdict for
CI), then the run's report files rendered again so that they carry it, and the objectives
table::

    result = gate_run(run_dir, load_slo("slo/smoke.yaml"))
    render_table(result, console)
    result.written  # {"gate": …/gate.json, "html": …/report.html, "md": …, "json": …, "junit": …}

The gate writes only ``gate.json``; every report format draws its gate section from it
(:mod:`loadkit.report.gateview`): the ``loadkit.gate.<slo>`` suite in ``junit.xml``, the table on
top of ``summary.md``, the "Release gate" section of ``report.html``, the ``gate`` key of
``report.json`` and the table at the end of the terminal report. Gating again replaces it;
``loadkit report`` later keeps showing it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from loadkit.gate.evaluate import GateResult, evaluate
from loadkit.gate.slo import Slo
from loadkit.report.formats import FILE_FORMATS
from loadkit.report.gateview import gate_view
from loadkit.rundir import GATE, RunDir

if TYPE_CHECKING:
    from rich.console import Console


def gate_run(
    run_dir: str | Path | RunDir,
    slo: Slo,
    *,
    baseline_dir: str | Path | RunDir | None = None,
    max_regression: float | None = None,
    write: bool = True,
    formats: Iterable[str] = FILE_FORMATS,
    term: Console | None = None,
) -> GateResult:
    """Compute the run's metrics (and the baseline's) and evaluate ``slo``. Unless
    ``write=False``: write ``gate.json`` into ``run_dir``, then render the report ``formats``
    (default: every file format; add ``"terminal"`` to print the report, gate included, to
    ``term``) from the same metrics."""
    from loadkit.report.formats import write_reports
    from loadkit.report.metrics import compute_metrics

    rd = RunDir(run_dir) if not isinstance(run_dir, RunDir) else run_dir
    metrics = compute_metrics(rd.path)
    baseline = compute_metrics(Path(baseline_dir)) if baseline_dir is not None else None
    result = evaluate(
        metrics,
        slo,
        baseline=baseline,
        max_regression=max_regression,
        run_dir=rd.path,
        baseline_dir=Path(baseline_dir) if baseline_dir is not None else None,
    )
    result.baseline_dir = Path(baseline_dir) if baseline_dir is not None else None
    if write:
        data = result.to_dict()
        written = {"gate": rd.write_json(GATE, data)}
        gated = dataclasses.replace(metrics, gate=data)
        written.update(write_reports(rd, formats, metrics=gated, term=term))
        result.written = written
    return result


def render_table(result: GateResult, console: Console) -> None:
    """Every objective with measured value, limit and verdict; fits 80 columns (the report's
    terminal gate table, drawn from what ``gate.json`` holds)."""
    from loadkit.report.terminal import render_gate

    view = gate_view(result.to_dict())
    assert view is not None  # to_dict always has its objectives
    render_gate(view, console)


def failure_lines(result: GateResult) -> list[str]:
    """One line per failed objective (and the invalid run): what the pytest plugin shows."""
    view = gate_view(result.to_dict())
    assert view is not None
    return view.failure_lines
