"""The chart worker (a forked process drawing the HTML page's charts and rendering it) gives the
same page, byte for byte, as rendering it in process; a worker that dies leaves the page to the
caller, and no worker outlives its job."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from loadkit.errors import ConfigError
from loadkit.report import charts
from loadkit.report.chartjob import ChartJob
from loadkit.report.formats import ReportOptions, write_reports
from loadkit.report.html import render_html
from loadkit.report.metrics import compute_metrics

REPO = Path(__file__).resolve().parents[2]


def _job() -> ChartJob:
    if threading.active_count() > 1:
        pytest.skip("other threads run in this test process: the worker is not forked")
    job = ChartJob.start()
    assert job is not None
    return job


def _gone(pid: int) -> bool:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return True
    return False


@pytest.mark.parametrize("clock", ["run", "wall"])
def test_the_worker_renders_the_page_one_process_would(breakdown_run: Path, clock: str) -> None:
    m = compute_metrics(breakdown_run)
    wall_t0 = m.clock_t0 if clock == "wall" else None
    start = charts._next_id[0]
    job = _job()
    try:
        job.submit(m, wall_t0)
        page = job.result()
    finally:
        job.close()
    assert _gone(job.pid)
    charts._next_id[0] = start  # the numbers the worker's charts had (it forked from here)
    here = render_html(m, ReportOptions(clock=clock))
    assert page == here  # same series, labels, legends, ids: the same SVGs and tables
    assert here.count("<svg") >= 10 and here.count('class="chart-narrow"') >= 5


def test_loadkit_report_page_is_the_page_drawn_in_process(
    breakdown_run: Path, tmp_path: Path
) -> None:
    """``loadkit report`` (a fresh process: the worker's path) and an in-process report write
    the same report.html."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "loadkit", "report", str(breakdown_run), "--format", "html"]
    subprocess.run([*cmd, "--out", str(tmp_path / "cli")], check=True, env=env, timeout=120)
    charts._next_id[0] = 1  # as in a fresh process
    write_reports(breakdown_run, ["html"], out=tmp_path / "here", chart_worker=False)
    page = (tmp_path / "cli" / "report.html").read_text()
    assert page == (tmp_path / "here" / "report.html").read_text()
    assert page.count("<svg") >= 10


def test_a_dead_worker_leaves_the_page_to_the_caller(breakdown_run: Path) -> None:
    m = compute_metrics(breakdown_run)
    job = _job()
    os.kill(job.pid, signal.SIGKILL)
    job.submit(m, None)  # no reader: nothing raised
    assert job.result() is None
    assert _gone(job.pid)
    job.close()  # idempotent


def test_a_worker_not_asked_exits(tmp_path: Path) -> None:
    job = _job()
    job.close()
    assert _gone(job.pid)
    # a report that fails before its charts are asked for leaves no worker either
    before = set(_children())
    with pytest.raises(ConfigError, match=r"no clock\.json"):
        write_reports(tmp_path, ["html"], clock="wall")
    assert set(_children()) <= before


def _children() -> list[int]:
    """This process's child processes still running (or not reaped)."""
    path = Path(f"/proc/{os.getpid()}/task/{os.getpid()}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def test_an_interrupt_ends_the_worker_not_with_the_parents_handler(
    breakdown_run: Path, tmp_path: Path
) -> None:
    """A run's Ctrl-C handler (stop the run, revert faults) stays the parent's: the worker
    dies of the interrupt and the caller renders the page itself."""
    handled = tmp_path / "handled"
    old = signal.signal(signal.SIGINT, lambda *_: handled.write_text(str(os.getpid())))
    try:
        job = _job()
    finally:
        signal.signal(signal.SIGINT, old)
    time.sleep(0.3)  # the worker has reset its handlers (its first statements)
    os.kill(job.pid, signal.SIGINT)
    job.submit(compute_metrics(breakdown_run), None)
    assert job.result() is None
    assert not handled.exists()
    assert _gone(job.pid)
