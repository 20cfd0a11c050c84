"""JSON Schemas of loadkit's spec files, for editors: completion, hover help and red squiggles.

One schema per kind of file (``profile``, ``scenario``, ``slo``, ``system``; a new kind is one
more entry in :data:`KINDS` and one more module), shipped as
``loadkit/schemas/<kind>.schema.json``. They are
built from the readers' own key lists and catalogs (:mod:`loadkit.schemas.build`), so a key the
reader accepts cannot be missing from its schema. A YAML file names its schema in its first
line, which the YAML language server (VS Code's YAML extension, and others) follows::

    # yaml-language-server: $schema=../loadkit/schemas/profile.schema.json

    header_line("profile", Path("profiles/smoke.yaml"))  # that line, with the right relative path

The readers stay the authority: a schema cannot see everything (duplicate names, a ``mix`` naming
an unknown journey, overlapping faults), so ``loadkit validate`` is what a file must pass.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from loadkit.spec.modeline import MODELINE, SCHEMA_FOLDER, schema_file
from loadkit.spec.modeline import modeline as header_line

#: every kind of spec file with a schema → the module that builds it
KINDS: dict[str, str] = {
    "profile": "loadkit.schemas.profile",
    "scenario": "loadkit.schemas.scenario",
    "slo": "loadkit.schemas.slo",
    "system": "loadkit.schemas.system",
}
FOLDER = SCHEMA_FOLDER


def schema_path(kind: str) -> Path:
    """Where the shipped schema of ``kind`` is: ``loadkit/schemas/profile.schema.json``."""
    if kind not in KINDS:
        raise ValueError(f"no schema for {kind!r}; kinds: {', '.join(KINDS)}")
    return schema_file(kind)


def load_schema(kind: str) -> dict[str, Any]:
    """The shipped schema of ``kind``, as a dict."""
    data: dict[str, Any] = json.loads(schema_path(kind).read_text(encoding="utf-8"))
    return data


__all__ = ["FOLDER", "KINDS", "MODELINE", "header_line", "load_schema", "schema_path"]
