"""How fast is a report of a long run? Builds a synthetic run directory of 1 hour at 1,000
requests/s (5 phases, 6 journeys, action and request level, an HDR histogram per line, deltas
split as a 2-worker master writes them, two faults), then reports it in a fresh process and
prints the wall time and peak RSS of every format together (targets: ≤ 10 s, ≤ 500 MB)::

    .venv/bin/python bench/report_speed.py                 # 3600 s at 1000/s
    .venv/bin/python bench/report_speed.py --seconds 600 --timeline   # also time Timeline.read
    .venv/bin/python bench/report_speed.py --integrity 3600000   # also the integrity check

``--integrity N`` writes N money movements (wallet keys, one acknowledgement log as a load
process writes it: ``sent`` then the final view) and times, in a fresh process, reading them
and comparing them with a ledger that applied every acknowledged one (the ledger is built in
memory: the database read is not part of the figure).
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from hdrh.histogram import HdrHistogram

PHASES = ("warm-up", "ramp", "midnight-spike", "plateau", "cool-down")
JOURNEYS = {
    "login": ["POST /v1/login"],
    "balance": ["POST /v1/login", "GET /v1/balance"],
    "pay_merchant": ["POST /v1/login", "POST /v1/payments"],
    "p2p_transfer": ["POST /v1/login", "POST /v1/transfers"],
    "topup": ["POST /v1/login", "POST /v1/topup"],
    "history": ["POST /v1/login", "GET /v1/transactions"],
}
PROFILE = """name: bench-hour
stages:
{stages}
journeys:
  - {{name: pay, weight: 1, http: [{{name: pay, path: /pay}}]}}
"""


def _pool(rng: random.Random, size: int = 256) -> list[str]:
    """Encoded histograms of ~30–200 latencies each (log-normal around 20 ms, a slow tail)."""
    pool = []
    for _ in range(size):
        h = HdrHistogram(1, 600_000_000, 2)
        for _ in range(rng.randint(30, 200)):
            v = rng.lognormvariate(9.9, 0.8) if rng.random() > 0.02 else rng.uniform(1e6, 3e6)
            h.record_value(int(v))
        pool.append(h.encode().decode())
    return pool


def build(run_dir: Path, seconds: int, rate: int) -> int:
    """Write the synthetic run; returns the number of timeline lines."""
    rng = random.Random(7)
    pool = _pool(rng)
    run_dir.mkdir(parents=True, exist_ok=True)
    per_phase = seconds // len(PHASES)
    actions_per_s = rate / sum(len(e) for e in JOURNEYS.values()) * len(JOURNEYS)
    stages = "\n".join(
        f"  - {{name: {p}, duration: {per_phase}s, rate: {actions_per_s:.0f}}}" for p in PHASES
    )
    (run_dir / "profile.yaml").write_text(PROFILE.format(stages=stages))
    run = {"run_id": run_dir.name, "status": "completed", "profile": {"name": "bench-hour"}}
    (run_dir / "run.json").write_text(json.dumps(run))
    (run_dir / "clock.json").write_text(json.dumps({"t0": 0, "duration_s": seconds}))
    lines = 0
    with (run_dir / "timeline.jsonl").open("w") as fh:
        fh.write('{"schema":"loadkit.timeline/v1","latency_unit":"us"}\n')
        for t in range(seconds):
            phase = PHASES[min(t // per_phase, len(PHASES) - 1)]
            busy_share = 0.3 if 1800 <= t < 1830 else 0.01
            for journey, endpoints in JOURNEYS.items():
                keys = [("*", "action")] + [(e, "request") for e in endpoints]
                for endpoint, level in keys:
                    n = round(actions_per_s / len(JOURNEYS))
                    for part in (0.6, 0.4):  # two workers' deltas land in different flushes
                        k = int(n * part)
                        busy = int(k * busy_share)
                        line = {
                            "t": t,
                            "phase": phase,
                            "journey": journey,
                            "endpoint": endpoint,
                            "level": level,
                            "n": {"ok": k - busy, "rejected": 0, "busy": busy, "unsent": 0},
                            "busy": {"unavailable": busy} if busy else {},
                            "lat": rng.choice(pool),
                            "svc": rng.choice(pool),
                        }
                        fh.write(json.dumps(line, separators=(",", ":")) + "\n")
                        lines += 1
    events = [
        {"schema": "loadkit.events/v1", "t0": 0},
        {"event": "inject.begin", "t": 1800, "id": "f01", "fault": "db-down", "type": "x"},
        {"event": "revert.end", "t": 1830, "id": "f01", "fault": "db-down", "result": "ok"},
        {"event": "inject.begin", "t": 2400, "id": "f02", "fault": "api-hang", "type": "x"},
        {"event": "revert.end", "t": 2410, "id": "f02", "fault": "api-hang", "result": "ok"},
    ]
    (run_dir / "events.jsonl").write_text("\n".join(json.dumps(e) for e in events) + "\n")
    return lines


CHILD = """
import sys, time
from pathlib import Path
from rich.console import Console
from loadkit.report.formats import ALL_FORMATS, write_reports
t = time.perf_counter()
write_reports(Path(sys.argv[1]), ALL_FORMATS,
              term=Console(file=open("/dev/null", "w"), width=120))
import resource
print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""

TIMELINE = """
import sys, time
from pathlib import Path
from loadkit.rundir.timeline import Timeline
t = time.perf_counter()
tl = Timeline.read(Path(sys.argv[1]) / "timeline.jsonl")
for phase in tl.phases():
    tl.select("action", phase=phase).percentile_ms(95)
import resource
print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


INTEGRITY = """
import sys, time
from pathlib import Path
from loadkit.integrity.core import Applied, compare, read_acks
n = int(sys.argv[2])
applied = [Applied(f"lk-3f2a9c1b-0-{i}", 1, 100 + i % 900, i % 1000, 1000 + i % 7)
           for i in range(n) if i % 50]
t = time.perf_counter()
acks = read_acks(*sorted(Path(sys.argv[1]).glob("acks*.bin")))
result = compare(acks, applied, source="reference")
assert result.acknowledged + result.unknown == n, result
import resource
print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def build_acks(run_dir: Path, movements: int) -> int:
    """Write ``movements`` movements as a load process does; returns the log's size."""
    from loadkit.rundir.acks import AckLog, ack_record

    path = run_dir / "acks.bin"
    log = AckLog(path)
    line = {"journey": "p2p_transfer", "kind": "transfer", "status": None, "transaction_id": None}
    batch = []
    for i in range(movements):
        line.update(t=i / 1000, key=f"lk-3f2a9c1b-0-{i}", account=i % 1000, amount=100 + i % 900)
        line.update(view="sent", status=None, transaction_id=None)
        line.update({"from": i % 1000, "to": 1000 + i % 7})
        batch.append(ack_record(line))
        final = "unknown" if i % 50 == 0 else "acknowledged"
        line.update(view=final, status=201, transaction_id=i)
        batch.append(ack_record(line))
        if len(batch) >= 2000:
            log.write(batch)
            batch.clear()
    log.write(batch)
    log.close()
    return path.stat().st_size


def _child(code: str, run_dir: Path) -> tuple[float, float, float]:
    """(wall seconds in-process, wall seconds with start-up, peak RSS MB) of a fresh process."""
    start = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", code, str(run_dir)], check=True, capture_output=True, text=True
    )
    wall = time.perf_counter() - start
    inner, rss_kb = out.stdout.strip().splitlines()[-1].split()
    return float(inner), wall, int(rss_kb) / 1024


def _integrity(run_dir: Path, movements: int) -> None:
    t = time.perf_counter()
    size = build_acks(run_dir, movements)
    print(
        f"built {movements:,} movements' acknowledgements: {size / 1e6:,.0f} MB, "
        f"{size / movements:.1f} bytes per movement, in {time.perf_counter() - t:.1f} s"
    )
    start = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", INTEGRITY, str(run_dir), str(movements)],
        check=True,
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - start
    inner, rss_kb = out.stdout.strip().splitlines()[-1].split()
    print(
        f"integrity (read the log + compare with the ledger): {float(inner):.2f} s in process "
        f"({wall:.2f} s with start-up and the in-memory ledger), "
        f"peak RSS {int(rss_kb) / 1024:,.0f} MB"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=3600)
    parser.add_argument("--rate", type=int, default=1000, help="requests per second")
    parser.add_argument("--timeline", action="store_true", help="also time Timeline.read")
    parser.add_argument(
        "--integrity", type=int, metavar="N", help="also time the integrity check of N movements"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp) / "bench-hour"
        t = time.perf_counter()
        lines = build(run_dir, args.seconds, args.rate)
        size = (run_dir / "timeline.jsonl").stat().st_size / 1e6
        print(f"built {lines:,} timeline lines ({size:,.0f} MB) in {time.perf_counter() - t:.1f} s")
        inner, wall, rss = _child(CHILD, run_dir)
        ok = "ok" if wall <= 10 and rss <= 500 else "OVER TARGET"
        print(
            f"report (html, md, json, junit, terminal): {wall:.2f} s wall incl. start-up "
            f"({inner:.2f} s in process), peak RSS {rss:,.0f} MB — target ≤ 10 s, ≤ 500 MB: {ok}"
        )
        if args.timeline:
            inner, wall, rss = _child(TIMELINE, run_dir)
            print(f"Timeline.read + per-phase p95: {inner:.2f} s, peak RSS {rss:,.0f} MB")
        if args.integrity:
            _integrity(run_dir, args.integrity)
    return 0


if __name__ == "__main__":
    sys.exit(main())
