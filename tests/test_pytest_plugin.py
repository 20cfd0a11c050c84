"""The pytest plugin, used the way a wallet team would: the smoke profile with a fault against the
reference stack, gated on slo/smoke.yaml; a marked test whose SLO fails shows every missed
objective and the report's path."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree

import pytest

from loadkit.pytest_plugin import LoadkitResult, LoadkitRunner
from loadkit.stack.reference import ReferenceStack

pytest_plugins = ["pytester"]

ROOT = Path(__file__).parents[1]


@pytest.fixture(scope="session")
def loadkit_stack(stack: ReferenceStack) -> ReferenceStack:
    """The plugin's runs go to the session's reference stack instead of a second one."""
    return stack


def test_importing_the_plugin_costs_nothing() -> None:
    code = (
        "import sys, loadkit.pytest_plugin\n"
        "heavy = [m for m in sys.modules if m.split('.')[0] in ('gevent', 'locust', 'numpy', "
        "'matplotlib', 'asyncpg') or m.startswith(('loadkit.load', 'loadkit.gate', "
        "'loadkit.report', 'loadkit.stack', 'loadkit.chaos'))]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-W", "error", "-c", code], check=True)


def test_smoke_with_a_fault_meets_its_slo(loadkit_run: LoadkitRunner) -> None:
    result = loadkit_run(
        "profiles/smoke.yaml", scenario="chaos/smoke-fault.yaml", slo="slo/smoke.yaml"
    )
    result.assert_slo()
    assert isinstance(result, LoadkitResult) and result.status == "completed"
    assert result.report.is_file() and (result.run_dir / "gate.json").is_file()
    assert result.gate is not None
    recovery = [r for r in result.gate.results if r.objective.measure == "max_recovery"]
    assert [r.fault for r in recovery] == ["kill-wallet-1"] and recovery[0].passed
    fault = result.metrics.fault("kill-wallet-1")
    assert fault is not None and fault.recovered


TINY_PROFILE = """
name: tiny
stages:
  - {name: only, duration: 4s, rate: 10/s}
journeys:
  - {wallet: balance, weight: 1}
client: {timeout: 2s, retries: {attempts: 1}}
"""

STRICT_SLO = """
name: strict
objectives:
  - max_busy_rate: 50%
  - max_p95: 1ms
    name: answers within a millisecond
  - min_achieved_rate: 10000/s
"""

MARKED_TEST = """
import pytest

@pytest.mark.loadkit(profile="tiny.yaml", slo="strict.yaml")
def test_release(loadkit_result):
    assert loadkit_result.run_dir.is_dir()
"""


def test_a_marked_test_fails_with_the_missed_objectives_and_the_report(
    pytester: pytest.Pytester, stack: ReferenceStack
) -> None:
    pytester.makefile(".yaml", tiny=TINY_PROFILE, strict=STRICT_SLO)
    pytester.makepyfile(test_release=MARKED_TEST)
    out = pytester.path / "runs"
    result = pytester.runpytest_subprocess(
        f"--loadkit-stack-dir={stack.stack_dir}",
        f"--loadkit-out={out}",
        f"--junitxml={pytester.path / 'junit.xml'}",
        "-p",
        "no:cacheprovider",
        timeout=240,
    )
    result.assert_outcomes(failed=1)
    (run_dir,) = out.iterdir()
    report = run_dir / "report.html"
    assert report.is_file()
    text = result.stdout.str()
    assert f"loadkit: SLO 'strict' not met by run {run_dir.name} (completed)" in text
    assert "✗ answers within a millisecond: measured " in text
    assert "✗ achieved rate ≥ 10000/s: measured " in text
    assert "busy rate (action) ≤ 50%" not in text.split("not met by run")[1]  # it passed
    assert f"report: {report}" in text
    assert "loadkit runs" in text and f"FAILED test_release.py::test_release: {report}" in text
    junit = ElementTree.parse(pytester.path / "junit.xml")
    props = {p.get("name"): p.get("value") for p in junit.iter("property")}
    assert props["loadkit_report"] == str(report)


HAND_BUILT_CONFTEST = """
import pytest
from loadkit.gate import gate_run, load_slo
from loadkit.pytest_plugin import LoadkitResult
from tests.report.conftest import build_fault_run

@pytest.fixture
def loadkit_result(request, tmp_path):
    marker = request.node.get_closest_marker("loadkit")
    run = build_fault_run(tmp_path / "run")
    gate = gate_run(run, load_slo(marker.kwargs["slo"]))
    return LoadkitResult(run, "completed", None, gate)
"""

RECOVERY_SLO = """
objectives:
  - max_recovery: 10s
    name: back within 10 s
"""

MARKED_WITHOUT_FIXTURE = """
import pytest

@pytest.mark.loadkit(profile="unused.yaml", slo="recovery.yaml")
def test_marked_only():
    pass

@pytest.mark.loadkit(profile="unused.yaml", slo="recovery.yaml", assert_slo=False)
def test_marked_not_asserted(loadkit_result):
    assert not loadkit_result.passed
"""


def test_the_marker_runs_and_asserts_even_without_the_fixture(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a conftest stands in for the load run (a hand-built run that recovers in 18 s)
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    pytester.makeconftest(HAND_BUILT_CONFTEST)
    pytester.makefile(".yaml", recovery=RECOVERY_SLO)
    pytester.makepyfile(test_marked=MARKED_WITHOUT_FIXTURE)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", f"--rootdir={pytester.path}")
    result.assert_outcomes(passed=1, failed=1)
    text = result.stdout.str()
    assert (
        "✗ back within 10 s (db-down): measured 18s, limit 10s — from the end of fault db-down"
        in text
    )
    assert "test_marked.py::test_marked_only" in text.split("short test summary")[1]
