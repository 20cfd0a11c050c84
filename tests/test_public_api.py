"""The public surface: everything in ``loadkit.__all__`` resolves, and importing it all never
pulls in gevent (the orchestrator must not)."""

from __future__ import annotations

import subprocess
import sys

import loadkit


def test_all_names_resolve() -> None:
    for name in loadkit.__all__:
        assert getattr(loadkit, name) is not None, name
    assert sorted(loadkit.__all__) == loadkit.__all__


def test_import_is_gevent_free() -> None:
    code = (
        "import sys, loadkit\n"
        "[getattr(loadkit, n) for n in loadkit.__all__]\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('gevent', 'locust')]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
