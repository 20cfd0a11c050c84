"""Wallet transfers/s against pgbench's TPC-B-like tps, on the same PostgreSQL, in the same run.

A TPC-B transaction is pgbench's model of a money transfer (update an account, a teller, a branch,
insert history): the ceiling of what this PostgreSQL does for a transfer with no HTTP, no auth, no
idempotency. The wallet's transfer adds all of those on top. Rounds alternate (pgbench, wallet,
pgbench, wallet, ...) so both see the same machine; the ratio of the medians is printed.

    .venv/bin/python bench/wallet_vs_pgbench.py                 # 2 rounds of 10 s each
    .venv/bin/python bench/wallet_vs_pgbench.py --rounds 3 --seconds 15

Needs ``wrk`` (Debian: ``apt-get install wrk``) to drive the wallet: a C load generator, so the
load itself costs little CPU on this 2-core machine. Target: ratio >= 0.4.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx

from loadkit.stack.reference import ReferenceStack, StackOptions

HERE = Path(__file__).parent
TARGET = 0.4


def pgbench_tps(stack: ReferenceStack, seconds: int, clients: int) -> float:
    pg = stack.postgres
    assert pg is not None
    out = subprocess.run(
        [
            str(pg.bin_dir / "pgbench"),
            *("-h", "127.0.0.1", "-p", str(pg.port), "-U", "loadkit"),
            *("-c", str(clients), "-j", "2", "-T", str(seconds), "-n"),
            "pgbench",
        ],
        capture_output=True,
        text=True,
        check=True,
        env=pg.client_env(),
    ).stdout
    match = re.search(r"tps = ([\d.]+)", out)
    if not match:
        raise SystemExit(f"could not read pgbench's tps from:\n{out}")
    return float(match.group(1))


def wallet_tps(
    stack: ReferenceStack, tokens: Path, seconds: int, connections: int
) -> tuple[float, dict[str, int]]:
    """Transfers applied per second (201s), one wrk per instance, all at once."""
    wrk = shutil.which("wrk")
    assert wrk

    def one(url: str) -> dict[str, object]:
        out = subprocess.run(
            [
                wrk,
                "-t1",
                f"-c{connections}",
                f"-d{seconds}s",
                "--timeout",
                "5s",
                "-s",
                str(HERE / "wallet_load.lua"),
                url,
                "--",
                str(tokens),
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        line = next(ln for ln in out.splitlines() if ln.startswith("wallet_load: "))
        result: dict[str, object] = json.loads(line.removeprefix("wallet_load: "))
        return result

    urls = [w.url for w in stack.manifest.wallets]
    with concurrent.futures.ThreadPoolExecutor(len(urls)) as pool:
        results = list(pool.map(one, urls))
    statuses: dict[str, int] = {}
    for r in results:
        for code, n in r["statuses"].items():  # type: ignore[union-attr]
            statuses[code] = statuses.get(code, 0) + int(n)
    duration = max(float(r["duration_us"]) for r in results) / 1e6  # type: ignore[arg-type]
    return statuses.get("201", 0) / duration, statuses


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--instances", type=int, default=2)
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--connections", type=int, default=32, help="wrk connections per instance")
    parser.add_argument("--pgbench-clients", type=int, default=8)
    args = parser.parse_args()
    if not shutil.which("wrk"):
        print("bench needs wrk to drive the wallet (Debian: apt-get install wrk)", file=sys.stderr)
        return 3

    workdir = Path(tempfile.mkdtemp(prefix="loadkit-bench-"))
    workdir.chmod(0o755)
    warmup = max(3, args.seconds // 3)
    print(f"starting the reference stack ({args.instances} wallet instances, {args.users} users)…")
    stack = ReferenceStack.up(
        workdir / "stack", StackOptions(instances=args.instances, users=args.users, merchants=10)
    )
    try:
        pg = stack.postgres
        assert pg is not None
        pg.create_database("pgbench")
        subprocess.run(
            [
                str(pg.bin_dir / "pgbench"),
                "-h",
                "127.0.0.1",
                "-p",
                str(pg.port),
                "-U",
                "loadkit",
                "-i",
                "-s",
                "10",
                "-q",
                "pgbench",
            ],
            capture_output=True,
            check=True,
            env=pg.client_env(),
        )
        tokens = workdir / "tokens.txt"
        base = stack.manifest.wallets[0].url
        with httpx.Client(base_url=base, timeout=10) as http, tokens.open("w") as fh:
            for i in range(1, args.users + 1):
                body = http.post(
                    "/v1/login", json={"username": f"user{i:05d}", "password": stack.password}
                ).json()
                fh.write(f"{body['account_id']} {body['token']}\n")
        # a first short run of each, not counted: caches, JIT of plans, checkpoint after init
        pgbench_tps(stack, warmup, args.pgbench_clients)
        wallet_tps(stack, tokens, warmup, args.connections)

        pg_runs: list[float] = []
        wallet_runs: list[float] = []
        for r in range(1, args.rounds + 1):
            tps = pgbench_tps(stack, args.seconds, args.pgbench_clients)
            pg_runs.append(tps)
            print(f"round {r}: pgbench TPC-B-like  {tps:8.0f} tps")
            wtps, statuses = wallet_tps(stack, tokens, args.seconds, args.connections)
            wallet_runs.append(wtps)
            print(f"round {r}: wallet transfers    {wtps:8.0f} /s   statuses {statuses}")
        invariants = stack.admin.invariants()
    finally:
        stack.down()
        shutil.rmtree(workdir, ignore_errors=True)

    ratio = statistics.median(wallet_runs) / statistics.median(pg_runs)
    verdict = "met" if ratio >= TARGET else "NOT met"
    pg_median, wallet_median = statistics.median(pg_runs), statistics.median(wallet_runs)
    print()
    print(f"pgbench TPC-B-like (-c {args.pgbench_clients} -j 2): median {pg_median:.0f} tps")
    print(
        f"wallet transfers ({args.instances} instances, wrk {args.connections} connections each):"
        f" median {wallet_median:.0f}/s"
    )
    print(f"ratio wallet / pgbench = {ratio:.2f}  (target >= {TARGET}: {verdict})")
    print(f"ledger invariants after the run: {'ok' if invariants.get('ok') else invariants}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
