"""Container faults against real containers that are not loadkit's: a little "compose stack" of
three labelled host-network containers and one with no network at all, and a container on a
bridge network (any network mode works: every action goes through the engine), driven through
the Docker engine, in the scope a system file's label selector gives; containers outside that
scope are never touched."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from loadkit.chaos.catalog import make_fault
from loadkit.chaos.env import StackEnv, SystemEnv
from loadkit.chaos.faults import docker as faults
from loadkit.chaos.faults.base import ChaosEnv
from loadkit.chaos.scenario import load_scenario
from loadkit.errors import ConfigError, ExitCode
from loadkit.spec.errors import SpecError
from loadkit.stack import docker as dk
from loadkit.stack import docker_image as img
from loadkit.stack.manifest import StackManifest
from loadkit.stack.ports import free_port
from loadkit.stack.reference import ReferenceStack
from loadkit.stack.system import Service, System
from loadkit.stack.system_chaos import DockerSection
from tests.chaos.bridge import address, bridge_network

ROOT = Path(__file__).parents[3]
NO_ENGINE = "unix:///nonexistent/loadkit-test/docker.sock"


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    c = dk.connect()
    yield c
    c.close()


@pytest.fixture(scope="module")
def app(client: Any) -> Iterator[str]:
    """Three host-network containers labelled ``app=<id>`` (toxiproxy servers on free ports,
    the smallest image the stack builds) and one with no network at all; the label's value."""
    image = img.role_image(img.ensure_image(client), "toxiproxy")
    key = f"lk-test-{uuid.uuid4().hex[:8]}"
    made = []
    try:
        for i in range(3):
            made.append(
                client.containers.run(
                    image,
                    ["toxiproxy-server", "-host", "127.0.0.1", "-port", str(free_port())],
                    name=f"{key}-api-{i}",
                    labels={"app": key, "role": "api"},
                    network_mode="host",
                    detach=True,
                )
            )
        made.append(
            client.containers.run(
                image,
                ["toxiproxy-server", "-host", "127.0.0.1", "-port", "8474"],
                name=f"{key}-isolated",
                labels={"app": key, "role": "isolated"},
                network_mode="none",
                detach=True,
            )
        )
        for c in made:
            dk.wait_running(c)
        yield key
    finally:
        for c in made:
            c.remove(force=True)


def system_env(app: str, patterns: tuple[str, ...] = ()) -> SystemEnv:
    """The containers labelled ``app=<app>``, as a system file's docker: section names them."""
    system = System(
        name=app,
        services=(Service("svc", ("http://127.0.0.1:1",)),),
        docker=DockerSection(labels=(f"app={app}",)),
        source="test.yaml",
    )
    return SystemEnv(system, tag=f"t{uuid.uuid4().hex[:6]}", patterns=patterns)


@pytest.fixture
def env(app: str) -> Iterator[ChaosEnv]:
    with system_env(app) as e:
        yield e


def states(client: Any, key: str, role: str = "api") -> dict[str, str]:
    found = client.containers.list(all=True, filters={"label": [f"app={key}", f"role={role}"]})
    return {c.name: c.status for c in found}


def test_kill_two_of_three_then_start_them_again(client: Any, app: str, env: ChaosEnv) -> None:
    fault = make_fault(env, "container.kill", "label:role=api", count=2)
    with fault:
        assert sorted(states(client, app).values()) == ["exited", "exited", "running"]
        chosen = [c["name"] for c in fault.state["containers"]]
        assert len(chosen) == 2 and all(states(client, app)[n] == "exited" for n in chosen)
    assert set(states(client, app).values()) == {"running"}


def test_pause_a_share_by_name_and_rollback_from_the_journal_alone(
    client: Any, app: str, env: ChaosEnv
) -> None:
    fault = make_fault(env, "container.pause", f"name:{app}-api-*", count="50%")
    fault.state = fault.prepare()
    fault.state.update(fault.apply(fault.state) or {})  # injected; its controller "dies" here
    assert sorted(states(client, app).values()) == ["paused", "paused", "running"]
    # what `loadkit chaos rollback` does: the fault type's restore, from the journaled state
    detail = faults.Pause.restore(env, dict(fault.state))
    assert detail.count("unpaused") == 2
    assert set(states(client, app).values()) == {"running"}
    assert faults.Pause.restore(env, dict(fault.state)) == "already running"  # idempotent


def test_stop_and_restart(client: Any, app: str, env: ChaosEnv) -> None:
    with make_fault(env, "container.stop", f"name:{app}-api-0", grace="2s"):
        assert states(client, app)[f"{app}-api-0"] == "exited"
    assert set(states(client, app).values()) == {"running"}
    before = client.containers.get(f"{app}-api-1").attrs["State"]["StartedAt"]
    with make_fault(env, "container.restart", f"name:{app}-api-1", grace="2s"):
        pass
    after = client.containers.get(f"{app}-api-1")
    assert after.status == "running" and after.attrs["State"]["StartedAt"] != before


def test_cpu_throttling_and_its_reset(client: Any, app: str, env: ChaosEnv) -> None:
    # cgroup v1 with the cpu controller here: the engine enforces CFS quotas (docs/docker.md)
    assert faults.cpu_quota_supported()
    name = f"{app}-api-2"
    with make_fault(env, "container.cpu", f"name:{name}", cpus=0.2):
        host = client.containers.get(name).attrs["HostConfig"]
        assert (host["CpuQuota"], host["CpuPeriod"]) == (20_000, 100_000)
    host = client.containers.get(name).attrs["HostConfig"]
    assert host["CpuQuota"] <= 0  # no limit again


def _serves(ip: str) -> bool:
    try:
        return httpx.get(f"http://{ip}:8474/version", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def test_every_container_fault_works_on_a_bridge_network(client: Any) -> None:
    """A team's containers are usually on a bridge network (compose's default), not the
    host's: every fault type acts through the engine, and each container comes back on its
    network, at its address, serving."""
    image = img.role_image(img.ensure_image(client), "toxiproxy")
    key = f"lk-bridge-{uuid.uuid4().hex[:8]}"
    with bridge_network(client, f"{key}-net") as net, system_env(key) as env:
        container = client.containers.run(
            image,
            ["toxiproxy-server", "-host", "0.0.0.0", "-port", "8474"],
            name=f"{key}-api",
            labels={"app": key},
            network=net.name,
            detach=True,
        )
        dk.wait_running(container)
        ip = address(container, net)
        assert ip and _wait(lambda: _serves(ip))
        during: dict[str, tuple[str, dict[str, object]]] = {
            "container.kill": ("exited", {}),
            "container.stop": ("exited", {"grace": "1s"}),
            "container.pause": ("paused", {}),
            "container.cpu": ("running", {"cpus": 0.2}),
        }
        for kind, (status, params) in during.items():
            with make_fault(env, kind, "name:*", count="all", **params) as fault:
                container.reload()
                assert container.status == status, kind
                assert [c["name"] for c in fault.state["containers"]] == [f"{key}-api"]
                if kind == "container.cpu":
                    assert container.attrs["HostConfig"]["CpuQuota"] == 20_000
            assert address(container, net) == ip, kind
            assert container.status == "running" and _wait(lambda: _serves(ip)), kind
        started = container.attrs["State"]["StartedAt"]
        with make_fault(env, "container.restart", f"name:{key}-api", grace="1s"):
            pass
        assert address(container, net) == ip and container.attrs["State"]["StartedAt"] != started
        assert _wait(lambda: _serves(ip))


def _wait(check: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def test_safety_refuses_what_it_may_not_touch(app: str, tmp_path: Path) -> None:
    env = system_env(app)
    assert faults.refusals(env, f"label:app={app}") == []  # the isolated one too: no network
    inside, outside = faults.resolve(env, "name:*")
    assert sorted(c.name for c in inside) == sorted(
        [*(f"{app}-api-{i}" for i in range(3)), f"{app}-isolated"]
    )
    assert all(c.labels.get("app") != app for c in outside)
    narrowed = system_env(app, ("shop-*",))  # safety.allow narrows a system's set
    (why,) = faults.refusals(narrowed, f"name:{app}-api-*")
    assert "matches only containers outside the blast radius" in why
    assert f"{app}-api-0" in why and "named shop-*" in why
    assert faults.refusals(env, f"name:{app}-nothing-*") == [
        f"no container matches 'name:{app}-nothing-*'"
    ]
    # the reference stack's scope is its own labelled containers: the user's are outside it
    stack = StackEnv(ReferenceStack(StackManifest(stack_dir=str(tmp_path), created_at=0.0)))
    (why,) = faults.refusals(stack, f"name:{app}-api-*")
    assert "outside the blast radius" in why and "io.loadkit.stack=" in why
    widened = StackEnv(stack.stack, patterns=(f"{app}-api-*",))  # unless safety.allow names them
    assert faults.refusals(widened, f"name:{app}-api-*") == []
    bare = faults.refusals(stack, "wallet-1")
    assert len(bare) == 1 and "--backend docker" in bare[0]


def test_count_all_on_every_container_touches_only_the_scope(client: Any, app: str) -> None:
    before = {c.name: c.status for c in client.containers.list(all=True)}
    with system_env(app) as env, make_fault(env, "container.pause", "name:*", count="all"):
        now = {c.name: c.status for c in client.containers.list(all=True)}
        mine = {n for n in now if n.startswith(f"{app}-")}
        assert {now[n] for n in mine} == {"paused"}
        # nothing else on the engine was paused by it (other tests' containers come and go)
        assert all(now[n] != "paused" or before.get(n) == "paused" for n in now if n not in mine)
    assert set(states(client, app).values()) == {"running"}


def test_blast_radius_and_parameters() -> None:
    assert [faults.how_many("30%", n) for n in (1, 3, 10)] == [1, 1, 3]
    assert faults.how_many("all", 4) == 4 and faults.how_many(5, 2) == 2
    assert faults.how_many(1, 0) == 0
    assert faults._signal_name("hup") == "SIGHUP" and faults._signal_name(9) == "SIGKILL"
    for bad in ("0%", "150%", 0, "lots"):
        with pytest.raises(Exception, match="expected"):
            faults._count(bad)
    with pytest.raises(ConfigError, match="signal"):
        make_fault(
            StackEnv(ReferenceStack(StackManifest(stack_dir="/tmp/x", created_at=0.0))),
            "container.kill",
            "name:x",
            signal="SIGNOPE",
        )


def test_a_bad_selector_is_a_file_error(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(
        textwrap.dedent(
            """
            name: bad
            faults:
              - {name: k, type: container.kill, target: "image:nginx", at: 1s, duration: 1s}
            """
        )
    )
    with pytest.raises(SpecError) as caught:
        load_scenario(path)
    assert "s.yaml:4" in str(caught.value) and "name:PATTERN" in str(caught.value)


def test_no_engine_exits_3_before_anything_is_injected(tmp_path: Path) -> None:
    stack_dir = tmp_path / "stack"
    StackManifest(stack_dir=str(stack_dir), created_at=0.0, status="running").write()
    scenario = tmp_path / "s.yaml"
    scenario.write_text(
        "name: gameday\nfaults:\n"
        "  - {name: k, type: container.kill, target: 'label:role=api', at: 1s, duration: 2s}\n"
    )
    out = tmp_path / "out"
    done = subprocess.run(
        [
            *(sys.executable, "-m", "loadkit", "chaos", "run", str(scenario), "--no-dashboard"),
            *("--stack-dir", str(stack_dir), "--out", str(out)),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env={**os.environ, "DOCKER_HOST": NO_ENGINE, "COLUMNS": "200"},
    )
    assert done.returncode == ExitCode.ENVIRONMENT, done.stdout + done.stderr
    assert done.stderr.strip().splitlines() == [
        f"error: Docker engine not reachable at {NO_ENGINE}: no such file or directory; "
        "start dockerd or set DOCKER_HOST"
    ]
    assert not out.exists()
