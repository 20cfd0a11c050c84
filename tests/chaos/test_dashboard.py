"""The game-day dashboard: what it shows of a running scenario, and keys read from a terminal."""

from __future__ import annotations

import io
import os
import pty
import textwrap
import time
from pathlib import Path

from rich.console import Console

from loadkit.chaos import Controller, load_scenario
from loadkit.chaos.dashboard import Dashboard, KeyReader
from loadkit.stack.reference import ReferenceStack


def test_shows_active_and_next_faults_busy_rate_and_conditions(
    stack: ReferenceStack, tmp_path: Path
) -> None:
    path = tmp_path / "scenario.yaml"
    path.write_text(
        textwrap.dedent(
            """
            name: board
            faults:
              - {name: peak-policy, type: wallet.policy, at: 0s, duration: 1m}
              - {name: later, type: wallet.maintenance, at: 50s, duration: 5s}
            abort:
              - {name: too-busy, when: busy-rate, above: 60%, window: 10s, for: 30s}
            """
        )
    )
    console = Console(record=True, width=200, file=io.StringIO())
    with Controller(
        load_scenario(path), ReferenceStack.attach(stack.stack_dir), tmp_path / "r"
    ) as c:
        c.start()
        deadline = time.monotonic() + 10
        while c.result().injected < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.6)  # a few ticks of the watch: busy rate and conditions evaluated
        board = Dashboard(c, console, keys=KeyReader(io.StringIO()))
        console.print(board.render())
        c.halt("done looking")
        assert c.wait(15)
    text = console.export_text()
    assert "chaos: board" in text and "RUNNING" in text
    assert "peak-policy" in text and "wallet.policy" in text and "(one action)" not in text
    assert "next: later (wallet.maintenance on wallets) at 50s" in text
    # the blast radius: what the next fault will touch, and what the active one is touching
    assert "touching: wallet instance wallet-1 (admin API)" in text
    (active,) = [line for line in text.splitlines() if "peak-policy" in line]
    assert "wallet instance wallet-1 (admin API)" in active, text
    assert "busy rate (probes, 10s)" in text
    assert "too-busy" in text and "ok (" in text
    assert "no fault has ended yet" in text and "Ctrl-C halts" in text


def test_keys_are_read_without_blocking_only_from_a_terminal() -> None:
    assert KeyReader(io.StringIO()).read() == ""  # no terminal, no key handling
    master, slave = pty.openpty()
    try:
        with os.fdopen(os.dup(slave), "r") as tty_in, KeyReader(tty_in) as keys:
            assert keys.enabled and keys.read() == ""
            os.write(master, b"h")
            time.sleep(0.05)
            assert keys.read() == "h"
    finally:
        os.close(master)
        os.close(slave)
