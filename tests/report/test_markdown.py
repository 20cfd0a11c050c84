"""summary.md: verdict, phase table, fault table with recovery, top causes."""

from __future__ import annotations

from loadkit.report.markdown import render_markdown
from loadkit.report.model import RunMetrics


def test_summary_has_verdict_and_tables(fault_metrics: RunMetrics) -> None:
    md = render_markdown(fault_metrics)
    assert f"**{fault_metrics.verdict}**" in md
    assert "| phase | window | offered | achieved | goodput | busy |" in md
    assert "| during | 0:30–0:40 | 100/s | 100/s | 0/s | 100.00% |" in md
    assert "| db-down | x.y | 0:30–0:40 | 100.00% | 28 s |" in md
    assert "recovered in 18 s" in md
    assert "#### Top busy causes" in md
    causes = md.split("#### Top busy causes")[1]
    assert causes.index("unavailable") < causes.index("timeout") < causes.index("throttled")
