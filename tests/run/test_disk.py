"""The disk guard (loadkit.run.disk) on a real, small tmpfs: a run refuses to start when the
volume lacks room for what the profile will record, and a disk that fills mid-run stops the run
cleanly (faults reverted, run.json says why, reports written, no traceback in any log)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from loadkit.errors import ExitCode, SafetyAbort
from loadkit.profile.model import DISK_SAFETY, load_profile
from loadkit.run import Runner, RunOptions
from loadkit.run.disk import RESERVE_NAME, check_free_space, free_bytes
from loadkit.run.reports import ReportListener
from loadkit.rundir import RunDir
from loadkit.rundir.timeline import Timeline
from loadkit.stack.reference import ReferenceStack
from tests.support import loadkit

PROFILE = """
name: disk
stages:
  - {name: steady, duration: 30s, rate: 30/s}
journeys:
  - {wallet: balance, weight: 2}
  - {wallet: p2p_transfer, weight: 1}
client: {timeout: 3s}
"""
HTTP_PROFILE = """
name: disk-http
stages:
  - {name: steady, duration: 10m, rate: 100/s}
journeys:
  - name: get
    http:
      - path: /
"""


@contextlib.contextmanager
def tmpfs(path: Path, size: str) -> Iterator[Path]:
    """A real tmpfs of ``size`` mounted at ``path`` (root only), always unmounted."""
    path.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], check=True)
    try:
        yield path
    finally:
        if subprocess.run(["umount", str(path)], check=False).returncode != 0:
            subprocess.run(["umount", "-l", str(path)], check=False)


def test_the_estimate_grows_with_the_arrivals(tmp_path: Path) -> None:
    short = tmp_path / "short.yaml"
    short.write_text(PROFILE)
    long = tmp_path / "long.yaml"
    long.write_text(PROFILE.replace("30s, rate: 30/s", "300s, rate: 300/s"))
    small, big = load_profile(short), load_profile(long)
    assert small.planned_actions() == pytest.approx(900)
    assert big.planned_actions() == pytest.approx(90_000)
    assert 0 < small.disk_bytes() < big.disk_bytes()
    # 90,000 actions of JSON acknowledgements and 300 s of timeline, doubled
    assert 50 * 2**20 < big.disk_bytes() < 200 * 2**20
    assert small.disk_bytes() == pytest.approx((900 * 400 + 30 * 16_000) * DISK_SAFETY, rel=0.01)


def test_a_run_refuses_to_start_on_a_full_volume(tmp_path: Path) -> None:
    profile = tmp_path / "p.yaml"
    profile.write_text(HTTP_PROFILE)
    with tmpfs(tmp_path / "vol", "64m") as vol:
        out = vol / "reports"
        # nothing listens on port 9: if the run started anything, it would fail differently
        run = loadkit(
            "run",
            str(profile),
            "--target",
            "http://127.0.0.1:9",
            "--out",
            str(out),
            cwd=tmp_path,
        )
        assert run.returncode == ExitCode.ENVIRONMENT, run.stderr + run.stdout
        assert "not enough disk space" in run.stderr
        assert "--out" in run.stderr, "it says what to do"
        assert "Traceback" not in run.stderr
        assert list(vol.iterdir()) == [], "nothing started: not even a run directory"
        with pytest.raises(Exception, match="not enough disk space"):
            check_free_space(load_profile(profile), out)


@pytest.mark.slow
@pytest.mark.parametrize("leave_mb", [8, 0], ids=["below-the-floor", "to-the-last-byte"])
def test_a_disk_that_fills_mid_run_stops_it_cleanly(
    stack: ReferenceStack, tmp_path: Path, leave_mb: int
) -> None:
    profile = tmp_path / "p.yaml"
    profile.write_text(PROFILE)
    with tmpfs(tmp_path / "vol", "96m") as vol:
        out = vol / "reports"
        runner = Runner(RunOptions(profile=profile, stack_dir=stack.stack_dir, out=out))
        reports = ReportListener()  # every file format, as `loadkit run` writes them
        reports.attach(runner.events)
        filled: list[float] = []

        def fill(run: Runner, t: float) -> None:
            if filled or t < 5:
                return
            filled.append(t)
            assert (run.run_dir / RESERVE_NAME).exists(), "the guard keeps room for the end"
            chunk = b"\xff" * 2**20
            # unbuffered: every write reaches the volume (or fails with ENOSPC) at once
            with (vol / "filler").open("wb", buffering=0) as fh, contextlib.suppress(OSError):
                while free_bytes(vol) - len(chunk) >= leave_mb * 2**20:
                    fh.write(chunk)
                while leave_mb == 0:  # to the last byte: until ENOSPC
                    fh.write(b"\xff" * 4096)

        runner.events.tick.add_listener(fill)
        started = time.monotonic()
        with pytest.raises(SafetyAbort, match="disk full") as aborted:
            runner.run()
        assert aborted.value.exit_code == ExitCode.ABORTED
        assert filled, "the disk was filled while the load ran"
        assert time.monotonic() - started < 30 + 20, "the load stopped early"

        rd = RunDir(runner.run_dir)
        record = rd.read_record()
        assert record is not None
        assert record["status"] == "aborted"
        assert record["reason"].startswith("disk full:"), record["reason"]
        assert not (rd.path / RESERVE_NAME).exists()
        # what was recorded before the disk filled is readable, and reported on
        timeline = Timeline.read(rd.timeline)
        assert timeline.totals("action").answered > 0
        for name in ("report.html", "report.json", "summary.md", "junit.xml"):
            assert (rd.path / name).stat().st_size > 0, name
        assert "aborted" in (rd.path / "summary.md").read_text()
        for log in (rd.path / "logs").iterdir():
            assert "Traceback" not in log.read_text(errors="replace"), log.name
        assert not any(p.alive() for p in runner.procs), "Locust stopped"
        os.unlink(vol / "filler")
