"""Reading timeline.jsonl: additive deltas, windows, percentiles, a cut-off last line."""

from __future__ import annotations

import json
from pathlib import Path

from loadkit.rundir.timeline import Timeline, new_histogram


def _hist(*values_us: int) -> str:
    h = new_histogram()
    for v in values_us:
        h.record_value(v)
    encoded: bytes = h.encode()
    return encoded.decode()


def _line(t: int, phase: str, level: str = "action", **kw: object) -> str:
    return json.dumps(
        {"t": t, "phase": phase, "journey": "p2p_transfer", "endpoint": "*", "level": level, **kw}
    )


def test_deltas_add_up_per_key_and_window(tmp_path: Path) -> None:
    path = tmp_path / "timeline.jsonl"
    path.write_text(
        "\n".join(
            [
                json.dumps({"schema": "loadkit.timeline/v1", "latency_unit": "us"}),
                _line(0, "warm", n={"ok": 900, "rejected": 27}, lat=_hist(1000, 2000)),
                _line(0, "warm", n={"ok": 0, "busy": 73}, busy={"throttled": 73}),
                _line(1, "peak", n={"ok": 10, "unsent": 5}),
                _line(1, "peak", level="request", n={"busy": 4}, busy={"timeout": 4}),
            ]
        )
        + "\n"
    )
    tl = Timeline.read(path)
    warm = tl.select("action", phase="warm")
    assert warm.n == {"ok": 900, "rejected": 27, "busy": 73}
    assert warm.answered == 1000 and abs(warm.busy_rate - 0.073) < 1e-12
    assert warm.busy == {"throttled": 73}
    assert tl.totals("action").count("unsent") == 5
    assert tl.select("action", t_from=1, t_to=2).n == {"ok": 10, "unsent": 5}
    assert tl.totals("request").busy == {"timeout": 4}
    assert tl.phases() == ["warm", "peak"]
    p50 = warm.percentile_ms(50)
    assert p50 is not None and 0.99 <= p50 <= 1.01


def test_tail_reads_only_what_was_appended_and_waits_for_a_whole_line(tmp_path: Path) -> None:
    path = tmp_path / "timeline.jsonl"
    tl = Timeline()
    assert not tl.tail(path), "no file yet"
    full = _line(3, "a", n={"ok": 1})
    with path.open("w") as fh:
        fh.write(full + "\n" + full[:10])  # the writer is in the middle of a line
    assert tl.tail(path)
    assert tl.totals().count("ok") == 1
    with path.open("a") as fh:
        fh.write(full[10:] + "\n")
    tl.tail(path)
    assert tl.totals().count("ok") == 2
    assert not tl.tail(path)


def test_a_line_cut_by_a_killed_writer_is_skipped(tmp_path: Path) -> None:
    path = tmp_path / "timeline.jsonl"
    path.write_text(
        _line(0, "a", n={"ok": 2}) + "\n" + '{"t": 1, "ph\n' + _line(2, "a", n={"ok": 3}) + "\n"
    )
    assert Timeline.read(path).totals().count("ok") == 5
