"""The terminal report fits 80 and 120 columns and says what matters."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from loadkit.report.model import RunMetrics
from loadkit.report.terminal import render_terminal


@pytest.mark.parametrize("width", [80, 120])
def test_fits_the_terminal(fault_metrics: RunMetrics, width: int) -> None:
    out = io.StringIO()
    console = Console(file=out, width=width, force_terminal=True, color_system=None)
    render_terminal(fault_metrics, console)
    text = out.getvalue()
    assert max(len(line) for line in text.splitlines()) <= width
    assert "recovered in 18 s" in text and "db-down" in text
    assert "100.00%" in text and "unavailable" in text
    assert ("p95 svc" in text) == (width >= 100)
    assert "0:30–0:40" in text, "a window on the run clock, as in every report"
