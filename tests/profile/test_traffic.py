"""Traffic files → profiles (loadkit.profile.traffic): reading, every kind of malformed file, the
generated profile, the real CLI, and a run that reproduces the file's shape."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest

from loadkit.errors import ConfigError
from loadkit.profile.model import load_profile
from loadkit.profile.traffic import read_traffic, traffic_profile, write_traffic_profile
from loadkit.spec.errors import SpecError
from loadkit.stack.reference import ReferenceStack
from tests.support import loadkit

ROOT = Path(__file__).parents[2]
SAMPLE = ROOT / "profiles" / "traffic" / "double11-evening.csv"


def _csv(tmp_path: Path, text: str, name: str = "t.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _minutes(counts: list[int], start: str = "2025-11-11T23:58") -> str:
    from datetime import datetime, timedelta

    t0 = datetime.fromisoformat(start)
    rows = [f"{(t0 + timedelta(minutes=i)).isoformat()},{c}" for i, c in enumerate(counts)]
    return "timestamp,count\n" + "\n".join(rows) + "\n"


def test_reads_per_minute_iso_with_zone_and_comments(tmp_path: Path) -> None:
    path = _csv(
        tmp_path,
        "# a comment\ntimestamp,count\n2025-11-11T23:59:00+08:00,600\n\n"
        "2025-11-12T00:00:00+08:00,6000\n2025-11-12T00:01:00+08:00,3000\n",
    )
    traffic = read_traffic(path)
    assert traffic.interval_s == 60 and traffic.granularity == "per-minute"
    assert traffic.counts == (600, 6000, 3000)
    assert traffic.by_journey is None
    assert traffic.local(traffic.start).strftime("%H:%M") == "23:59"  # the file's own clock


def test_reads_per_second_epoch_and_bom(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    path.write_bytes(b"\xef\xbb\xbftimestamp,count\n1700000000,5\n1700000001,7\n1700000002,0\n")
    traffic = read_traffic(path)
    assert traffic.interval_s == 1 and traffic.counts == (5, 7, 0)


def test_reads_by_journey_rows(tmp_path: Path) -> None:
    path = _csv(
        tmp_path,
        "timestamp,journey,count\n"
        "2025-11-11T23:59,checkout,400\n2025-11-11T23:59,balance,200\n"
        "2025-11-12T00:00,checkout,5000\n2025-11-12T00:00,balance,1000\n",
    )
    traffic = read_traffic(path, journeys=["checkout", "balance"])
    assert traffic.counts == (600, 6000)
    assert traffic.by_journey == (
        {"checkout": 400, "balance": 200},
        {"checkout": 5000, "balance": 1000},
    )
    text = traffic_profile(traffic)
    assert "mix: {checkout: 5000, balance: 1000}" in text


# every malformed kind: (file text, line, what the message must say)
MALFORMED = [
    ("", 1, "the file is empty"),
    ("time,value\n2025-11-11T20:00,1\n2025-11-11T20:01,2\n", 1, "expected a header line"),
    ("2025-11-11T20:00,1\n2025-11-11T20:01,2\n", 1, "missing header"),
    ("timestamp,count\n2025-11-11T20:00,1\nyesterday,2\n", 3, "expected an ISO-8601 time"),
    ("timestamp,count\n2025-11-11T20:00,1\n2025-11-11T20:01,many\n", 3, "got 'many'"),
    ("timestamp,count\n2025-11-11T20:00,1\n2025-11-11T20:01,-4\n", 3, "cannot be negative"),
    ("timestamp,count\n2025-11-11T20:00,1\n2025-11-11T20:01,2.5\n", 3, "a whole number"),
    ("timestamp,count\n2025-11-11T20:00,1\n2025-11-11T20:01,2,3\n", 3, "expected 2 fields"),
    (
        "timestamp,count\n2025-11-11T20:01,1\n2025-11-11T20:00,2\n2025-11-11T20:02,2\n",
        3,
        "before the previous row's time (line 2)",
    ),
    (
        "timestamp,count\n2025-11-11T20:00,1\n2025-11-11T20:00,2\n2025-11-11T20:01,2\n",
        3,
        "duplicate timestamp",
    ),
    (
        "timestamp,count\n2025-11-11T20:00,1\n2025-11-11T20:01,1\n2025-11-11T20:04,2\n",
        4,
        "gap: '2025-11-11T20:04' is 3m after the previous row (line 3): 2 minute row(s) missing",
    ),
    (
        "timestamp,count\n2025-11-11T20:00,1\n2025-11-11T20:01,1\n2025-11-11T20:01:30,2\n"
        "2025-11-11T20:02:30,1\n",
        4,
        "irregular spacing",
    ),
    (
        "timestamp,count\n2025-11-11T20:00:00,1\n2025-11-11T20:01:00,1\n2025-11-11T20:02:00,1\n"
        "2025-11-11T20:02:01,2\n",
        5,
        "mixed granularity",
    ),
    ("timestamp,count\n2025-11-11T20:00,1\n", 2, "at least two are needed"),
    (
        "timestamp,journey,count\n2025-11-11T20:00,checkout,1\n2025-11-11T20:00,refund,1\n"
        "2025-11-11T20:01,checkout,1\n",
        3,
        "unknown journey 'refund'",
    ),
    (
        "timestamp,count\n2025-11-11T20:00,1\n2025-11-11T20:05,1\n2025-11-11T20:10,1\n",
        3,
        "expected per-minute (60s) or per-second (1s) rows",
    ),
    ("timestamp,count\n2025-11-11T20:00,1\n2025-11-11T20:01,\n", 3, "got nothing"),
    (
        "timestamp,journey,count\n2025-11-11T20:00,checkout,1\n2025-11-11T20:00,checkout,2\n"
        "2025-11-11T20:01,checkout,1\n",
        3,
        "duplicate row for journey 'checkout' at '2025-11-11T20:00' (also line 2)",
    ),
]


@pytest.mark.parametrize(("text", "line", "message"), MALFORMED)
def test_malformed_files_name_the_line(tmp_path: Path, text: str, line: int, message: str) -> None:
    path = _csv(tmp_path, text)
    with pytest.raises(SpecError) as info:
        read_traffic(path, journeys=["checkout", "balance"])
    problems = info.value.problems
    assert any(p.line == line and message in p.message for p in problems), str(info.value)
    assert str(info.value).startswith(f"{path}:{line}:")


def test_encoding_problems(tmp_path: Path) -> None:
    gbk = tmp_path / "gbk.csv"
    gbk.write_bytes("timestamp,count\n2025-11-11T20:00,1\n# 余额\n".encode("gbk"))
    with pytest.raises(SpecError, match=r"gbk.csv:3:3: not UTF-8 text \(byte 0x"):
        read_traffic(gbk)
    utf16 = tmp_path / "u16.csv"
    utf16.write_bytes("timestamp,count\n".encode("utf-16"))
    with pytest.raises(SpecError, match="UTF-16 text; save it as UTF-8"):
        read_traffic(utf16)


def test_too_many_rows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import loadkit.profile.traffic as traffic

    monkeypatch.setattr(traffic, "MAX_ROWS", 3)
    path = _csv(tmp_path, _minutes([1, 2, 3, 4, 5]))
    with pytest.raises(SpecError, match=r"t.csv:5:1: more than 3 rows"):
        read_traffic(path)


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    path = _csv(tmp_path, "timestamp,count\n2025-11-11T20:00,x\n2025-11-11T20:01,-1\nnope,3\n")
    with pytest.raises(SpecError) as info:
        read_traffic(path)
    assert [p.line for p in info.value.problems] == [2, 3, 4]


def test_profile_follows_the_shape(tmp_path: Path) -> None:
    path = _csv(tmp_path, _minutes([600, 6000, 3000, 1200]))
    out = tmp_path / "p.yaml"
    summary = write_traffic_profile(path, out, peak_multiplier=1.5, time_scale=0.05)
    assert "4 stages" in summary
    text = out.read_text()
    assert text.startswith("# Generated by `loadkit profile from-traffic`")
    assert "from t.csv" in text and "× 1.5" in text
    profile = load_profile(out)
    assert profile.time_scale == 0.05
    # one stage per minute, at count / 60 × multiplier per run second; 3 s of run time each
    assert [round(s.target, 3) for s in profile.stages] == [15.0, 150.0, 75.0, 30.0]
    assert [s.duration_s * profile.time_scale for s in profile.stages] == [3.0] * 4
    assert [s.name for s in profile.stages] == ["000-2358", "001-2359", "002-0000", "003-0001"]
    assert {j.name for j in profile.journeys} == {"checkout", "balance", "p2p_transfer", "topup"}


def test_merge_joins_similar_minutes(tmp_path: Path) -> None:
    path = _csv(tmp_path, _minutes([1000, 1010, 990, 5000, 5050, 100]))
    traffic = read_traffic(path)
    text = traffic_profile(traffic, merge=0.05)
    out = tmp_path / "m.yaml"
    out.write_text(text)
    profile = load_profile(out)
    assert [s.duration_s for s in profile.stages] == [180.0, 120.0, 60.0]
    assert profile.arrivals_between(0, profile.duration_s) == pytest.approx(13150)


def test_too_many_stages(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import loadkit.profile.traffic as module

    monkeypatch.setattr(module, "MAX_STAGES", 3)
    traffic = read_traffic(_csv(tmp_path, _minutes([10, 20, 30, 40, 40])))
    with pytest.raises(ConfigError, match=r"4 stages; a profile holds at most 3\. Join"):
        traffic_profile(traffic, merge=0.05)


def test_time_scale_too_small_and_bad_options(tmp_path: Path) -> None:
    traffic = read_traffic(_csv(tmp_path, _minutes([1, 2])))
    with pytest.raises(ConfigError, match=r"use --time-scale 0.01667 or more"):
        traffic_profile(traffic, time_scale=0.01)
    with pytest.raises(ConfigError, match="--peak-multiplier"):
        traffic_profile(traffic, peak_multiplier=0)


def test_journeys_from_a_profile(tmp_path: Path) -> None:
    source = tmp_path / "src.yaml"
    source.write_text(
        "name: src\nstages: [{name: a, duration: 1s, rate: 1}]\nusers: {accounts: 50}\n"
        "journeys:\n  - {wallet: balance, weight: 3}\n  - {wallet: history, name: hist}\n"
        "client: {timeout: 2s}\n"
    )
    path = _csv(
        tmp_path,
        "timestamp,journey,count\n1700000000,balance,3\n1700000000,hist,1\n1700000060,hist,2\n",
    )
    out = tmp_path / "p.yaml"
    write_traffic_profile(path, out, journeys_from=source, time_scale=1 / 30)
    profile = load_profile(out)
    assert profile.users.accounts == 50 and profile.client.timeout_s == 2.0
    assert [dict(s.mix) for s in profile.stages] == [{"balance": 3, "hist": 1}, {"hist": 2}]
    bad = _csv(tmp_path, "timestamp,journey,count\n1700000000,checkout,3\n1700000060,hist,1\n")
    with pytest.raises(SpecError, match=r"unknown journey 'checkout' \(journeys: balance, hist\)"):
        write_traffic_profile(bad, out, journeys_from=source)


def test_shipped_sample_makes_a_valid_profile(tmp_path: Path) -> None:
    traffic = read_traffic(SAMPLE)
    assert traffic.interval_s == 60 and len(traffic.counts) == 300  # 20:00 → 00:59
    peak = traffic.counts.index(max(traffic.counts))
    assert traffic.local(traffic.start + peak * 60).strftime("%H:%M") in ("00:00", "00:01", "00:02")
    assert max(traffic.counts) > 8 * traffic.counts[200]  # the midnight spike
    out = tmp_path / "d11.yaml"
    summary = write_traffic_profile(SAMPLE, out, peak_multiplier=1.3, time_scale=0.05)
    assert "300 stages" in summary and "runs 15m" in summary


_loadkit = functools.partial(loadkit, columns=200)


def test_cli_from_traffic(tmp_path: Path) -> None:
    out = tmp_path / "d11-2026.yaml"
    run = _loadkit(
        "profile",
        "from-traffic",
        str(SAMPLE),
        "--peak-multiplier",
        "1.3",
        "--time-scale",
        "0.05",
        "--merge",
        "3%",
        "-o",
        str(out),
        cwd=tmp_path,
    )
    assert run.returncode == 0, run.stderr
    assert f"wrote {out}: profile 'double11-evening'" in run.stdout
    assert _loadkit("validate", str(out), cwd=tmp_path).returncode == 0
    # a file that was not generated is not overwritten
    mine = tmp_path / "mine.yaml"
    mine.write_text("name: mine\n")
    run = _loadkit("profile", "from-traffic", str(SAMPLE), "-o", str(mine), cwd=tmp_path)
    assert run.returncode == 2 and "not generated from traffic" in run.stderr
    bad = _csv(tmp_path, "timestamp,count\n2025-11-11T20:00,1\n2025-11-11T20:00,2\n")
    run = _loadkit("profile", "from-traffic", str(bad), cwd=tmp_path)
    assert run.returncode == 2
    assert f"{bad}:3:1: timestamp: duplicate timestamp '2025-11-11T20:00' (also line 2)" in (
        run.stderr.replace("\n", "")
    )


def test_a_generated_profile_reproduces_the_traffic_shape(
    stack: ReferenceStack, tmp_path: Path
) -> None:
    """Each input minute runs for 2 s; the achieved rate of each of those 2-second windows is
    within ±5% of the file's count per minute ÷ 60 × the multiplier."""
    from loadkit.report.metrics import compute_metrics
    from loadkit.run.orchestrator import Runner, RunOptions

    counts = [3000, 6000, 12000, 18000, 9000, 4800, 3000]  # per minute: 50 … 300/s
    multiplier = 1.2
    path = _csv(tmp_path, _minutes(counts))
    source = tmp_path / "balance.yaml"
    source.write_text(
        "name: src\nstages: [{name: a, duration: 1s, rate: 1}]\n"
        "users: {accounts: 200, max_in_flight: 400}\njourneys:\n  - {wallet: balance}\n"
        "client: {timeout: 3s}\n"
    )
    out = tmp_path / "shape.yaml"
    write_traffic_profile(
        path, out, journeys_from=source, peak_multiplier=multiplier, time_scale=1 / 30
    )
    result = Runner(
        RunOptions(profile=out, stack_dir=stack.stack_dir, out=tmp_path / "reports"), None
    ).run()
    assert result.status == "completed", result.record.reason
    m = compute_metrics(result.run_dir)
    answered = {p.t: p.answered for p in m.series}
    for i, count in enumerate(counts):
        expected = count / 60 * multiplier
        achieved = (answered.get(2 * i, 0) + answered.get(2 * i + 1, 0)) / 2
        assert achieved == pytest.approx(expected, rel=0.05), (i, achieved, expected)
    assert m.total.action.busy_rate is not None and m.total.action.busy_rate < 0.01
