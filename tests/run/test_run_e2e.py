"""`loadkit run` end to end, as a user runs it: the real CLI in a subprocess, real Locust
processes, the real wallet stack or a plain HTTP service."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil

from loadkit.rundir import RunDir
from loadkit.rundir.acks import is_v2, read_records
from loadkit.rundir.timeline import Timeline
from loadkit.stack.reference import ReferenceStack
from tests.conftest import PlainService
from tests.support import loadkit

ROOT = Path(__file__).parents[2]

WALLET_PROFILE = """
name: e2e
stages:
  - {name: warm, duration: 4s, rate: 20/s}
  - {name: peak, duration: 6s, rate: 60/s, curve: linear}
journeys:
  - {wallet: balance, weight: 2}
  - {wallet: p2p_transfer, weight: 1}
client: {timeout: 3s}
"""


_loadkit = functools.partial(loadkit, columns=100)


def _only_run_dir(out: Path) -> Path:
    dirs = [d for d in out.iterdir() if d.is_dir()]
    assert len(dirs) == 1, dirs
    return dirs[0]


def _logging_into(directory: Path) -> list[int]:
    """Processes whose stdout goes into ``directory`` (everything a run started)."""
    found = []
    for pid in psutil.pids():
        with contextlib.suppress(OSError, psutil.Error):
            log = os.readlink(f"/proc/{pid}/fd/1")
            if log.startswith(str(directory)) and psutil.Process(pid).status() != "zombie":
                found.append(pid)
    return found


def test_run_against_a_running_stack(stack: ReferenceStack, tmp_path: Path) -> None:
    profile = tmp_path / "e2e.yaml"
    profile.write_text(WALLET_PROFILE)
    out = tmp_path / "reports"
    run = _loadkit(
        "run", str(profile), "--stack-dir", str(stack.stack_dir), "--out", str(out), cwd=tmp_path
    )
    assert run.returncode == 0, run.stderr + run.stdout
    run_dir = _only_run_dir(out)
    assert f"run directory: {run_dir}" in run.stdout
    assert "e2e — completed" in run.stdout and "peak" in run.stdout
    assert f"report: {run_dir / 'report.html'}" in run.stdout
    for name in ("report.html", "summary.md", "report.json", "junit.xml", "profile.yaml"):
        assert (run_dir / name).is_file(), name
    report = json.loads((run_dir / "report.json").read_text())
    assert report["schema"] == "loadkit.report/v1"

    record = json.loads((run_dir / "run.json").read_text())
    assert record["status"] == "completed" and record["clock_t0"]
    assert record["target"]["kind"] == "reference"
    totals = record["totals"]
    expected_arrivals = 4 * 20 + 6 * 40  # step 20/s, then linear 20 -> 60/s
    assert abs(totals["scheduled"] - expected_arrivals) <= 1
    requests = sum(totals["requests"].get(k, 0) for k in ("ok", "rejected", "busy"))
    assert requests == record["locust_totals"]["requests"], "run.json agrees with Locust's CSV"
    assert totals["actions"].get("unsent", 0) == 0

    tl = Timeline.read(run_dir / "timeline.jsonl")
    assert tl.phases() == ["warm", "peak"]
    # every money movement is in the load process's own binary log (acks.d/, loadkit.acks/v2)
    logs = RunDir(run_dir).ack_logs()
    assert logs and all(is_v2(log) for log in logs), logs
    records = [r for log in logs for r in read_records(log)]
    assert len(records) > 1 and all(r["key"] for r in records)
    assert stack.status()["healthy"], "a run against a running stack leaves it running"
    assert _logging_into(run_dir) == []


def test_run_starts_and_stops_its_own_stack(tmp_path: Path) -> None:
    profile = tmp_path / "tiny.yaml"
    profile.write_text(
        "name: tiny\nstages:\n  - {name: only, duration: 3s, rate: 10/s}\n"
        "users: {accounts: 20}\njourneys:\n  - {wallet: balance}\n"
    )
    out = tmp_path / "reports"
    run = _loadkit("run", str(profile), "--out", str(out), cwd=tmp_path)
    assert run.returncode == 0, run.stderr + run.stdout
    run_dir = _only_run_dir(out)
    record = json.loads((run_dir / "run.json").read_text())
    assert record["target"]["stack_dir"] == str(run_dir / "stack")
    assert record["totals"]["actions"]["ok"] == 30
    assert _logging_into(run_dir) == [], "the stack the run started is stopped with it"


def test_ctrl_c_leaves_a_readable_interrupted_run(stack: ReferenceStack, tmp_path: Path) -> None:
    profile = tmp_path / "long.yaml"
    profile.write_text(
        "name: long\nstages:\n  - {name: steady, duration: 60s, rate: 30/s}\n"
        "journeys:\n  - {wallet: balance}\n"
    )
    out = tmp_path / "reports"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "loadkit",
            "run",
            str(profile),
            "--out",
            str(out),
            "--stack-dir",
            str(stack.stack_dir),
            "--workers",
            "2",
            "--json",  # report.json on stdout, even for an interrupted run
        ],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not list(out.glob("*/clock.json")):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the run clock never started"
            time.sleep(0.1)
        time.sleep(4)
        proc.send_signal(signal.SIGINT)
        out_text, err = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, err
    run_dir = _only_run_dir(out)
    record = json.loads((run_dir / "run.json").read_text())
    assert record["status"] == "interrupted"
    assert record["totals"]["actions"].get("ok", 0) > 30, "what was recorded before Ctrl-C is kept"
    assert Timeline.read(run_dir / "timeline.jsonl").totals().count("ok") > 30
    assert _logging_into(run_dir) == [], "no Locust process is left"
    assert stack.status()["healthy"]
    _assert_marked_reports(run_dir, "interrupted", "Run INTERRUPTED at 0:0")
    printed = json.loads(out_text)
    assert printed["status"] == "interrupted" and printed["run_id"] == run_dir.name


def _assert_marked_reports(run_dir: Path, status: str, title: str) -> None:
    """A run that ended early still has every report, each saying so first."""
    html = (run_dir / "report.html").read_text()
    assert 'role="alert"' in html and title in html, "report.html: a banner on top"
    md = (run_dir / "summary.md").read_text()
    assert f"**{title}" in md.split("####")[0], "summary.md: a warning before the tables"
    junit = (run_dir / "junit.xml").read_text()
    assert f'type="run-{status}"' in junit and title in junit
    report = json.loads((run_dir / "report.json").read_text())
    assert report["status"] == status and report["status_banner"]["title"].startswith(title)
    assert report["total"]["action"]["counts"]["ok"] > 0, "what was recorded is reported"


def test_declarative_profile_against_a_plain_service(
    plain_service: PlainService, tmp_path: Path
) -> None:
    out = tmp_path / "reports"
    run = _loadkit(
        "run",
        str(ROOT / "profiles" / "http-example.yaml"),
        "--target",
        plain_service.url,
        "--time-scale",
        "0.1",
        "--out",
        str(out),
        cwd=tmp_path,
        env={"SHOP_PASSWORD": "secret"},
    )
    assert run.returncode == 0, run.stderr + run.stdout
    record = json.loads((_only_run_dir(out) / "run.json").read_text())
    assert record["target"]["kind"] == "http"
    assert record["totals"]["requests"]["ok"] > 0


def test_too_many_unsent_marks_the_run_invalid(plain_service: PlainService, tmp_path: Path) -> None:
    profile = tmp_path / "starved.yaml"
    profile.write_text(
        "name: starved\nstages:\n  - {name: steady, duration: 4s, rate: 40/s}\n"
        "users: {max_in_flight: 2}\nclient: {timeout: 1s}\n"
        "journeys:\n  - name: slow\n    http:\n      - {name: slow, path: /slow}\n"
    )
    out = tmp_path / "reports"
    run = _loadkit(
        "run", str(profile), "--target", plain_service.url, "--out", str(out), cwd=tmp_path
    )
    assert run.returncode == 1, run.stderr + run.stdout
    assert "run invalid" in run.stderr and "unsent" in run.stderr
    record = json.loads((_only_run_dir(out) / "run.json").read_text())
    assert record["status"] == "invalid"


def test_unset_env_variable_exits_2_before_anything_starts(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "SHOP_PASSWORD"}
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "loadkit",
            "run",
            str(ROOT / "profiles" / "http-example.yaml"),
            "--target",
            "http://127.0.0.1:9",
            "--out",
            str(tmp_path / "reports"),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=60,
    )
    assert run.returncode == 2
    assert "uses unset environment variable(s) SHOP_PASSWORD" in run.stderr
    assert not (tmp_path / "reports").exists()


def test_bad_profile_exits_2_and_starts_nothing(tmp_path: Path) -> None:
    profile = tmp_path / "bad.yaml"
    profile.write_text(
        "stages:\n  - {name: a, duration: 5, rate: 1}\njourneys:\n  - {wallet: balance}\n"
    )
    run = _loadkit("run", str(profile), "--out", str(tmp_path / "reports"), cwd=tmp_path)
    assert run.returncode == 2
    assert "bad.yaml:2:25: stages[0].duration" in run.stderr
    assert not (tmp_path / "reports").exists()


CHAOS_PROFILE = """
name: chaos-e2e
stages:
  - {name: before, duration: 4s, rate: 30/s}
  - {name: during, duration: 4s, rate: 30/s}
  - {name: after, duration: 6s, rate: 30/s}
journeys:
  - {wallet: balance, weight: 1}
  - {wallet: p2p_transfer, weight: 1}
client: {timeout: 2s}
"""


def test_run_with_chaos_on_the_same_clock(stack: ReferenceStack, tmp_path: Path) -> None:
    """`loadkit run --chaos`: the fault lands at its phase, users see busy, everything is back."""
    profile = tmp_path / "p.yaml"
    profile.write_text(CHAOS_PROFILE)
    scenario = tmp_path / "s.yaml"
    scenario.write_text(
        "name: db-blip\nfaults:\n"
        "  - {name: db-down, type: postgres.crash, target: postgres, at: during, duration: 2s}\n"
    )
    out = tmp_path / "reports"
    run = _loadkit(
        "run",
        str(profile),
        "--chaos",
        str(scenario),
        "--stack-dir",
        str(stack.stack_dir),
        "--out",
        str(out),
        cwd=tmp_path,
    )
    assert run.returncode == 0, run.stderr + run.stdout
    run_dir = _only_run_dir(out)
    record = json.loads((run_dir / "run.json").read_text())
    assert record["scenario"]["name"] == "db-blip"
    assert record["scenario"]["injected"] == 1 and record["scenario"]["reverted"] == 1
    events = [json.loads(x) for x in (run_dir / "events.jsonl").read_text().splitlines()]
    assert any(e.get("fault") == "db-down" for e in events)
    tl = Timeline.read(run_dir / "timeline.jsonl")
    assert tl.select("action", phase="before").busy_rate == 0
    during = tl.select("request", t_from=4, t_to=6)
    assert during.busy_rate > 0.5, during.n
    assert set(during.busy) <= {"unavailable", "timeout", "connection"}, during.busy
    assert tl.select("action", t_from=11, t_to=14).busy_rate == 0, "recovered after the fault"
    assert stack.status()["healthy"]
    assert stack.admin.invariants()["ok"]


def test_chaos_abort_stops_the_run_with_exit_4(stack: ReferenceStack, tmp_path: Path) -> None:
    profile = tmp_path / "p.yaml"
    profile.write_text(CHAOS_PROFILE.replace("6s", "20s"))
    scenario = tmp_path / "s.yaml"
    scenario.write_text(
        "name: doomed\nfaults:\n"
        "  - {name: all-down, type: wallet.maintenance, target: wallets,"
        " at: during, duration: 20s}\n"
        "abort:\n  - {name: too-busy, when: busy-rate, above: 50%, window: 2s, for: 1s}\n"
    )
    out = tmp_path / "reports"
    t0 = time.monotonic()
    run = _loadkit(
        "run",
        str(profile),
        "--chaos",
        str(scenario),
        "--stack-dir",
        str(stack.stack_dir),
        "--out",
        str(out),
        cwd=tmp_path,
    )
    assert run.returncode == 4, run.stderr + run.stdout
    assert "aborted" in run.stderr and "too-busy" in run.stderr
    assert time.monotonic() - t0 < 40, "the load stopped at the abort, not at the profile's end"
    run_dir = _only_run_dir(out)
    record = json.loads((run_dir / "run.json").read_text())
    assert record["status"] == "aborted"
    state = stack.admin.state()
    assert all(not s["maintenance"]["enabled"] for s in state), "maintenance rolled back"
    _assert_marked_reports(run_dir, "aborted", "Run ABORTED at 0:")
    assert "too-busy" in run.stdout, "the terminal report's banner says why"
    # the wallets said why they were busy: maintenance, counted by each instance itself
    report = json.loads((run_dir / "report.json").read_text())
    server = report["server_causes"]
    assert server["total"].get("maintenance", 0) > 10, server
    assert set(server["instances"]) == {"wallet-1", "wallet-2"}
    assert server["groups"]["maintenance"] == "maintenance"


def test_a_worker_joins_with_loadkit_worker(plain_service: PlainService, tmp_path: Path) -> None:
    """`loadkit worker --master HOST:PORT` joins a run's master (a second machine's command)."""
    from loadkit.stack.ports import free_port

    profile = tmp_path / "p.yaml"
    profile.write_text(
        "name: split\nstages:\n  - {name: steady, duration: 4s, rate: 40/s}\n"
        "journeys:\n  - name: health\n    http:\n      - {name: health, path: /healthz}\n"
    )
    port = free_port()
    out = tmp_path / "reports"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    run = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "loadkit",
            "run",
            str(profile),
            "--target",
            plain_service.url,
            "--workers",
            "1",
            "--remote-workers",
            "1",
            "--master-port",
            str(port),
            "--out",
            str(out),
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    worker = subprocess.Popen(
        [sys.executable, "-m", "loadkit", "worker", "--master", f"127.0.0.1:{port}"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _, err = run.communicate(timeout=120)
        assert run.returncode == 0, err
        assert worker.wait(timeout=30) == 0
    finally:
        for p in (run, worker):
            if p.poll() is None:
                p.kill()
                p.wait()
    record = json.loads((_only_run_dir(out) / "run.json").read_text())
    assert record["totals"]["actions"]["ok"] == 160, "both workers' shares add up to the schedule"


def test_network_classes_go_through_toxiproxy(plain_service: PlainService, tmp_path: Path) -> None:
    """Half the users on a 'weak-4g' class with 300 ms latency: their answers take 300 ms more."""
    profile = tmp_path / "p.yaml"
    profile.write_text(
        "name: net\nstages:\n  - {name: steady, duration: 4s, rate: 20/s}\n"
        "users: {accounts: 100}\n"
        "network:\n  - {name: wifi, weight: 50%}\n"
        "  - {name: weak-4g, weight: 50%, latency: 300ms}\n"
        "journeys:\n  - name: health\n    http:\n      - {name: health, path: /healthz}\n"
    )
    out = tmp_path / "reports"
    run = _loadkit(
        "run", str(profile), "--target", plain_service.url, "--out", str(out), cwd=tmp_path
    )
    assert run.returncode == 0, run.stderr + run.stdout
    run_dir = _only_run_dir(out)
    record = json.loads((run_dir / "run.json").read_text())
    assert list(record["target"]["network"]) == ["weak-4g"], "only classes with toxics get a proxy"
    b = Timeline.read(run_dir / "timeline.jsonl").totals("action")
    p25, p75 = b.percentile_ms(25), b.percentile_ms(75)
    assert p25 is not None and p75 is not None
    assert p25 < 100 and 300 <= p75 < 450, (p25, p75)
    assert _logging_into(run_dir) == [], "the run's own Toxiproxy is stopped"


def _start_run(profile: Path, out: Path, *extra: str) -> subprocess.Popen[str]:
    """`loadkit run PROFILE` in the background, once its run clock started (Locust is up)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "loadkit", "run", str(profile), "--out", str(out), *extra],
        cwd=out.parent,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 90
    while not list(out.glob("*/clock.json")):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the run clock never started"
        time.sleep(0.1)
    time.sleep(1.5)  # load flowing
    return proc


def _wait_none_left(run_dir: Path, timeout: float) -> float:
    started = time.monotonic()
    while _logging_into(run_dir):
        assert time.monotonic() - started < timeout, [
            " ".join(psutil.Process(p).cmdline()[:4]) for p in _logging_into(run_dir)
        ]
        time.sleep(0.2)
    return time.monotonic() - started


LONG_WALLET_PROFILE = (
    "name: long\nstages:\n  - {name: steady, duration: 60s, rate: 30/s}\n"
    "users: {accounts: 20}\njourneys:\n  - {wallet: balance}\n  - {wallet: p2p_transfer}\n"
)


def test_sigkill_of_loadkit_run_leaves_no_process(tmp_path: Path) -> None:
    """`loadkit run` SIGKILLed mid-run with its own stack and two Locust workers: its watchdog
    stops the stack (PostgreSQL runs as another user under root), Locust and itself within a
    few seconds, and run.json reads `killed`."""
    profile = tmp_path / "long.yaml"
    profile.write_text(LONG_WALLET_PROFILE)
    out = tmp_path / "reports"
    proc = _start_run(profile, out, "--workers", "2")
    run_dir = _only_run_dir(out)
    assert len(_logging_into(run_dir)) >= 7  # postgres, toxiproxy, 2 wallets, 3 Locust, …
    proc.kill()
    proc.communicate(timeout=10)
    took = _wait_none_left(run_dir, timeout=20)
    assert took < 15, took
    record = json.loads((run_dir / "run.json").read_text())
    assert record["status"] == "killed", record
    assert record["orchestrator"]["pid"] == proc.pid
    assert not (run_dir / "stack" / "manifest.json").exists(), "its database deleted too"


def test_a_run_and_its_watchdog_killed_leave_a_stack_stack_down_stops(tmp_path: Path) -> None:
    """Both the run and its watchdog SIGKILLed: run.json reads `killed` to whoever looks next,
    and `loadkit stack down` finds the stack left under the run directory and stops it."""
    profile = tmp_path / "long.yaml"
    profile.write_text(LONG_WALLET_PROFILE)
    out = tmp_path / "reports"
    proc = _start_run(profile, out)
    run_dir = _only_run_dir(out)
    watchdog = next(
        psutil.Process(p)
        for p in _logging_into(run_dir)
        if "loadkit.stack.watchdog" in psutil.Process(p).cmdline()
    )
    watchdog.kill()
    proc.kill()
    proc.communicate(timeout=10)
    psutil.wait_procs([watchdog], timeout=5)
    try:
        assert json.loads((run_dir / "run.json").read_text())["status"] == "running"
        assert RunDir(run_dir).read_record()["status"] == "killed"  # type: ignore[index]
        assert _logging_into(run_dir), "the stack (and Locust) are left running"
        down = _loadkit("stack", "down", "--runs", str(out), "--dir", str(tmp_path / "none"))
        assert down.returncode == 0, down.stderr + down.stdout
        assert f"{run_dir / 'stack'} (left by a killed run): stopped" in down.stdout
        assert "postgres" in down.stdout and "wallet-1" in down.stdout
        _wait_none_left(run_dir, timeout=5)  # Locust of the dead run too
    finally:
        with contextlib.suppress(Exception):
            ReferenceStack.attach(run_dir / "stack").down()


TLS_PROFILE = """
name: tls
stages:
  - {name: steady, duration: 5s, rate: 30/s}
users: {accounts: 40}
network:
  - {name: wifi, weight: 50}
  - {name: weak-4g, weight: 50, latency: 30ms}
journeys:
  - {wallet: balance, weight: 2}
  - {wallet: p2p_transfer, weight: 1, amount: {min: 1, max: 5}}
client: {timeout: 3s}
"""


def test_a_short_profile_over_tls_against_a_tls_stack(tmp_path: Path) -> None:
    """`loadkit stack up --tls`, then a run against it: the run verifies every wallet against
    the stack's CA (the client proxies and the network class's proxies pass TLS through, each
    URL with its wallet's name as server_name); nothing fails TLS, the money is clean."""
    stack_dir = tmp_path / "stack"
    up = _loadkit(
        "stack", "up", "--tls", "--dir", str(stack_dir), "--instances", "2",
        "--users", "40", "--merchants", "2", cwd=tmp_path,
    )  # fmt: skip
    try:
        assert up.returncode == 0, up.stderr + up.stdout
        ca = stack_dir / "ca.pem"
        assert f"--cacert {ca} https://127.0.0.1:" in up.stdout
        assert "HTTPS: the wallets' certificates come from the stack's CA" in up.stdout
        profile = tmp_path / "tls.yaml"
        profile.write_text(TLS_PROFILE)
        out = tmp_path / "reports"
        run = _loadkit(
            "run", str(profile), "--stack-dir", str(stack_dir), "--out", str(out), cwd=tmp_path
        )
        assert run.returncode == 0, run.stderr + run.stdout
        run_dir = _only_run_dir(out)
        target = json.loads((run_dir / "run-config.json").read_text())["target"]
        assert target["tls"] == {"verify": True, "ca": str(ca)}
        urls = target["urls"] + target["network"]["weak-4g"]
        assert len(urls) == 4 and all(u.startswith("https://127.0.0.1:") for u in urls)
        names = sorted(target["tls_by_url"][u]["server_name"] for u in urls)
        assert names == ["wallet-1", "wallet-1", "wallet-2", "wallet-2"]
        about_tls = json.loads((run_dir / "run.json").read_text())["target"]["tls"]
        assert about_tls["ca"] == str(ca) and about_tls["verify"] is True
        report = json.loads((run_dir / "report.json").read_text())
        counts = report["total"]["action"]["counts"]
        assert counts["ok"] > 100 and counts["busy"] == 0, counts
        integrity = json.loads((run_dir / "integrity.json").read_text())
        assert integrity["ok"] is True and integrity["acks"]["acknowledged"] > 20
        # plain HTTP to a wallet that serves HTTPS gets nowhere
        wallet = json.loads((stack_dir / "manifest.json").read_text())["wallets"][0]
        try:
            with socket.create_connection(("127.0.0.1", wallet["port"]), timeout=2) as sock:
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                answer = sock.recv(100)
        except OSError:
            answer = b""
        assert not answer.startswith(b"HTTP/1.1 200"), answer
    finally:
        down = _loadkit("stack", "down", "--dir", str(stack_dir), cwd=tmp_path)
        assert down.returncode == 0, down.stderr
    assert not (stack_dir / "ca.key").exists() and not (stack_dir / "tls").exists()
