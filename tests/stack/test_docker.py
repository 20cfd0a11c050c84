"""``loadkit stack up|status|down --backend docker`` against the real engine: the same reference
stack as containers (host network), images built here once per content hash, and exit 3 with
one line when no engine answers. Also: the shipped Dockerfile and compose file describe the same
containers the backend starts."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import httpx
import yaml

from loadkit.stack import docker as dk
from loadkit.stack import docker_image as img
from loadkit.stack.backends.docker import DockerBackend
from loadkit.stack.reference import ReferenceStack
from tests.support import loadkit as _run_loadkit

ROOT = Path(__file__).parents[2]
NO_ENGINE = "unix:///nonexistent/loadkit-test/docker.sock"


loadkit = functools.partial(_run_loadkit, columns=200)


def labelled(stack_dir: Path) -> list[Any]:
    client = dk.connect()
    try:
        return list(dk.stack_containers(client, stack_dir))
    finally:
        client.close()


def test_no_engine_exits_3_with_one_line_and_starts_nothing(tmp_path: Path) -> None:
    where = tmp_path / "stack"
    for command in (
        ["stack", "up", "--backend", "docker", "--dir", str(where)],
        ["stack", "status", "--backend", "docker", "--dir", str(where)],
        ["stack", "down", "--backend", "docker", "--dir", str(where)],
    ):
        done = loadkit(*command, env={"DOCKER_HOST": NO_ENGINE})
        assert done.returncode == 3, (command, done.stdout, done.stderr)
        lines = done.stderr.strip().splitlines()
        assert lines == [
            f"error: Docker engine not reachable at {NO_ENGINE}: no such file or directory; "
            "start dockerd or set DOCKER_HOST"
        ], done.stderr
        assert done.stdout.strip() == ""
    assert not where.exists()
    assert labelled(where) == []  # the real engine has no container of that stack either


def test_doctor_reports_the_engine_in_one_line() -> None:
    done = loadkit("doctor", "--json", env={"DOCKER_HOST": NO_ENGINE})
    checks = {c["name"]: c for c in json.loads(done.stdout)}
    assert not checks["docker engine"]["ok"]
    assert "not reachable" in checks["docker engine"]["detail"]
    assert "\n" not in checks["docker engine"]["detail"]
    found = {c["name"]: c for c in json.loads(loadkit("doctor", "--json").stdout)}
    assert found["docker engine"]["ok"], found["docker engine"]
    assert "storage driver" in found["docker engine"]["detail"]


def test_stack_up_status_down_as_containers(tmp_path: Path) -> None:
    where = tmp_path / "stack"
    up = loadkit(
        "stack", "up", "--backend", "docker", "--dir", str(where), "--instances", "1", "--json"
    )
    try:
        assert up.returncode == 0, up.stderr
        status = json.loads(up.stdout)
        assert status["backend"] == "docker" and status["healthy"], status
        names = {c["name"]: c for c in status["components"]}
        assert set(names) == {"postgres", "toxiproxy", "wallet-1"}
        for component, c in names.items():
            assert c["container"] == dk.container_name(where, component)
            assert c["state"] == "running"
        containers = {c.labels[dk.LABEL_COMPONENT]: c for c in labelled(where)}
        assert set(containers) == set(names)
        for c in containers.values():
            assert c.attrs["HostConfig"]["NetworkMode"] == "host"
            assert c.attrs["HostConfig"]["RestartPolicy"]["Name"] in ("", "no")
        # the manifest's pid is the container's main process as the host sees it
        stack = ReferenceStack.attach(where)
        assert isinstance(stack.backend, DockerBackend)
        wallet = stack.wallet("wallet-1")
        assert wallet.process is not None
        assert wallet.process.pid == containers["wallet-1"].attrs["State"]["Pid"]
        # a real transfer path: login through the client-side proxy, served by the container
        r = httpx.post(
            f"{wallet.info.client_url}/v1/login",
            json={"username": "user00001", "password": stack.password},
            timeout=10,
        )
        assert r.status_code == 200, r.text
        # crash and start again through the same handle the chaos faults use
        assert wallet.kill()
        dk.settle(containers["wallet-1"])  # the engine notices a moment after the kernel
        assert containers["wallet-1"].status == "exited"
        wallet.start()
        assert wallet.ready() and ReferenceStack.attach(where).status()["healthy"]

        again = loadkit("stack", "status", "--dir", str(where))
        assert again.returncode == 0, again.stderr
        assert "wallet-1" in again.stdout
    finally:
        down = loadkit("stack", "down", "--dir", str(where))
    assert down.returncode == 0, down.stderr
    assert "stopped wallet-1, toxiproxy, postgres" in down.stdout
    assert labelled(where) == []
    assert not (where / "manifest.json").exists()


def test_images_are_built_once_per_content() -> None:
    client = dk.connect()
    try:
        tag = img.ensure_image(client)  # built by now (the stack tests above) or built here
        assert tag == img.image_tag() and tag.startswith(f"{img.IMAGE_REPO}:")
        ids = {r: client.images.get(img.role_image(tag, r)).id for r in img.ROLES}
        assert img.ensure_image(client) == tag
        assert {r: client.images.get(img.role_image(tag, r)).id for r in img.ROLES} == ids
        sizes = {r: client.images.get(img.role_image(tag, r)).attrs["Size"] for r in img.ROLES}
        # each image holds only what its container runs (vfs copies an image per container)
        assert sizes["toxiproxy"] < sizes["postgres"] < sizes["wallet"] < 150e6, sizes
        assert img.role_image("my-own-image", "wallet") == "my-own-image"
    finally:
        client.close()


def test_container_names_and_selectors() -> None:
    a, b = dk.container_name("/tmp/a", "wallet-1"), dk.container_name("/tmp/b", "wallet-1")
    assert a != b and a.endswith("-wallet-1") and a.startswith("loadkit-")
    assert dk.parse_selector("name:shop-*") == ("name", "shop-*")
    assert dk.parse_selector("label:com.docker.compose.service=api") == (
        "label",
        "com.docker.compose.service=api",
    )
    assert dk.parse_selector("wallet-1") == ("component", "wallet-1")


def test_compose_file_describes_the_backends_containers() -> None:
    compose = yaml.safe_load((ROOT / "docker" / "compose.yaml").read_text())
    services = compose["services"]
    # what `stack up --backend docker --instances 2` starts, plus the one-shot seed
    assert set(services) == {"postgres", "toxiproxy", "wallet-1", "wallet-2", "seed"}
    for name, service in services.items():
        assert service["network_mode"] == "host", name
        assert service["image"] == "loadkit-stack", name
    pg = services["postgres"]["command"]
    assert pg[0] == "loadkit-postgres" and "listen_addresses=127.0.0.1" in pg
    assert services["postgres"]["user"] == f"{img.PG_UID}:{img.PG_UID}"
    proxies = services["toxiproxy"]["command"][2]
    assert "toxiproxy-server -host 127.0.0.1" in proxies
    for i in (1, 2):
        assert f'"name": "wallet-{i}-postgres"' in proxies
        assert f'"name": "client-wallet-{i}"' in proxies
        argv = services[f"wallet-{i}"]["command"]
        assert argv[:5] == ["python3", "-m", "loadkit.wallet", "serve", "--host"]
        assert argv[argv.index("--name") + 1] == f"wallet-{i}"
        assert services[f"wallet-{i}"]["environment"]["LOADKIT_WALLET_SECRET"]
    # every address is loopback
    text = (ROOT / "docker" / "compose.yaml").read_text()
    assert "0.0.0.0" not in text and "network_mode: bridge" not in text


def test_dockerfile_and_the_local_recipe_agree() -> None:
    dockerfile = (ROOT / "docker" / "Dockerfile").read_text()
    assert "FROM python:3.11-slim" in dockerfile
    assert "COPY docker/loadkit-postgres /usr/local/bin/loadkit-postgres" in dockerfile
    assert (ROOT / "docker" / "loadkit-postgres").read_text() == img.POSTGRES_ENTRYPOINT
    for dist in img.WALLET_REQUIREMENTS:
        assert dist in dockerfile, dist
