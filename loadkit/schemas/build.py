"""Build the shipped schemas from the readers, and write them (``python -m loadkit.schemas.build``).

Run it after changing what a reader accepts; a test fails while a shipped schema differs from
what this builds::

    build("profile")["required"]  # ['stages', 'journeys']
    write()                       # loadkit/schemas/{profile,scenario,slo,system}.schema.json
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path
from typing import Any

from loadkit.schemas import FOLDER, KINDS


def build(kind: str) -> dict[str, Any]:
    """The schema of ``kind`` as the readers describe it today."""
    module = importlib.import_module(KINDS[kind])
    schema: dict[str, Any] = getattr(module, f"{kind}_schema")()
    return schema


def render(kind: str) -> str:
    """The schema's file text (stable: two-space indents, keys in the order built)."""
    return json.dumps(build(kind), indent=2, ensure_ascii=False) + "\n"


def write(folder: Path = FOLDER) -> list[Path]:
    """Write every schema into ``folder``; the paths written."""
    written = []
    for kind in KINDS:
        path = folder / f"{kind}.schema.json"
        path.write_text(render(kind), encoding="utf-8")
        written.append(path)
    return written


if __name__ == "__main__":
    for path in write(Path(sys.argv[1]) if len(sys.argv) > 1 else FOLDER):
        print(path)
