"""Helpers shared by the test modules: the real ``loadkit`` command in a subprocess.

``loadkit(*args)`` runs ``python -m loadkit`` from this checkout (its directory first on
``PYTHONPATH``, so ``tests.*`` helper modules import too) at a fixed terminal width::

    run = loadkit("validate", "profiles/smoke.yaml", columns=80)
    assert run.returncode == 0, run.stderr
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).parents[1]


def _env(columns: int, env: dict[str, str] | None) -> dict[str, str]:
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "COLUMNS": str(columns), "PYTHONPATH": path, **(env or {})}


def loadkit(
    *args: str,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 240,
    columns: int = 120,
) -> subprocess.CompletedProcess[str]:
    """``loadkit ARGS…`` to its end; stdout and stderr captured as text."""
    return subprocess.run(
        [sys.executable, "-m", "loadkit", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd or ROOT,
        env=_env(columns, env),
    )


def spawn_loadkit(
    *args: str,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    columns: int = 120,
    **popen: Any,
) -> subprocess.Popen[str]:
    """``loadkit ARGS…`` started in the background (signal it, wait for it)."""
    return subprocess.Popen(
        [sys.executable, "-m", "loadkit", *args],
        cwd=cwd or ROOT,
        text=True,
        env=_env(columns, env),
        **popen,
    )
