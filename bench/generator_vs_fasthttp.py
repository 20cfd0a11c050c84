"""loadkit's open-model generator against bare Locust ``FastHttpUser``, on one trivial endpoint,
over HTTP and over HTTPS.

Both are one Locust process, pinned to the same CPU, one after the other, against the same tiny Go
server (built here from the source below; pinned to another CPU) that answers ``200 ok`` on two
ports: plain HTTP, and HTTPS (TLS 1.3, a certificate for 127.0.0.1 from a ``trustme`` CA, which
both clients verify; both keep their connections alive). For each scheme:

- ``FastHttpUser``, closed loop, no wait: its best req/s over a few user counts;
- loadkit (``loadkit/load/locustfile.py`` with a ``run-config.json``, as ``loadkit run`` starts
  it), instrumented as in any run (timeline, histograms, Locust events): the highest arrival rate
  it *sustains* — under 1% unsent, under 1% busy, and the last action done by 1% after the
  schedule's end (achieved ≥ 99% of offered), searched upwards in steps of ``--step`` (a rate
  fails when it fails twice);
- ``FastHttpUser`` once more at its best user count, after the search (the best round counts).

Prints every round and the ratio loadkit / FastHttpUser per scheme. Targets: ≥ 0.9 over HTTP,
≥ 1.0 over HTTPS (exit 1 when one is missed)::

    .venv/bin/python bench/generator_vs_fasthttp.py                 # both, 8 s rounds
    .venv/bin/python bench/generator_vs_fasthttp.py --scheme https --seconds 15 --step 1.05

Needs Go (``/usr/local/go/bin/go`` or on PATH) for the server, and ``trustme`` (a dev
dependency) for its certificate.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import trustme

from loadkit.load.runconfig import RunConfig, Target, locust_argv
from loadkit.load.tls import Tls
from loadkit.rundir.timeline import Timeline

ROOT = Path(__file__).parents[1]
TARGET_RATIO = {"http": 0.9, "https": 1.0}

GO_SERVER = """
package main

import (
	"fmt"
	"net"
	"net/http"
	"os"
)

func listen() net.Listener {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	return ln
}

// usage: srv CERT KEY; prints the HTTP port, then the HTTPS port
func main() {
	plain, tls := listen(), listen()
	fmt.Println(plain.Addr().(*net.TCPAddr).Port)
	fmt.Println(tls.Addr().(*net.TCPAddr).Port)
	os.Stdout.Sync()
	body := []byte("ok\\n")
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Write(body)
	})
	go http.Serve(plain, handler)
	panic(http.ServeTLS(tls, handler, os.Args[1], os.Args[2]))
}
"""

FASTHTTP_LOCUSTFILE = """
import os

import gevent.ssl
from locust import FastHttpUser, constant, task


def verified(cafile=None):
    # over HTTPS, verify as loadkit does (FastHttpUser's default is insecure=True)
    return gevent.ssl.create_default_context(cafile=os.environ["BENCH_CA"])


class Bare(FastHttpUser):
    wait_time = constant(0)
    insecure = False
    ssl_context_factory = staticmethod(verified)

    @task
    def get(self):
        self.client.get("/")
"""

PROFILE = """
name: generator-bench
users:
  accounts: 100
  max_in_flight: 500
stages:
  - name: hold
    duration: {seconds}s
    rate: {rate}/s
journeys:
  - name: get
    http:
      - path: /
client:
  timeout: 2s
"""


def pinned(cpu: int | None, argv: list[str]) -> list[str]:
    if cpu is None or not shutil.which("taskset"):
        return argv
    return ["taskset", "-c", str(cpu), *argv]


def start_server(work: Path, cpu: int | None) -> tuple[subprocess.Popen[str], dict[str, str]]:
    """The Go server; its URL per scheme (the CA it is certified by is ``work/ca.pem``)."""
    go = shutil.which("go") or "/usr/local/go/bin/go"
    if not Path(go).exists():
        raise SystemExit("needs Go to build the trivial server (Go's tarball, or golang-go)")
    (work / "main.go").write_text(GO_SERVER)
    (work / "go.mod").write_text("module srv\n\ngo 1.21\n")
    subprocess.run([go, "build", "-o", str(work / "srv"), "."], cwd=work, check=True)
    ca = trustme.CA()
    leaf = ca.issue_cert("127.0.0.1")
    ca.cert_pem.write_to_path(str(work / "ca.pem"))
    leaf.private_key_and_cert_chain_pem.write_to_path(str(work / "server.pem"))
    argv = [str(work / "srv"), str(work / "server.pem"), str(work / "server.pem")]
    proc = subprocess.Popen(pinned(cpu, argv), stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    http, https = int(proc.stdout.readline()), int(proc.stdout.readline())
    return proc, {"http": f"http://127.0.0.1:{http}", "https": f"https://127.0.0.1:{https}"}


def fasthttp_rps(work: Path, url: str, users: int, seconds: int, cpu: int | None) -> float:
    locustfile = work / "fasthttp_locustfile.py"
    locustfile.write_text(FASTHTTP_LOCUSTFILE)
    csv = work / f"fasthttp-{url.split(':')[0]}-{users}"
    argv = [
        *(sys.executable, "-m", "locust", "-f", str(locustfile), "--headless", "--only-summary"),
        *("-u", str(users), "-r", str(users), "-t", f"{seconds}s", "--host", url),
        *("--csv", str(csv), "--stop-timeout", "1"),
    ]
    env = {**os.environ, "BENCH_CA": str(work / "ca.pem")}
    subprocess.run(pinned(cpu, argv), cwd=ROOT, capture_output=True, check=False, env=env)
    text = Path(f"{csv}_stats.csv").read_text()
    row = next(line for line in text.splitlines() if ",Aggregated," in line)
    count = int(row.split(",")[2])
    return count / seconds


def loadkit_round(
    work: Path, url: str, rate: int, seconds: int, cpu: int | None
) -> dict[str, float]:
    run_dir = Path(tempfile.mkdtemp(prefix=f"rate{rate}-", dir=work))
    profile = run_dir / "profile.yaml"
    profile.write_text(textwrap.dedent(PROFILE.format(seconds=seconds, rate=rate)))
    config = RunConfig(
        run_id=run_dir.name,
        run_dir=str(run_dir),
        profile_path=str(profile),
        target=Target(urls=(url,), tls=Tls(ca=str(work / "ca.pem"))),
        drain_s=2.0,
    ).write()
    argv = [sys.executable, "-m", "locust", *locust_argv(config)]
    done = subprocess.run(pinned(cpu, argv), cwd=ROOT, capture_output=True, text=True)
    match = re.search(r"share 0 done: (\{.*\})", done.stdout + done.stderr)
    if done.returncode != 0 or not match:
        raise SystemExit(f"loadkit round at {rate}/s failed:\n{done.stderr[-3000:]}")
    result = json.loads(match[1].replace("'", '"'))
    actions = Timeline.read(run_dir / "timeline.jsonl").totals("action")
    arrivals = actions.answered + actions.count("unsent")
    p99 = actions.percentile_ms(99)
    return {
        "rate": rate,
        "unsent": actions.count("unsent") / arrivals,
        "busy": actions.busy_rate,
        "achieved": seconds / max(seconds, result["finished_at"]),
        "p99_ms": p99 if p99 is not None else float("nan"),
    }


def sustained(r: dict[str, float]) -> bool:
    return r["unsent"] < 0.01 and r["busy"] < 0.01 and r["achieved"] >= 0.99


def compare(work: Path, url: str, args: argparse.Namespace, cpu: int | None) -> float | None:
    """Both generators against ``url``; loadkit's max sustained rate ÷ FastHttpUser's best."""
    best, best_users = 0.0, 0
    for users in (int(u) for u in args.users.split(",")):
        rps = fasthttp_rps(work, url, users, args.seconds, cpu)
        print(f"FastHttpUser  {users:3d} users: {rps:8.0f} req/s")
        best, best_users = max((best, best_users), (rps, users))
    rate = int(best * 0.8 / 100) * 100
    last_good = None
    tries = 0
    while rate <= best * 3:
        started = time.monotonic()
        r = loadkit_round(work, url, rate, args.seconds, cpu)
        verdict = "sustained" if sustained(r) else "NOT sustained"
        print(
            f"loadkit {rate:6d}/s offered: unsent {r['unsent']:.2%}, busy {r['busy']:.2%},"
            f" achieved {r['achieved']:.2%}, p99 {r['p99_ms']:.1f} ms -> {verdict}"
            f" ({time.monotonic() - started:.0f}s)"
        )
        if not sustained(r):
            tries += 1
            if tries == 2:  # a shared machine has hiccups: a rate fails only twice
                break
            continue
        last_good, tries = rate, 0
        rate = int(rate * args.step / 100 + 1) * 100
    # FastHttpUser once more, after: both get the machine's good and bad moments
    rps = fasthttp_rps(work, url, best_users, args.seconds, cpu)
    print(f"FastHttpUser  {best_users:3d} users: {rps:8.0f} req/s (again)")
    best = max(best, rps)
    if last_good is None:
        print(f"loadkit sustained none of the rates tried (from {int(best * 0.8)}/s)")
        return None
    print(f"FastHttpUser max {best:.0f} req/s; loadkit max sustained {last_good}/s")
    return last_good / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=8, help="length of every round")
    parser.add_argument("--step", type=float, default=1.1, help="rate factor between rounds")
    parser.add_argument("--users", default="5,10,25", help="FastHttpUser user counts to try")
    parser.add_argument("--scheme", default="http,https", help="http, https, or both")
    args = parser.parse_args()
    schemes = [s.strip() for s in args.scheme.split(",")]
    if not schemes or not set(schemes) <= set(TARGET_RATIO):
        parser.error(f"--scheme: http, https or http,https, got {args.scheme!r}")
    cpus = os.cpu_count() or 1
    server_cpu, load_cpu = (0, 1) if cpus >= 2 else (None, None)
    ratios: dict[str, float | None] = {}
    with tempfile.TemporaryDirectory(prefix="loadkit-bench-") as tmp:
        work = Path(tmp)
        server, urls = start_server(work, server_cpu)
        try:
            for scheme in schemes:
                print(
                    f"== {scheme}: server {urls[scheme]} (cpu {server_cpu}), Locust on {load_cpu}"
                )
                ratios[scheme] = compare(work, urls[scheme], args, load_cpu)
        finally:
            server.terminate()
            server.wait()
    ok = True
    for scheme, ratio in ratios.items():
        target = TARGET_RATIO[scheme]
        shown = "none sustained" if ratio is None else f"{ratio:.2f}"
        print(f"{scheme:5s} loadkit / FastHttpUser: {shown} (target >= {target})")
        ok = ok and ratio is not None and ratio >= target
    raise SystemExit(0 if ok else 1)


if __name__ == "__main__":
    main()
