"""``--web`` / ``--metrics`` / ``--push-to`` on the command line: a bad or refused address is a
usage error (exit 2, one line) before anything starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import loadkit

ROOT = Path(__file__).parents[2]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--web", "198.18.0.1:8089"], "--web: 198.18.0.1 is not on loopback and not allowed"),
        (["--metrics", "99999"], "--metrics: expected [ADDR:]PORT"),
        (["--web", "0.0.0.0:8089", "--allow", "198.18.0.0/30"], "listens on every interface"),
        (["--push-to", "http://198.18.0.9:9091"], "--push-to: 198.18.0.9 is not on loopback"),
    ],
)
def test_refused_addresses_exit_2_before_anything_starts(
    args: list[str], message: str, tmp_path: Path
) -> None:
    run = loadkit("run", str(ROOT / "profiles" / "smoke.yaml"), "--out", str(tmp_path), *args)
    assert run.returncode == 2, run.stdout + run.stderr
    assert message in run.stderr and "Traceback" not in run.stderr
    assert list(tmp_path.iterdir()) == [], "no run directory"


def test_every_command_that_runs_takes_the_live_options() -> None:
    for command in (["run"], ["chaos", "run"], ["capacity"]):
        text = loadkit(*command, "--help", columns=200).stdout
        assert "--web [ADDR:]PORT" in text and "--metrics [ADDR:]PORT" in text, command
        assert "--push-to URL" in text, command
