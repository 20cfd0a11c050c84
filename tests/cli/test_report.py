"""``loadkit report`` and ``loadkit compare`` as a user runs them (a real subprocess)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from loadkit.errors import ConfigError
from loadkit.report.formats import parse_formats
from tests.report.conftest import build_fault_run
from tests.support import loadkit


@pytest.fixture
def fault_run(tmp_path: Path) -> Path:
    return build_fault_run(tmp_path / "20261128-193000-hand-built")


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return loadkit(*args, timeout=120, columns=100)


def test_report_writes_every_format(fault_run: Path) -> None:
    run = _cli("report", str(fault_run), "--max-busy", "5%")
    assert run.returncode == 0, run.stderr
    for name in ("report.html", "summary.md", "report.json", "junit.xml"):
        assert (fault_run / name).stat().st_size > 500, name
    assert "recovered in 18 s" in run.stdout, "the terminal report is printed too"
    assert json.loads((fault_run / "report.json").read_text())["faults"][0]["recovery_s"] == 18
    assert 'failures="2"' in (fault_run / "junit.xml").read_text()


def test_report_some_formats_elsewhere(fault_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    run = _cli("report", str(fault_run), "--format", "md,json", "--out", str(out))
    assert run.returncode == 0, run.stderr
    assert sorted(p.name for p in out.iterdir()) == ["report.json", "summary.md"]


def test_report_errors_are_one_red_line_and_exit_2(tmp_path: Path, fault_run: Path) -> None:
    run = _cli("report", str(tmp_path / "nope"))
    assert run.returncode == 2 and "not a run directory" in run.stderr
    run = _cli("report", str(fault_run), "--format", "htlm")
    assert run.returncode == 2 and "did you mean 'html'" in run.stderr.lower()
    assert "Traceback" not in run.stderr


def test_compare_flags_regressions(tmp_path: Path) -> None:
    a = build_fault_run(tmp_path / "a", back_after=5)
    b = build_fault_run(tmp_path / "b", back_after=25)
    run = _cli("compare", str(a), str(b))
    assert run.returncode == 0, run.stderr
    assert "regression" in run.stdout and "recovery 5 s → 25 s" in run.stdout
    failing = _cli("compare", str(a), str(b), "--fail-on-regression")
    assert failing.returncode == 1
    same = _cli("compare", str(a), str(a), "--fail-on-regression")
    assert same.returncode == 0 and "no regressions" in same.stdout


def test_parse_formats() -> None:
    assert parse_formats("all") == ["html", "md", "json", "junit", "terminal"]
    assert parse_formats("markdown, xml") == ["md", "junit"]
    with pytest.raises(ConfigError):
        parse_formats(",")


def test_package_exports_load_lazily() -> None:
    import loadkit.report as report

    for name in report.__all__:
        assert getattr(report, name) is not None
    code = "import sys, loadkit.rundir.timeline; print('numpy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False", "the live display must not pay for numpy"


def test_report_and_compare_print_json_and_compare_one_slice(tmp_path: Path) -> None:
    from tests.report.conftest import build_breakdown_run

    a = build_breakdown_run(tmp_path / "a")
    report = _cli("report", str(a), "--json", "--format", "html")
    assert report.returncode == 0, report.stderr
    doc = json.loads(report.stdout)
    assert doc["schema"] == "loadkit.report/v1" and (a / "report.html").is_file()
    whole = _cli("compare", str(a), str(a), "--json")
    sliced = _cli("compare", str(a), str(a), "--json", "--instance", "wallet-1")
    assert whole.returncode == sliced.returncode == 0, sliced.stderr
    rows = {r["name"]: r for r in json.loads(whole.stdout)["rows"]}
    only = json.loads(sliced.stdout)
    assert only["scope"] == {"instance": "wallet-1"}
    by_name = {r["name"]: r for r in only["rows"]}
    assert rows["all actions busy"]["a"] == "3.35%" and by_name["all actions busy"]["a"] == "6.70%"
    table = _cli("compare", str(a), str(a), "--journey", "pay", "--network", "weak-4g")
    assert "only journey pay, network weak-4g" in table.stdout
    missing = _cli("compare", str(a), str(tmp_path / "nope"))
    assert missing.returncode == 2 and "RUN_B" in missing.stderr
