"""The facade and its backends: the manifest chooses the backend, each runs the same wallet
command line with its own interpreter, and an unknown backend is a usage error. (The backends
themselves run for real in ``test_reference.py`` and ``test_docker.py``.)"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from loadkit.errors import ConfigError
from loadkit.stack.backends import BACKENDS, backend_class
from loadkit.stack.backends.docker import DockerBackend
from loadkit.stack.backends.process import ProcessBackend
from loadkit.stack.manifest import StackManifest, WalletInfo
from loadkit.stack.reference import ReferenceStack, StackOptions

WALLET = WalletInfo(
    "wallet-1", 8001, "client-wallet-1", 9001, "wallet-1-postgres", "postgresql://x"
)


def _written(tmp_path: Path, backend: str) -> Path:
    StackManifest(stack_dir=str(tmp_path), created_at=0.0, backend=backend).write()
    return tmp_path


@pytest.mark.parametrize(
    ("name", "cls", "python"),
    [("process", ProcessBackend, sys.executable), ("docker", DockerBackend, "python3")],
)
def test_attach_takes_the_backend_from_the_manifest(
    tmp_path: Path, name: str, cls: type, python: str
) -> None:
    stack = ReferenceStack.attach(_written(tmp_path, name))
    assert type(stack.backend) is cls and stack.backend.name == name
    assert backend_class(name) is cls
    argv = stack._wallet_argv(WALLET, StackOptions(unsafe="ack-before-commit"))
    assert argv[:4] == [python, "-m", "loadkit.wallet", "serve"]
    assert argv[-2:] == ["--unsafe", "ack-before-commit"]


def test_an_unknown_backend_is_a_usage_error(tmp_path: Path) -> None:
    assert set(BACKENDS) == {"process", "docker"}
    with pytest.raises(ConfigError, match="expected one of process, docker, got 'vm'"):
        ReferenceStack.attach(_written(tmp_path, "vm"))
    with pytest.raises(ConfigError, match="--backend: expected process or docker"):
        ReferenceStack.up(tmp_path / "s", StackOptions(backend="vm"))
    assert not (tmp_path / "s").exists()


def test_a_stopped_stack_of_either_backend_stops_again(tmp_path: Path) -> None:
    """``down`` on a manifest whose components are all gone: nothing to stop, manifest gone."""
    stack = ReferenceStack.attach(_written(tmp_path, "process"))
    assert not stack.any_alive()
    assert stack.down() == []
    assert not (tmp_path / "manifest.json").exists()
