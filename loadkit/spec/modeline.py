"""Where the JSON Schemas of spec files are shipped, and the modeline that names one in a file.

Editors with the YAML language server (VS Code's YAML extension and others) read a comment line
naming the file's schema; loadkit writes it at the top of every file it ships or generates::

    modeline("profile", Path("profiles/smoke.yaml"))
    # '# yaml-language-server: $schema=../loadkit/schemas/profile.schema.json'
"""

from __future__ import annotations

import os
from pathlib import Path

#: how a YAML file names its schema (the YAML language server's modeline)
MODELINE = "# yaml-language-server: $schema="
#: the shipped schemas: ``loadkit/schemas/<kind>.schema.json``
SCHEMA_FOLDER = Path(__file__).parents[1] / "schemas"


def schema_file(kind: str) -> Path:
    """The shipped schema of ``kind`` (``profile``, ``scenario``, ``slo``, ``system``)."""
    return SCHEMA_FOLDER / f"{kind}.schema.json"


def modeline(kind: str, file: Path, schema: Path | None = None) -> str:
    """The line naming ``schema`` (default: the shipped one of ``kind``) for a YAML ``file``, by
    its path relative to the file's folder."""
    target = (schema or schema_file(kind)).absolute()
    relative = os.path.relpath(target, file.absolute().parent)
    return MODELINE + Path(relative).as_posix()
