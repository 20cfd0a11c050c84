"""junit.xml parses with junitparser: a case per phase and fault, failures where due."""

from __future__ import annotations

from pathlib import Path

from junitparser import Error, Failure, JUnitXml

from loadkit.report.junit import render_junit
from loadkit.report.metrics import compute_metrics
from loadkit.report.model import RunMetrics
from tests.report.conftest import build_fault_run
from tests.report.rundirs import RunDirBuilder


def _cases(xml_text: str, tmp_path: Path) -> dict[str, list[object]]:
    path = tmp_path / "junit.xml"
    path.write_text(xml_text)
    xml = JUnitXml.fromfile(str(path))
    return {case.name: list(case.result) for suite in xml for case in suite}


def test_a_case_per_phase_and_fault_informational_by_default(
    fault_metrics: RunMetrics, tmp_path: Path
) -> None:
    cases = _cases(render_junit(fault_metrics), tmp_path)
    assert list(cases) == ["run", "phase before", "phase during", "phase after", "fault db-down"]
    assert all(not results for results in cases.values()), "recovered, completed, no threshold"


def test_phases_over_the_threshold_and_unrecovered_faults_fail(tmp_path: Path) -> None:
    m = compute_metrics(build_fault_run(tmp_path / "run", back_after=60))
    cases = _cases(render_junit(m, max_busy=0.05), tmp_path)
    assert cases["phase before"] == []
    (failure,) = cases["phase during"]
    assert isinstance(failure, Failure) and "100.00% > 5.00%" in (failure.message or "")
    (failure,) = cases["fault db-down"]
    assert isinstance(failure, Failure) and "not recovered" in (failure.message or "")
    path = tmp_path / "junit.xml"
    suite = next(iter(JUnitXml.fromfile(str(path))))
    assert suite.tests == 5 and suite.failures == 3  # during, after, db-down


def test_invalid_run_fails_and_injection_error_is_an_error(tmp_path: Path) -> None:
    rd = RunDirBuilder(tmp_path / "run", status="invalid")
    rd.line(0, "p", ok=90, unsent=10)
    rd.fault("f01", "broken", 0.2, 0.5, error="no such proxy")
    cases = _cases(render_junit(compute_metrics(rd.write())), tmp_path)
    (failure,) = cases["run"]
    assert isinstance(failure, Failure) and "unsent" in (failure.message or "")
    (error,) = cases["fault broken"]
    assert isinstance(error, Error)
