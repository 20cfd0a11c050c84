"""integrity.json in every report: the verdict, the terminal summary, summary.md, report.html and
report.json (valid against its schema) — clean, violated and could-not-run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from rich.console import Console

from loadkit.integrity import Ack, Applied, View, compare
from loadkit.integrity.core import failed
from loadkit.report.html import render_html
from loadkit.report.jsonreport import SCHEMA_PATH, report_dict
from loadkit.report.markdown import render_markdown
from loadkit.report.metrics import compute_metrics
from loadkit.report.model import RunMetrics
from loadkit.report.terminal import render_terminal
from tests.report.rundirs import RunDirBuilder

VIOLATED = compare(
    [Ack("a", View.ACKNOWLEDGED), Ack("b", View.ACKNOWLEDGED), Ack("c", View.UNKNOWN)],
    [Applied("b", 3), Applied("c")],
    source="reference",
    money_conserved=True,
    negative_balances=0,
    unsafe_mode="ignore-idempotency",
).to_dict()
CLEAN = compare([Ack("a", View.ACKNOWLEDGED)], [Applied("a")], source="sql").to_dict()
BROKEN = failed("http", "http://127.0.0.1:9/applied: ConnectError").to_dict()


def _metrics(tmp_path: Path, integrity: dict[str, Any] | None) -> RunMetrics:
    rd = RunDirBuilder(tmp_path / "run", integrity=integrity)
    for t in range(5):
        rd.line(t, "p", ok=10)
    return compute_metrics(rd.write())


def _terminal(m: RunMetrics) -> str:
    console = Console(width=100, record=True, force_terminal=False)
    render_terminal(m, console)
    return console.export_text()


def test_a_violation_is_in_every_report(tmp_path: Path) -> None:
    m = _metrics(tmp_path, VIOLATED)
    assert m.verdict.endswith(
        "MONEY INTEGRITY VIOLATED: 1 lost, 1 duplicated (unsafe wallet: ignore-idempotency)"
    )
    text = _terminal(m)
    assert "Money integrity: VIOLATED (reference ledger)" in text
    assert "UNSAFE wallet mode" in text and "ignore-idempotency" in text
    md = render_markdown(m)
    assert "#### Money integrity: VIOLATED (reference ledger)" in md
    assert "| lost (acknowledged, not in the ledger) | **1** |" in md
    assert "| examples: duplicated | **b** |" in md
    html = render_html(m)
    assert 'id="integrity"' in html and "Money integrity: VIOLATED" in html
    assert '<p class="verdict bad">' in html


@pytest.mark.parametrize(
    ("integrity", "verdict", "title"),
    [
        (CLEAN, "money integrity clean: nothing lost or duplicated", "Money integrity: clean"),
        (BROKEN, "money integrity could not be checked", "Money integrity: could not run"),
    ],
)
def test_clean_and_could_not_run(
    tmp_path: Path, integrity: dict[str, Any], verdict: str, title: str
) -> None:
    m = _metrics(tmp_path, integrity)
    assert m.verdict.endswith(verdict)
    assert title in _terminal(m) and title in render_markdown(m) and title in render_html(m)


@pytest.mark.parametrize("integrity", [None, CLEAN, VIOLATED, BROKEN])
def test_report_json_is_valid_with_any_integrity(
    tmp_path: Path, integrity: dict[str, Any] | None
) -> None:
    doc = json.loads(json.dumps(report_dict(_metrics(tmp_path, integrity))))
    schema = json.loads(SCHEMA_PATH.read_text())
    jsonschema.validate(doc, schema, cls=jsonschema.Draft202012Validator)
    assert doc["integrity"] == integrity
    if integrity is None:
        assert "integrity" not in _terminal(_metrics(tmp_path / "again", None)).lower()
