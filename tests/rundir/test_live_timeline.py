"""LiveTimeline: the orchestrator's bounded follower answers as a full scan of the same lines."""

from __future__ import annotations

import gzip
import itertools
import json
from pathlib import Path

import pytest

from loadkit.rundir.live_timeline import LiveTimeline
from loadkit.rundir.timeline import Bucket, Timeline, new_histogram

DATA = Path(__file__).parent / "data"
#: a 20 s run of the reference wallet recorded by ``loadkit run`` (two phases, two instances),
#: and the 112 s double11-mini timeline (four phases, two instances, two network classes)
TIMELINES = ["wallet-run.timeline.jsonl.gz", "double11-mini.timeline.jsonl.gz"]


def _lines(name: str) -> list[str]:
    with gzip.open(DATA / name, "rt", encoding="utf-8") as fh:
        return fh.read().splitlines()


def _same(live: Bucket, full: Bucket, *, decoded: bool = False) -> None:
    assert (live.n, live.busy, live.detail) == (full.n, full.busy, full.detail)
    for service in (False, True):
        for p in (50.0, 95.0, 99.0, 99.9):
            assert live.percentile_ms(p, service=service) == full.percentile_ms(p, service=service)
    if not decoded:
        return
    for hist in ((live.lat, full.lat), (live.svc, full.svc)):
        a, b = hist
        assert (a is None) == (b is None)
        if a is not None and b is not None:
            assert a.get_total_count() == b.get_total_count()
            assert a.get_value_at_percentile(99) == b.get_value_at_percentile(99)


def _check(live: LiveTimeline, full: Timeline) -> None:
    assert live.phases() == full.phases()
    assert live.last_second() == full.last_second()
    for dim in ("journey", "endpoint", "instance", "network"):
        assert live.values(dim) == full.values(dim)
    slices: list[dict[str, str | None]] = [{}]
    slices += [{"phase": p} for p in full.phases()]
    slices += [{"instance": i} for i in full.values("instance")]
    slices += [{"network": n, "phase": p} for n in full.values("network") for p in full.phases()]
    slices += [{"journey": j, "endpoint": "*"} for j in full.values("journey")]
    for level, where in itertools.product(("action", "request"), slices):
        _same(live.select(level, **where), full.select(level, **where))  # type: ignore[arg-type]
    last = full.last_second()
    if last is None:
        return
    kept_from = live.folded_before or 0
    # windows inside what is kept, with the bounds the progress line and the probes use
    for t_from, t_to in ((last - 10, last - 3), (last - 2.5, last + 0.5), (kept_from, None)):
        if t_from < kept_from:
            continue
        _same(
            live.select("action", t_from=t_from, t_to=t_to),
            full.select("action", t_from=t_from, t_to=t_to),
        )


@pytest.mark.parametrize("name", TIMELINES)
def test_every_view_equals_a_full_scan_while_seconds_are_folded(name: str) -> None:
    lines = _lines(name)
    live, full = LiveTimeline(keep_s=5), Timeline()
    for start in range(0, len(lines), 37):  # a tick's worth of lines at a time
        chunk = lines[start : start + 37]
        live.feed(chunk)
        full.feed(chunk)
        if start % 185 == 0:
            _check(live, full)
    _check(live, full)
    for level in ("action", "request"):  # the decoded histograms too (.lat, .svc)
        _same(live.select(level), full.select(level), decoded=True)
    assert live.folded_before is not None and live.folded_before > 0
    # memory is bounded by what is kept: only the last keep_s seconds stay per second
    last = live.last_second()
    assert last is not None
    assert {k[0] for k in live.buckets} <= set(range(live.folded_before, last + 1))
    assert len(live.buckets) < len(full.buckets) / 3


def test_tail_of_a_file_equals_timeline_read(tmp_path: Path) -> None:
    path = tmp_path / "timeline.jsonl"
    lines = _lines(TIMELINES[1])
    live = LiveTimeline(keep_s=10)
    with path.open("w", encoding="utf-8") as fh:
        for start in range(0, len(lines), 100):
            fh.write("\n".join(lines[start : start + 100]) + "\n")
            fh.flush()
            live.tail(path)
    _check(live, Timeline.read(path))


def _line(t: int, ok: int, *values_us: int) -> str:
    hist = new_histogram()
    for v in values_us:
        hist.record_value(v)
    return json.dumps(
        {"t": t, "phase": "peak", "level": "action", "n": {"ok": ok}, "lat": hist.encode().decode()}
    )


def test_a_late_answer_for_a_folded_second_still_counts() -> None:
    live, full = LiveTimeline(keep_s=2), Timeline()
    lines = [_line(t, 10, 1000 * (t + 1)) for t in range(8)] + [_line(1, 5, 900_000)]
    for line in lines:
        live.feed([line])
        full.feed([line])
    assert live.folded_before == 6
    _same(live.select("action"), full.select("action"), decoded=True)
    _same(live.select("action", phase="peak"), full.select("action", phase="peak"))
    assert live.select("action").count("ok") == 85


def test_a_window_over_folded_seconds_is_refused() -> None:
    live = LiveTimeline(keep_s=2)
    live.feed([_line(t, 1, 1000) for t in range(10)])
    assert live.select("action", t_from=8, t_to=10).count("ok") == 2
    with pytest.raises(ValueError, match="folded"):
        live.select("action", t_from=3, t_to=10)
    with pytest.raises(ValueError, match="folded"):
        live.per_second()
