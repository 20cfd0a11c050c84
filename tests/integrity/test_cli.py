"""The unsafe modes on the command line: `loadkit stack up --unsafe`, `stack status` showing it,
and `loadkit run --wallet-unsafe` refusing what it cannot do before anything starts."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import pytest

from tests.support import loadkit

ROOT = Path(__file__).parents[2]
PROFILE = ROOT / "tests" / "integrity" / "data" / "double11-short.yaml"


_loadkit = functools.partial(loadkit, columns=120)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--wallet-unsafe", "lose-everything"], "--unsafe: expected one of ack-before-commit"),
        (["--wallet-unsafe", "ack-before-commit", "--stack-dir", "x"], "only for a stack the run"),
    ],
)
def test_run_refuses_a_bad_unsafe_request(tmp_path: Path, args: list[str], message: str) -> None:
    run = _loadkit("run", str(PROFILE), *args, cwd=tmp_path)
    assert run.returncode == 2, run.stderr
    assert message in run.stderr
    assert not (tmp_path / "reports").exists()  # nothing started


def test_stack_up_unsafe_is_shown_everywhere(tmp_path: Path) -> None:
    stack_dir = tmp_path / "stack"
    common = ["--dir", str(stack_dir)]
    up = _loadkit(
        "stack", "up", *common, "--unsafe", "ignore-idempotency", "--instances", "1",
        "--users", "2", "--merchants", "1", cwd=tmp_path,
    )  # fmt: skip
    try:
        assert up.returncode == 0, up.stderr
        assert "UNSAFE WALLET" in up.stdout and "ignore-idempotency" in up.stdout
        status = _loadkit("stack", "status", *common, "--json", cwd=tmp_path)
        assert json.loads(status.stdout)["unsafe"] == "ignore-idempotency"
        manifest = json.loads((stack_dir / "manifest.json").read_text())
        assert "--unsafe" in manifest["wallets"][0]["process"]["argv"]
        log = (stack_dir / "logs" / "wallet-1.log").read_text()
        assert "UNSAFE WALLET" in log and "APPLIED AGAIN" in log
    finally:
        down = _loadkit("stack", "down", *common, cwd=tmp_path)
        assert down.returncode == 0, down.stderr
