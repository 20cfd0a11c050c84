"""Money integrity end to end, as a user runs it: ``loadkit run`` in a subprocess with a Double 11
night (tests/integrity/data/double11-short.yaml, 300/s at the peak) and the faults of the
db-crash and api-crash scenarios (data/crashes.yaml) on a stack of the run's own.

- the safe wallet, with two Locust workers: clean, and every worker's record reached its ack log
  (nothing the ledger applied is missing from it);
- ``--wallet-unsafe ack-before-commit``: acknowledged payments are lost, the run exits 1, the
  reports say so and the gate's ``integrity: clean`` fails;
- ``--wallet-unsafe ignore-idempotency``: retried payments are applied twice, likewise caught.

Each run takes about a minute.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from loadkit.gate import gate_run, load_slo
from loadkit.rundir import RunDir
from loadkit.rundir.acks import read_records

ROOT = Path(__file__).parents[2]
DATA = Path(__file__).with_name("data")

SLO = """
name: money
objectives:
  - integrity: clean
"""


def _run(tmp_path: Path, *extra: str) -> tuple[subprocess.CompletedProcess[str], Path]:
    out = tmp_path / "reports"
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "loadkit",
            "run",
            str(DATA / "double11-short.yaml"),
            "--chaos",
            str(DATA / "crashes.yaml"),
            "--out",
            str(out),
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env={
            **os.environ,
            "COLUMNS": "100",
            "PYTHONPATH": str(ROOT),
            # never attach to a stack someone left running: the run starts its own
            "LOADKIT_STACK_DIR": str(tmp_path / "no-stack"),
        },
    )
    (run_dir,) = [d for d in out.iterdir() if d.is_dir()]
    return run, run_dir


def _json(path: Path) -> Any:
    return json.loads(path.read_text())


def _faults_hit(run_dir: Path, noticed: tuple[str, ...]) -> None:
    """Every fault was injected while payments were in flight, and requests noticed those named
    in ``noticed`` (client retries may hide a short hang from users; an instance that answers
    before it writes does not notice the database at all)."""
    report = _json(run_dir / "report.json")
    faults = {f["name"]: f for f in report["faults"]}
    assert set(faults) == {"kill-wallet-1", "db-down", "hang-wallet-2", "backend-crash"}
    for f in faults.values():
        assert f["error"] is None, f
        assert f["request"]["counts"]["ok"] > 0, f
    for name in noticed:
        assert faults[name]["request"]["counts"]["busy"] > 0, faults[name]


def _gate(tmp_path: Path, run_dir: Path) -> bool:
    slo = tmp_path / "money.yaml"
    slo.write_text(SLO)
    return gate_run(run_dir, load_slo(slo)).passed


def _show(name: str, data: dict[str, Any]) -> None:
    keys = ("acks", "lost", "duplicated", "extra_applications", "unexpected")
    keys += ("refused_applied", "unknown_applied", "unknown_not_applied")
    print(f"\n{name}: " + json.dumps({k: data[k] for k in keys}))


@pytest.mark.slow
def test_safe_wallet_is_clean_under_crashes_with_two_workers(tmp_path: Path) -> None:
    run, run_dir = _run(tmp_path, "--workers", "2")
    assert run.returncode == 0, run.stderr[-3000:] + run.stdout[-3000:]
    assert _json(run_dir / "run.json")["status"] == "completed"
    _faults_hit(run_dir, ("kill-wallet-1", "db-down", "hang-wallet-2"))
    data = _json(run_dir / "integrity.json")
    _show("safe", data)
    assert data["ok"] is True and data["source"] == "reference" and data["unsafe_mode"] is None
    assert data["lost"] == data["duplicated"] == data["unexpected"] == 0
    assert data["refused_applied"] == 0 and data["negative_balances"] == 0
    assert data["money_conserved"] is True
    acks = data["acks"]
    assert acks["acknowledged"] > 1000 and acks["unknown"] > 0  # the faults made some unknown
    assert data["unknown_applied"] + data["unknown_not_applied"] == acks["unknown"]

    # both workers' records reached the file, and nothing the ledger applied is missing from
    # it (unexpected == 0): every worker's every movement was logged
    shares = set()
    for record in (r for p in RunDir(run_dir).ack_logs() for r in read_records(p)):
        match = re.fullmatch(r"lk-[0-9a-f]+-(\d+)-\d+", record["key"])
        assert match, record
        shares.add(match.group(1))
    assert shares == {"0", "1"}

    assert _json(run_dir / "report.json")["integrity"]["ok"] is True
    assert "money integrity clean" in run.stdout
    assert _gate(tmp_path, run_dir)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("mode", "counter"), [("ack-before-commit", "lost"), ("ignore-idempotency", "duplicated")]
)
def test_each_unsafe_mode_is_caught(tmp_path: Path, mode: str, counter: str) -> None:
    run, run_dir = _run(tmp_path, "--wallet-unsafe", mode)
    # the load ran as planned; the exit code says that money went wrong
    assert run.returncode == 1, run.stderr[-3000:] + run.stdout[-3000:]
    assert _json(run_dir / "run.json")["status"] == "completed"
    assert "money integrity VIOLATED" in run.stderr
    _faults_hit(run_dir, ("kill-wallet-1",))
    data = _json(run_dir / "integrity.json")
    _show(mode, data)
    assert data["ok"] is False and data["unsafe_mode"] == mode
    assert data[counter] > 0
    assert data["examples"][counter]
    assert data["unexpected"] == 0 and data["money_conserved"] is True

    report = _json(run_dir / "report.json")
    assert report["integrity"][counter] == data[counter]
    assert "MONEY INTEGRITY VIOLATED" in report["verdict"]
    assert f"{data[counter]:,} {counter}" in report["verdict"]
    assert mode in (run_dir / "summary.md").read_text()
    html = (run_dir / "report.html").read_text()
    assert "Money integrity: VIOLATED" in html and f"{data[counter]:,}" in html
    assert "Money integrity: VIOLATED" in run.stdout  # the terminal summary
    assert not _gate(tmp_path, run_dir)


MISAPPLY_PROFILE = """
name: misapply
stages:
  - {name: steady, duration: 6s, rate: 30/s}
users: {accounts: 60}
journeys:
  - {wallet: pay_merchant, weight: 2, amount: {min: 1, max: 20}}
  - {wallet: p2p_transfer, weight: 2, amount: {min: 1, max: 20}}
  - {wallet: topup, weight: 1, amount: {min: 1, max: 20}}
"""


def test_a_wallet_that_applies_another_amount_or_payee_is_caught(tmp_path: Path) -> None:
    """`--wallet-unsafe misapply` applies one movement in four otherwise than asked; the ledger
    stays balanced (the invariants see nothing), but each applied movement's amount, payer and
    payee are compared with what the client sent."""
    profile = tmp_path / "misapply.yaml"
    profile.write_text(MISAPPLY_PROFILE)
    out = tmp_path / "reports"
    argv = [sys.executable, "-m", "loadkit", "run", str(profile), "--out", str(out)]
    run = subprocess.run(
        [*argv, "--wallet-unsafe", "misapply"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env={**os.environ, "COLUMNS": "100", "PYTHONPATH": str(ROOT)},
    )
    assert run.returncode == 1, run.stderr[-3000:] + run.stdout[-3000:]
    assert "mismatched" in run.stderr
    (run_dir,) = [d for d in out.iterdir() if d.is_dir()]
    data = _json(run_dir / "integrity.json")
    _show("misapply", data)
    assert data["ok"] is False and data["unsafe_mode"] == "misapply"
    assert data["money_conserved"] is True, "double entry still balances: only details tell"
    assert data["lost"] == data["duplicated"] == data["unexpected"] == 0
    assert data["details_compared"] >= data["acks"]["acknowledged"] > 100
    # about a quarter of the movements; both kinds of wrong are seen
    assert data["details_compared"] / 8 < data["mismatched"] < data["details_compared"] / 2
    examples = " ".join(data["examples"]["mismatched"])
    assert "amount" in examples and "payee" in examples
    report = _json(run_dir / "report.json")
    assert report["integrity"]["mismatched"] == data["mismatched"]
    assert f"{data['mismatched']:,} mismatched" in report["verdict"]
    assert "mismatched" in (run_dir / "summary.md").read_text()
