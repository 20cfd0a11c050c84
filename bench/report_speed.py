"""How fast is a report of a long run? Builds a synthetic run directory of 1 hour at 1,000
requests/s with the real timeline writer (5 phases, 6 journeys, action and request level, two
wallet instances, latency and service-time histograms per line, deltas split as a 2-worker
master writes them, two faults), then runs ``loadkit report RUN_DIR --format all`` on it (a
fresh process, as a user does) and prints its wall time, CPU time and peak RSS, start-up
included (targets: ≤ 2 s, ≤ 200 MB; on a shared machine the CPU time is the steadier figure).
The HTML page's charts are drawn by forked chart workers (``loadkit.report.chartjob``) on the
second core: the CPU time counts theirs too (``wait4`` sums a process and the children it
reaped), so it is above the wall time; the peak RSS is the largest one process had::

    .venv/bin/python bench/report_speed.py                 # 3600 s at 1000/s
    .venv/bin/python bench/report_speed.py --seconds 600 --timeline   # also time Timeline.read
    .venv/bin/python bench/report_speed.py --integrity 3600000   # also the integrity check
    .venv/bin/python bench/report_speed.py --integrity 3600000 --ledger db   # … against PostgreSQL

``--integrity N`` writes N money movements (wallet keys, one acknowledgement log as a load
process writes it: ``sent`` then the final view) and times, in a fresh process, reading them
and comparing them with a ledger that applied every acknowledged one. With ``--ledger memory``
(the default) the ledger's rows are handed over as the database sends them (``COPY`` text:
their parsing is part of the figure, the database is not); with ``--ledger db`` they are in the
``transactions`` table of a real PostgreSQL on loopback (started for the bench, loaded with
``generate_series`` with two ``ledger_entries`` per movement, its key's stored answer in
``idempotency_keys`` and the accounts' balances, as the wallet writes them; destroyed after)
and the figure includes the reference ledger's read and
``wallet_invariants()`` over those entries, computed meanwhile on a second connection.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from loadkit.rundir.histogram import hdr_index
from loadkit.rundir.writer import CAUSE_NAMES, RunWriter

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


def _sample(rng: random.Random, values: int) -> list[int]:
    """A sparse histogram (the recorder's flat ``[index, count, …]`` list) of ``values``
    latencies: log-normal around 20 ms, a 2% slow tail of 1–3 s."""
    hist: dict[int, int] = {}
    for _ in range(values):
        v = rng.lognormvariate(9.9, 0.8) if rng.random() > 0.02 else rng.uniform(1e6, 3e6)
        index = hdr_index(int(v))
        hist[index] = hist.get(index, 0) + 1
    return [x for pair in sorted(hist.items()) for x in pair]


class _Pool:
    """64 random histograms of each size asked for: a cell's histograms hold as many
    latencies as it counts answers, as the recorder's do."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.by_size: dict[int, list[list[int]]] = {}

    def pick(self, values: int) -> list[int]:
        pool = self.by_size.get(values)
        if pool is None:
            pool = self.by_size[values] = [_sample(self.rng, values) for _ in range(64)]
        return self.rng.choice(pool)


def build(run_dir: Path, seconds: int, rate: int) -> int:
    """Write the synthetic run with the real writer (:class:`RunWriter`, fed the recorder's
    cell rows); returns the number of timeline lines."""
    rng = random.Random(7)
    pool = _Pool(rng)
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
    writer = RunWriter(run_dir)
    unavailable = CAUSE_NAMES.index("unavailable")
    no_causes = [0] * len(CAUSE_NAMES)
    for t in range(seconds):
        phase = PHASES[min(t // per_phase, len(PHASES) - 1)]
        busy_share = 0.3 if 1800 <= t < 1830 else 0.01
        # two workers, each on its own wallet instance: their deltas land in different flushes
        for part, instance in ((0.6, "wallet-1"), (0.4, "wallet-2")):
            cells = []
            for journey, endpoints in JOURNEYS.items():
                keys = [("*", "action")] + [(e, "request") for e in endpoints]
                for endpoint, level in keys:
                    k = int(round(actions_per_s / len(JOURNEYS)) * part)
                    busy = int(k * busy_share)
                    causes = list(no_causes)
                    causes[unavailable] = busy
                    lat, svc = pool.pick(k), pool.pick(k)
                    n = [k - busy, 0, busy, 0]
                    cells.append(
                        [
                            t,
                            phase,
                            journey,
                            endpoint,
                            level,
                            n,
                            causes,
                            lat,
                            svc,
                            [],
                            instance,
                            "wifi",
                        ]
                    )
            writer.add({"cells": cells})
            writer.flush()
    writer.close()
    lines = writer.lines
    events = [
        {"schema": "loadkit.events/v1", "t0": 0},
        {"event": "inject.begin", "t": 1800, "id": "f01", "fault": "db-down", "type": "x"},
        {"event": "revert.end", "t": 1830, "id": "f01", "fault": "db-down", "result": "ok"},
        {"event": "inject.begin", "t": 2400, "id": "f02", "fault": "api-hang", "type": "x"},
        {"event": "revert.end", "t": 2410, "id": "f02", "fault": "api-hang", "result": "ok"},
    ]
    (run_dir / "events.jsonl").write_text("\n".join(json.dumps(e) for e in events) + "\n")
    return lines


#: what a user runs: ``loadkit report RUN_DIR`` (every format), a fresh process
REPORT = ["-m", "loadkit", "report", "{run_dir}", "--format", "all"]

TIMELINE = """
import sys, time
from pathlib import Path
from loadkit.rundir.timeline import Timeline
t = time.perf_counter()
tl = Timeline.read(Path(sys.argv[1]) / "timeline.jsonl")
for phase in tl.phases():
    tl.select("action", phase=phase).percentile_ms(95)
import resource
r = resource.getrusage(resource.RUSAGE_SELF)
print(time.perf_counter() - t, r.ru_maxrss, r.ru_utime + r.ru_stime)
"""


INTEGRITY = """
import os, sys, time
from pathlib import Path
from loadkit.integrity.columns import read_ack_table
from loadkit.integrity.core import compare
n = int(sys.argv[2])
dsn = os.environ.get("LOADKIT_BENCH_DSN")
if dsn is None:  # the ledger's rows as the reference wallet's database sends them (COPY text)
    from loadkit.integrity.sources import CopyRows
    copy = "".join(
        f"lk-3f2a9c1b-0-{i}\\t{100 + i % 900}\\t{i % 1000}\\t{1000 + i % 7}\\n"
        for i in range(n) if i % 50
    ).encode()
t = time.perf_counter()
if dsn is None:
    rows = CopyRows()
    for at in range(0, len(copy), 1 << 16):  # in chunks, as they come off the socket
        rows.feed(copy[at : at + (1 << 16)])
    del copy
    applied = rows.table()
else:
    import asyncio, asyncpg
    from loadkit.integrity.sources import read_reference
    async def read():
        conn = await asyncpg.connect(dsn)
        second = await asyncpg.connect(dsn)
        try:
            return await read_reference(conn, 0.0, second)
        finally:
            await second.close()
            await conn.close()
    applied, _facts = asyncio.run(read())
    print("ledger", time.perf_counter() - t)
acks = read_ack_table(*sorted(Path(sys.argv[1]).glob("acks*.bin")))
result = compare(acks, applied, source="reference")
assert result.acknowledged + result.unknown == n, result
assert (result.lost, result.duplicated, result.mismatched, result.unexpected) == (0, 0, 0, 0)
import resource
r = resource.getrusage(resource.RUSAGE_SELF)
print(time.perf_counter() - t, r.ru_maxrss, r.ru_utime + r.ru_stime)
"""


def load_ledger(scratch: Path, movements: int) -> tuple[Any, str]:
    """A PostgreSQL on loopback with the wallet's schema, a ``transactions`` row for every
    movement the bench's log acknowledges and its two ``ledger_entries``: (the server, its DSN)."""
    import asyncio

    import asyncpg

    from loadkit.stack.ports import free_port
    from loadkit.stack.postgres import Postgres
    from loadkit.wallet.schema import migrate_connection

    scratch.chmod(0o755)  # PostgreSQL runs as another user under root
    pg = Postgres(scratch / "postgres", port=free_port())
    try:
        pg.start()
        dsn = pg.create_database("bench")

        async def fill() -> None:
            conn = await asyncpg.connect(dsn)
            try:
                await migrate_connection(conn)
                await conn.execute(
                    "INSERT INTO transactions (kind, idempotency_key, account_id, from_account,"
                    " to_account, amount) SELECT 'transfer', 'lk-3f2a9c1b-0-' || i, i % 1000,"
                    " i % 1000, 1000 + i % 7, 100 + i % 900 FROM generate_series(0, $1 - 1) i"
                    " WHERE i % 50 <> 0",
                    movements,
                )
                # the wallet's double entry, its stored answer per key and the balances they
                # add up to: what wallet_invariants() checks after an hour
                await conn.execute(
                    "INSERT INTO ledger_entries (account_id, transaction_id, delta)"
                    " SELECT from_account, id, -amount FROM transactions"
                    " UNION ALL SELECT to_account, id, amount FROM transactions"
                )
                await conn.execute(
                    "INSERT INTO idempotency_keys (account_id, key, request_hash, status_code,"
                    " response, transaction_id) SELECT account_id, idempotency_key, md5(id::text),"
                    " 201, jsonb_build_object('transaction_id', id, 'kind', kind, 'from_account',"
                    " from_account, 'to_account', to_account, 'amount', amount, 'balance', 0), id"
                    " FROM transactions"
                )
                await conn.execute(
                    "INSERT INTO accounts (id, kind, name, balance) SELECT account_id,"
                    " CASE WHEN total < 0 THEN 'external' ELSE 'user' END, 'a' || account_id,"
                    " total FROM (SELECT account_id, sum(delta) AS total FROM ledger_entries"
                    " GROUP BY account_id) s"
                    " ON CONFLICT (id) DO UPDATE SET balance = excluded.balance"
                )
                await conn.execute("VACUUM ANALYZE idempotency_keys")
                await conn.execute("VACUUM ANALYZE accounts")
                await conn.execute("VACUUM ANALYZE transactions")
                await conn.execute("VACUUM ANALYZE ledger_entries")
            finally:
                await conn.close()

        asyncio.run(fill())
    except BaseException:
        pg.destroy()
        raise
    return pg, dsn


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


def _measure(argv: list[str], env: dict[str, str] | None = None) -> tuple[float, float, float, str]:
    """(wall seconds, CPU seconds, peak RSS MB, stdout) of ``python argv…`` in a fresh
    process: everything it does, start-up and imports included."""
    start = time.perf_counter()
    with tempfile.TemporaryFile() as out:
        proc = subprocess.Popen(
            [sys.executable, *argv],
            stdout=out,
            stderr=subprocess.PIPE,
            env={**os.environ, **(env or {})},
        )
        _pid, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        err = proc.stderr.read().decode() if proc.stderr else ""
        if status:
            raise SystemExit(f"{' '.join(argv)} failed: {err}")
        out.seek(0)
        text = out.read().decode()
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, text


def _child(
    code: str, run_dir: Path, *args: str, env: dict[str, str] | None = None
) -> tuple[float, float, float, float]:
    """(wall seconds in-process, wall seconds with start-up, peak RSS MB, CPU seconds with
    start-up) of a fresh process; the timers it prints before its last line are shown."""
    wall, cpu, rss, text = _measure(["-c", code, str(run_dir), *args], env)
    lines = text.strip().splitlines()
    for line in lines[:-1]:
        print(f"  {line.split()[0]}: {float(line.split()[1]):.2f} s")
    inner = lines[-1].split()[0]
    return float(inner), wall, rss, cpu


def _integrity(run_dir: Path, movements: int, ledger: str) -> None:
    t = time.perf_counter()
    size = build_acks(run_dir, movements)
    print(
        f"built {movements:,} movements' acknowledgements: {size / 1e6:,.0f} MB, "
        f"{size / movements:.1f} bytes per movement, in {time.perf_counter() - t:.1f} s"
    )
    pg = None
    env = {}
    if ledger == "db":
        t = time.perf_counter()
        pg, env["LOADKIT_BENCH_DSN"] = load_ledger(run_dir.parent, movements)
        print(f"loaded PostgreSQL's transactions table in {time.perf_counter() - t:.1f} s")
    try:
        inner, wall, rss, cpu = _child(INTEGRITY, run_dir, str(movements), env=env)
    finally:
        if pg is not None:
            pg.destroy()
    ok = "ok" if inner <= 10 else "OVER TARGET"
    what = "read PostgreSQL" if ledger == "db" else "parse the ledger's rows"
    print(
        f"integrity ({what} + read the log + compare): {inner:.2f} s in process "
        f"({wall:.2f} s wall, {cpu:.2f} s CPU of the checking process with start-up), "
        f"peak RSS {rss:,.0f} MB — target ≤ 10 s: {ok}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=3600)
    parser.add_argument("--rate", type=int, default=1000, help="requests per second")
    parser.add_argument("--timeline", action="store_true", help="also time Timeline.read")
    parser.add_argument(
        "--integrity", type=int, metavar="N", help="also time the integrity check of N movements"
    )
    parser.add_argument(
        "--ledger",
        choices=("memory", "db"),
        default="memory",
        help="with --integrity: the ledger's rows in memory, or in a real PostgreSQL",
    )
    parser.add_argument(
        "--keep", type=Path, metavar="DIR", help="build the run in DIR and keep it (to profile)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = args.keep or Path(tmp) / "bench-hour"
        t = time.perf_counter()
        lines = build(run_dir, args.seconds, args.rate)
        size = (run_dir / "timeline.jsonl").stat().st_size / 1e6
        print(f"built {lines:,} timeline lines ({size:,.0f} MB) in {time.perf_counter() - t:.1f} s")
        argv = [a.format(run_dir=run_dir) for a in REPORT]
        wall, cpu, rss, _out = _measure(argv)
        ok = "ok" if min(wall, cpu) <= 2 and rss <= 200 else "OVER TARGET"
        print(
            f"loadkit report --format all (html, md, json, junit, terminal): {wall:.2f} s wall, "
            f"{cpu:.2f} s CPU, peak RSS {rss:,.0f} MB, start-up included "
            f"— target ≤ 2 s, ≤ 200 MB: {ok}"
        )
        # the same without the HTML page (matplotlib's import and its ten charts)
        wall, cpu, rss, _out = _measure([*argv[:-1], "md,json,junit,terminal"])
        print(
            f"loadkit report --format md,json,junit,terminal: {wall:.2f} s wall, {cpu:.2f} s CPU, "
            f"peak RSS {rss:,.0f} MB"
        )
        if args.timeline:
            inner, wall, rss, cpu = _child(TIMELINE, run_dir)
            print(
                f"Timeline.read + per-phase p95: {inner:.2f} s in process ({cpu:.2f} s CPU "
                f"incl. start-up), peak RSS {rss:,.0f} MB"
            )
        if args.integrity:
            _integrity(run_dir, args.integrity, args.ledger)
    return 0


if __name__ == "__main__":
    sys.exit(main())
