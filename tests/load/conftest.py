"""Running real Locust processes the way ``loadkit run`` does, and a plain HTTP service.

:func:`run_locust` writes a profile and a ``run-config.json``, starts ``python -m locust -f
loadkit/load/locustfile.py`` (standalone, or a master and workers) with the command lines of
:func:`loadkit.load.runconfig.locust_argv`, optionally acts while the run goes (``during`` gets
the run clock's ``t0``), waits for every process to exit on its own and reads what they wrote.
"""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loadkit.load.runconfig import RunConfig, Target, locust_argv
from loadkit.rundir import RunDir
from loadkit.rundir.acks import read_records
from loadkit.rundir.timeline import Timeline
from loadkit.stack.ports import free_port

ROOT = Path(__file__).parents[2]


@dataclass
class LocustRun:
    """What one run left: its directory, timeline, Locust's totals, logs and exit codes."""

    run_dir: Path
    timeline: Timeline
    locust: dict[str, dict[str, int]]
    logs: dict[str, str]
    codes: dict[str, int]
    t0: float
    shares: dict[int, dict[str, Any]] = field(default_factory=dict)

    def acks(self, view: str | None = None) -> list[dict[str, Any]]:
        """The records of every acknowledgement log of the run (``acks.bin``, ``acks.d/``):
        the final views (``view="sent"``: the movements that never got one)."""
        records = [r for p in RunDir(self.run_dir).ack_logs() for r in read_records(p)]
        sent = [r for r in records if r["view"] == "sent"]
        final = [r for r in records if r["view"] != "sent"]
        return sent if view == "sent" else final


def locust_csv(path: Path) -> dict[str, dict[str, int]]:
    """Request and failure counts per ``METHOD name`` row of ``locust_stats.csv``."""
    rows = {}
    with path.open() as handle:
        for row in csv.DictReader(handle):
            key = f"{row['Type']} {row['Name']}".strip()
            rows[key] = {
                "requests": int(row["Request Count"]),
                "failures": int(row["Failure Count"]),
            }
    return rows


_DONE = re.compile(r"loadkit: share (\d+) done: (\{.*\})")


def run_locust(
    tmp_path: Path,
    profile: str,
    target: Target,
    *,
    workers: int = 0,
    drain_s: float = 3.0,
    during: Callable[[float], None] | None = None,
    timeout: float = 120.0,
    tags: tuple[str, ...] = (),
) -> LocustRun:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    profile_path = tmp_path / "profile.yaml"
    profile_path.write_text(textwrap.dedent(profile).lstrip("\n"))
    config = RunConfig(
        run_id="test",
        run_dir=str(run_dir),
        profile_path=str(profile_path),
        target=target,
        workers=workers,
        drain_s=drain_s,
        tags=tags,
    )
    config_path = config.write()
    port = free_port()
    commands = {
        "master" if workers else "locust": locust_argv(
            config_path,
            role="master" if workers else "standalone",
            workers=workers,
            master_port=port,
        )
    }
    for i in range(workers):
        commands[f"worker-{i + 1}"] = locust_argv(config_path, role="worker", master_port=port)
    procs = {}
    for name, argv in commands.items():
        with (run_dir / f"{name}.log").open("w") as log:
            procs[name] = subprocess.Popen(
                [sys.executable, "-m", "locust", *argv],
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
    deadline = time.monotonic() + timeout
    try:
        t0 = _wait_for_clock(run_dir, procs, deadline)
        if during is not None:
            during(t0)
        for proc in procs.values():
            proc.wait(timeout=max(deadline - time.monotonic(), 1.0))
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    logs = {name: (run_dir / f"{name}.log").read_text() for name in procs}
    shares = {
        int(m[1]): json.loads(m[2].replace("'", '"'))
        for text in logs.values()
        for m in _DONE.finditer(text)
    }
    return LocustRun(
        run_dir=run_dir,
        timeline=Timeline.read(run_dir / "timeline.jsonl"),
        locust=locust_csv(run_dir / "locust_stats.csv"),
        logs=logs,
        codes={name: proc.returncode for name, proc in procs.items()},
        t0=t0,
        shares=shares,
    )


def _wait_for_clock(
    run_dir: Path, procs: dict[str, subprocess.Popen[bytes]], deadline: float
) -> float:
    clock = run_dir / "clock.json"
    while time.monotonic() < deadline:
        if clock.exists():
            return float(json.loads(clock.read_text())["t0"])
        dead = [name for name, p in procs.items() if p.poll() is not None]
        if dead:
            logs = {n: (run_dir / f"{n}.log").read_text()[-3000:] for n in dead}
            raise AssertionError(f"Locust exited before the run started: {logs}")
        time.sleep(0.05)
    raise AssertionError("no clock.json: the run never started")


def sleep_until(wall: float) -> None:
    time.sleep(max(0.0, wall - time.time()))
