"""A game day on a system loadkit did not start, through the real CLI: a "foreign" shop on a
test host (a network namespace in 198.18.0.0/15) with its own toxiproxy-server, its own
PostgreSQL (started here, not by ``loadkit stack``) reached through that Toxiproxy, and a
labelled container on the local engine (on a bridge network) that no stack owns; next to it an
unlabelled bystander container that must never be touched.

- A toxic, two SQL faults, a command fault and a container fault (``name:*``, ``count: all``)
  run under load with ``--system``; the controller is SIGKILLed mid-fault; ``loadkit chaos
  rollback`` restores every one, asserted from the components themselves.
- ``--dry-run`` shows the blast radius; targets outside the system's set are refused (exit 4).
- A second Ctrl-C during ``loadkit run --chaos`` does not abandon the rollback.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import psutil
import pytest

from loadkit.rundir.events import outstanding, read_events
from loadkit.stack import docker as dk
from loadkit.stack import docker_image as img
from loadkit.stack.postgres import Postgres
from loadkit.stack.toxiproxy import ToxiproxyClient, find_server_binary
from tests.chaos.bridge import bridge_network
from tests.netns import TestHost, available, test_host, wait_port
from tests.support import ROOT, loadkit, spawn_loadkit

PG_PASSWORD_ENV = "SHOP_PG_PASSWORD"

PROFILE = """
name: shop-load
stages:
  - {name: steady, duration: 40s, rate: 20/s}
journeys:
  - name: read
    weight: 3
    http:
      - {name: order, path: "/orders/{random.int 1..200}"}
  - name: pay
    weight: 1
    http:
      - {name: pay, method: POST, path: "/orders/{random.int 1..200}/pay"}
client: {timeout: 2s}
"""


@dataclass
class Foreign:
    """The shop on its test host, and what the test needs to look at it directly."""

    host: TestHost
    key: str
    superuser_dsn: str  # the shop database, as the superuser
    toxiproxy: ToxiproxyClient
    flag: Path
    container: str  # labelled app=<key>, on a bridge network
    bystander: str  # not labelled: outside every blast radius
    system: Path
    password: str

    @property
    def env(self) -> dict[str, str]:
        # the system's lock file goes with the test's files, not into the machine's lock dir
        return {PG_PASSWORD_ENV: self.password, "LOADKIT_LOCK_DIR": str(self.system.parent)}


def _sql(dsn: str, sql: str) -> list[Any]:
    """The rows of one query; several statements (no rows) when ``sql`` has ';'."""

    async def go() -> list[Any]:
        conn = await asyncpg.connect(dsn, timeout=10)
        try:
            if ";" in sql:
                await conn.execute(sql)
                return []
            return list(await conn.fetch(sql))
        finally:
            await conn.close()

    return asyncio.run(go())


@pytest.fixture(scope="module")
def foreign(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Foreign]:
    reason = available()
    if reason is not None:
        if os.geteuid() == 0:
            pytest.fail(f"cannot make a test host: {reason}")
        pytest.skip(reason)
    binary = find_server_binary()
    assert binary is not None, "toxiproxy-server is needed (make setup)"
    tmp = tmp_path_factory.mktemp("foreign")
    tmp.chmod(0o755)
    key = f"lkg{uuid.uuid4().hex[:6]}"
    made: list[Any] = []
    with test_host() as host, contextlib.ExitStack() as stack:
        client = dk.connect()
        stack.callback(client.close)  # last: the bridge network goes before it
        pg = Postgres(tmp / "pg", port=5432)
        try:
            addr = host.address
            # the team's PostgreSQL, on the test host only (not loopback, not `loadkit stack`)
            pg.init()
            hba = pg.data_dir / "pg_hba.conf"
            net = ipaddress.ip_network(f"{addr}/30", strict=False)
            hba.write_text(hba.read_text() + f"host all all {net} scram-sha-256\n")
            log = stack.enter_context((tmp / "postgres.log").open("w"))
            proc = host.run(
                [
                    "runuser", "-u", str(pg.os_user), "--", str(pg.bin_dir / "postgres"),
                    "-D", str(pg.data_dir), "-p", "5432", "-c", f"listen_addresses={addr}",
                    "-c", "unix_socket_directories=", "-c", "max_connections=60",
                ],
                stdout=log,
                stderr=log,
            )  # fmt: skip
            wait_port(host, 5432, proc, timeout=30)
            root_dsn = f"postgresql://loadkit:{pg.password}@{addr}:5432"
            _sql(f"{root_dsn}/postgres", "CREATE DATABASE shop")
            _sql(
                f"{root_dsn}/shop",
                "CREATE TABLE orders (id int PRIMARY KEY, status text NOT NULL);"
                "INSERT INTO orders SELECT g, 'new' FROM generate_series(1, 200) g;"
                "CREATE ROLE shop_app LOGIN PASSWORD 'app-pw';"
                "GRANT SELECT, UPDATE ON orders TO shop_app;",
            )
            # the team's Toxiproxy: in front of their database and of their API
            tp_proc = host.run([str(binary), "-host", addr, "-port", "8474"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
            wait_port(host, 8474, tp_proc)
            for name, listen, upstream in (
                ("shop-db", 6432, 5432),
                ("shop-api", 8000, 8080),
                ("other-team", 9000, 8080),  # on their server, but not the system's to touch
            ):
                body = {
                    "name": name,
                    "listen": f"{addr}:{listen}",
                    "upstream": f"{addr}:{upstream}",
                }
                httpx.post(f"http://{addr}:8474/proxies", json=body, timeout=5).raise_for_status()
            flag = tmp / "maintenance.flag"
            service = host.run(
                [
                    sys.executable, "-m", "tests.chaos.system_service", "--bind", addr,
                    "--port", "8080", "--dsn", f"postgresql://shop_app:app-pw@{addr}:6432/shop",
                    "--flag", str(flag),
                ],
                cwd=ROOT,
                env={**os.environ, "PYTHONPATH": str(ROOT)},
                stderr=stack.enter_context((tmp / "service.log").open("w")),
            )  # fmt: skip
            wait_port(host, 8080, service)
            # containers no stack owns: one labelled for the shop (bridge network), one not
            image = img.role_image(img.ensure_image(client), "toxiproxy")
            network = stack.enter_context(bridge_network(client, f"{key}-net"))
            argv = ["toxiproxy-server", "-host", "0.0.0.0", "-port", "8474"]
            made.append(
                client.containers.run(
                    image, argv, name=f"{key}-api", labels={"app": f"shop-{key}"},
                    network=network.name, detach=True,
                )
            )  # fmt: skip
            made.append(
                client.containers.run(
                    image, argv, name=f"{key}-bystander", network_mode="none", detach=True
                )
            )
            for c in made:
                dk.wait_running(c)
            system = tmp / "shop.yaml"
            system.write_text(
                textwrap.dedent(
                    f"""
                    name: shop-{key}
                    allow: ["{net}"]
                    services:
                      shop: {{url: "http://{addr}:8000"}}
                    probes:
                      - {{name: health, url: "http://{addr}:8000/healthz"}}
                    toxiproxy:
                      url: http://{addr}:8474
                      proxies: [shop-api, shop-db]
                    docker:
                      labels: [app=shop-{key}]
                    postgres:
                      dsn: postgresql://loadkit@{addr}:5432/shop
                      password_env: {PG_PASSWORD_ENV}
                    commands:
                      maintenance:
                        inject: [touch, {flag}]
                        revert: [sh, -c, "sleep 1.5; rm -f {flag}"]
                        check: [test, "!", -e, {flag}]
                        timeout: 10s
                    """
                )
            )
            yield Foreign(
                host,
                key,
                f"{root_dsn}/shop",
                ToxiproxyClient(addr, 8474),
                flag,
                f"{key}-api",
                f"{key}-bystander",
                system,
                str(pg.password),
            )
        finally:
            for c in made:
                c.remove(force=True)
            host.close()  # stops PostgreSQL, Toxiproxy and the service before the data goes
            shutil.rmtree(pg.data_dir, ignore_errors=True)


def _state(foreign: Foreign) -> dict[str, Any]:
    """Everything a fault could have left, read from the components themselves."""
    client = dk.connect()
    try:
        containers = {
            n: client.containers.get(n).status for n in (foreign.container, foreign.bystander)
        }
    finally:
        client.close()
    tp = foreign.toxiproxy
    return {
        "toxics": {p: [t.name for t in tp.toxics(p)] for p in tp.proxies()},
        "disabled": [n for n, p in tp.proxies().items() if not p.enabled],
        "read_only": _sql(foreign.superuser_dsn, "SHOW default_transaction_read_only")[0][0],
        "auto_conf": [
            tuple(r)
            for r in _sql(
                foreign.superuser_dsn,
                "SELECT name, setting FROM pg_file_settings WHERE sourcefile LIKE '%auto.conf'",
            )
        ],
        "chaos_sessions": _sql(
            foreign.superuser_dsn,
            "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'loadkit-chaos-%'",
        )[0][0],
        "row_locks": _sql(
            foreign.superuser_dsn,
            "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE a.application_name LIKE 'loadkit-%' "
            "AND l.locktype IN ('tuple', 'transactionid')",
        )[0][0],
        "flag": foreign.flag.exists(),
        "containers": containers,
    }


CLEAN = {
    "toxics": {"shop-api": [], "shop-db": [], "other-team": []},
    "disabled": [],
    "read_only": "off",
    "auto_conf": [],
    "chaos_sessions": 0,
    "row_locks": 0,
    "flag": False,
}


def _clean(foreign: Foreign) -> dict[str, Any]:
    return {**CLEAN, "containers": {foreign.container: "running", foreign.bystander: "running"}}


def _scenario(tmp: Path, faults: str, name: str = "shop-gameday") -> Path:
    path = tmp / f"{name}.yaml"
    path.write_text(f"name: {name}\nsteady_state: {{before: false, after: false}}\n" + faults)
    return path


GAMEDAY = """
faults:
  - {name: slow-api, type: network.latency, target: shop-api, at: 2s, duration: 30s, latency: 50ms}
  - {name: hot-orders, type: postgres.row-locks, at: 2s, duration: 30s, table: orders,
     rows: [1, 2, 3]}
  - {name: read-only, type: postgres.read-only, at: 2s, duration: 30s}
  - {name: maintenance, type: command.run, target: maintenance, at: 2s, duration: 30s}
  - {name: freeze-all, type: container.pause, target: "name:*", count: all, at: 2s, duration: 30s}
"""


def _only(out: Path) -> Path:
    (run_dir,) = [d for d in out.iterdir() if d.is_dir()]
    return run_dir


def _wait_injected(run_dir: Path, n: int, proc: subprocess.Popen[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        events = read_events(run_dir / "events.jsonl") if run_dir.exists() else []
        if sum(1 for e in events if e.get("event") == "inject.end") >= n:
            return
        assert proc.poll() is None, f"the run ended early ({proc.returncode})"
        time.sleep(0.1)
    raise AssertionError(f"{n} faults not injected after {timeout}s: {events}")


def _kill_run(proc: subprocess.Popen[str], run_dir: Path) -> None:
    """SIGKILL the controller, and the Locust processes it started (their own sessions)."""
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=10)  # closes its pipes
    for p in psutil.process_iter(["cmdline"]):
        if str(run_dir) in " ".join(p.info["cmdline"] or []):
            p.kill()


def test_a_killed_game_day_on_a_foreign_system_is_rolled_back(
    foreign: Foreign, tmp_path: Path
) -> None:
    assert _state(foreign) == _clean(foreign)
    scenario = _scenario(tmp_path, GAMEDAY)
    profile = tmp_path / "profile.yaml"
    profile.write_text(PROFILE)
    out = tmp_path / "reports"
    proc = spawn_loadkit(
        "run", str(profile), "--system", str(foreign.system), "--chaos", str(scenario),
        "--out", str(out),
        env=foreign.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not out.exists() or not any(out.iterdir()):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.1)
        run_dir = _only(out)
        _wait_injected(run_dir, 5, proc, timeout=60)
        time.sleep(1.0)  # under load, mid-fault
        events = read_events(run_dir / "events.jsonl")
        ended = {e["id"]: e for e in events if e.get("event") == "inject.end"}
        assert {e["result"] for e in ended.values()} == {"ok"}, ended
        # the blast radius, journaled before anything was injected
        plan = {p["fault"]: p["targets"] for p in events[0]["plan"]}
        assert plan["freeze-all"][0].startswith(f"container {foreign.container} ")
        assert not any(foreign.bystander in t for t in plan["freeze-all"])
        assert "proxy shop-api" in plan["slow-api"][0]
        during = _state(foreign)
        _kill_run(proc, run_dir)
    finally:
        if proc.poll() is None:
            _kill_run(proc, _only(out))
    # in place while the controller lived: every fault, and nothing outside the system's set
    assert during["toxics"]["shop-api"] and not during["toxics"]["other-team"], during
    assert during["read_only"] == "on" and during["flag"], during
    assert during["chaos_sessions"] == 1 and during["row_locks"] > 0, during
    assert during["containers"] == {foreign.container: "paused", foreign.bystander: "running"}
    # the controller is gone: its sessions died with it; the rest stays until the rollback
    left = {i.fault for i in outstanding(read_events(run_dir / "events.jsonl"))}
    assert left == {"slow-api", "hot-orders", "read-only", "maintenance", "freeze-all"}
    rollback = loadkit("chaos", "rollback", str(run_dir), env=foreign.env)
    assert rollback.returncode == 0, rollback.stdout + rollback.stderr
    for fault in ("slow-api", "read-only", "maintenance", "freeze-all", "hot-orders"):
        assert f"reverted {fault}" in rollback.stdout, rollback.stdout
    assert _state(foreign) == _clean(foreign)
    assert outstanding(read_events(run_dir / "events.jsonl")) == []
    # the shop serves again through its own proxy, writes included
    base = f"http://{foreign.host.address}:8000"
    assert httpx.post(f"{base}/orders/1/pay", timeout=5).status_code == 200
    again = loadkit("chaos", "rollback", str(run_dir), env=foreign.env)
    assert again.returncode == 0 and "nothing to roll back" in again.stdout


def test_dry_run_shows_the_blast_radius_and_outside_targets_are_refused(
    foreign: Foreign, tmp_path: Path
) -> None:
    scenario = _scenario(tmp_path, GAMEDAY)
    dry = loadkit(
        "chaos", "run", str(scenario), "--system", str(foreign.system), "--dry-run",
        "--out", str(tmp_path / "reports"), env=foreign.env, columns=250,
    )  # fmt: skip
    assert dry.returncode == 0, dry.stderr
    text = dry.stdout
    assert f"container {foreign.container} (" in text
    assert "left alone:" in text and "outside the scope" in text
    assert foreign.bystander not in text
    assert f"proxy shop-api ({foreign.host.address}:8000 -> " in text
    assert "rows of orders where id in (1, 2, 3)" in text
    assert "command maintenance: touch" in text
    assert "every target is allowlisted" in text
    assert not (tmp_path / "reports").exists()  # a dry run writes nothing
    outside = _scenario(
        tmp_path,
        """
faults:
  - {name: theirs, type: network.latency, target: other-team, at: 1s, duration: 1s}
  - {name: bystander, type: container.pause, target: "name:*-bystander", at: 1s, duration: 1s}
  - {name: crash, type: postgres.crash, at: 1s, duration: 1s}
  - {name: wallets, type: wallet.maintenance, at: 1s, duration: 1s}
""",
        name="outside",
    )
    refused = loadkit(
        "chaos", "run", str(outside), "--system", str(foreign.system),
        "--out", str(tmp_path / "reports"), env=foreign.env, columns=300,
    )  # fmt: skip
    assert refused.returncode == 4, refused.stdout + refused.stderr
    err = refused.stderr
    assert "'other-team' is not one of the system's proxies" in err
    assert "matches only containers outside the blast radius" in err
    assert "loadkit never stops a server it did not start" in err
    assert "wallet and process faults need the reference stack" in err
    assert _state(foreign) == _clean(foreign)


def test_a_second_ctrl_c_does_not_abandon_the_rollback(foreign: Foreign, tmp_path: Path) -> None:
    scenario = _scenario(
        tmp_path,
        """
faults:
  - {name: maintenance, type: command.run, target: maintenance, at: 1s, duration: 30s}
  - {name: slow-db, type: network.latency, target: shop-db, at: 1s, duration: 30s, latency: 20ms}
""",
    )
    profile = tmp_path / "profile.yaml"
    profile.write_text(PROFILE)
    out = tmp_path / "reports"
    proc = spawn_loadkit(
        "run", str(profile), "--system", str(foreign.system), "--chaos", str(scenario),
        "--out", str(out), env=foreign.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not out.exists() or not any(out.iterdir()):
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.1)
        run_dir = _only(out)
        _wait_injected(run_dir, 2, proc, timeout=60)
        proc.send_signal(signal.SIGINT)
        # the command's revert takes 1.5 s: the second Ctrl-C lands while it runs
        deadline = time.monotonic() + 30
        while not any(
            e.get("event") == "revert.begin" for e in read_events(run_dir / "events.jsonl")
        ):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            _kill_run(proc, _only(out))
    assert proc.returncode == 130, stderr
    events = read_events(run_dir / "events.jsonl")
    ends = [e for e in events if e.get("event") == "revert.end"]
    assert {e["result"] for e in ends} == {"ok"} and len(ends) == 2, events
    assert events[-1]["event"] == "scenario.end", events[-1]
    assert "Ctrl-C does not stop that" in stderr  # the second one came during the rollback
    assert "faults still in place" not in stderr  # and nothing was left to roll back
    assert _state(foreign) == _clean(foreign)
    record = json.loads((run_dir / "run.json").read_text())
    assert record["status"] == "interrupted" and record["scenario"]["unreverted"] == []


def test_two_controllers_on_one_system(foreign: Foreign, tmp_path: Path) -> None:
    """The two-controllers bug on a system: while A holds the database read-only, B would
    record "on" as its baseline and put it back. B is refused (exit 4, naming A) before it
    records or injects anything; A restores the system's own baseline."""
    first = _scenario(
        tmp_path,
        "faults:\n  - {name: read-only, type: postgres.read-only, at: 500ms, duration: 5s}\n",
        name="first",
    )
    second = _scenario(
        tmp_path,
        "faults:\n"
        "  - {name: read-only-too, type: postgres.read-only, at: 500ms, duration: 2s}\n"
        "  - {name: slow-api, type: network.latency, target: shop-api, at: 500ms, duration: 2s}\n",
        name="second",
    )
    where = ("--system", str(foreign.system), "--no-dashboard")
    out_a, out_b = tmp_path / "a", tmp_path / "b"
    proc = spawn_loadkit(
        "chaos", "run", str(first), *where, "--out", str(out_a),
        env=foreign.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not out_a.exists() or not any(out_a.iterdir()):
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        run_a = _only(out_a)
        _wait_injected(run_a, 1, proc, timeout=30)
        refused = loadkit(
            "chaos", "run", str(second), *where, "--out", str(out_b), env=foreign.env,
            columns=300,
        )  # fmt: skip
        assert refused.returncode == 4, refused.stdout + refused.stderr
        text = " ".join(refused.stderr.split())
        assert "another chaos controller holds" in text and f"pid {proc.pid} " in text
        assert str(run_a) in text and f"system-shop-{foreign.key}.lock" in text
        during = _state(foreign)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            _kill_run(proc, out_a)
    assert proc.returncode == 0, out + err
    # B touched nothing: no toxic of its own while A ran, and no journal of anything
    assert during["read_only"] == "on" and during["toxics"]["shop-api"] == [], during
    assert not any((d / "events.jsonl").exists() for d in out_b.glob("*")), list(out_b.glob("*"))
    assert _state(foreign) == _clean(foreign)  # A put back the system's own "off"
    assert outstanding(read_events(run_a / "events.jsonl")) == []
