"""The format registry: every format's file is the run directory's, ``write_reports`` renders
each, and a gated run's reports all carry the gate from ``gate.json`` (the report never imports
the gate)."""

from __future__ import annotations

import ast
import io
import json
from pathlib import Path

import pytest
from rich.console import Console

from loadkit.errors import ConfigError
from loadkit.report import formats
from loadkit.report.formats import (
    ALL_FORMATS,
    FILE_FORMATS,
    FORMATS,
    ReportFormat,
    ReportOptions,
    parse_formats,
    write_reports,
)
from loadkit.report.model import RunMetrics
from loadkit.rundir import GATE, RunDir
from tests.report.gate_json import GATE_JSON

REPORT = Path(formats.__file__).parent


def test_every_file_is_a_run_directory_file() -> None:
    assert ALL_FORMATS == ("html", "md", "json", "junit", "terminal")
    assert FILE_FORMATS == ("html", "md", "json", "junit")
    for fmt in FORMATS:
        assert fmt.file is None or fmt.file in RunDir.FILES, fmt


def test_parse_formats() -> None:
    assert parse_formats("all") == list(ALL_FORMATS)
    assert parse_formats(" markdown, XML ,html") == ["md", "junit", "html"]
    with pytest.raises(ConfigError, match="did you mean 'junit'"):
        parse_formats("jnuit")
    with pytest.raises(ConfigError, match="expected a list"):
        parse_formats(" , ")


def test_write_reports_renders_every_format(fault_run: Path) -> None:
    term = Console(width=100, file=io.StringIO())
    written = write_reports(fault_run, ALL_FORMATS, term=term)
    rd = RunDir(fault_run)
    assert written == {
        "html": rd.report_html,
        "md": rd.summary_md,
        "json": rd.report_json,
        "junit": rd.junit_xml,
    }
    assert all(p.stat().st_size > 500 for p in written.values())
    assert "recovered in 18 s" in term.file.getvalue()


def _shout(m: RunMetrics, options: ReportOptions) -> str:
    return f"{m.profile.upper()} max_busy={options.max_busy}\n"


def test_a_new_format_is_one_registry_line(
    fault_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shout = ReportFormat("shout", "shout.txt", f"{__name__}:_shout")
    monkeypatch.setattr(formats, "BY_NAME", {**formats.BY_NAME, "shout": shout})
    written = write_reports(fault_run, ["shout"], out=tmp_path / "out", max_busy=0.05)
    assert written["shout"].read_text() == "HAND-BUILT max_busy=0.05\n"


def test_a_gated_run_carries_the_gate_in_every_format(fault_run: Path) -> None:
    RunDir(fault_run).write_json(GATE, GATE_JSON)
    term = Console(width=100, file=io.StringIO())
    written = write_reports(fault_run, ALL_FORMATS, term=term)
    md = written["md"].read_text()
    assert md.startswith("<!-- loadkit:gate -->\n### ❌ gate FAILED: 1 of 2 objectives failed")
    assert "### loadkit: hand-built" in md
    junit = written["junit"].read_text()
    assert 'name="loadkit.gate.smoke"' in junit and 'name="loadkit.hand-built"' in junit
    assert json.loads(written["json"].read_text())["gate"]["passed"] is False
    assert "Release gate:\nFAILED (SLO smoke)" in written["html"].read_text()
    text = term.file.getvalue()
    assert "SLO smoke — run" in text and "✗ recovery" in text
    assert "gate FAILED: 1 of 2 objectives failed (SLO smoke)" in text
    # gated again, passed: every file follows gate.json
    RunDir(fault_run).write_json(GATE, {**GATE_JSON, "passed": True, "objectives": []})
    write_reports(fault_run)
    assert "✅ gate passed: 0 of 0 objectives met (SLO smoke)" in written["md"].read_text()


def test_the_report_never_imports_the_gate() -> None:
    for path in REPORT.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            assert not any(n.startswith("loadkit.gate") for n in names), path
