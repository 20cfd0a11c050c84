"""``loadkit validate``: check spec files on their own, whatever kind they are.

The kind is told by the top-level keys: a profile has ``stages``, a chaos scenario ``faults`` (or
``timeline``), an SLO file ``objectives``::

    validate_file("profiles/double11.yaml")
    # "profiles/double11.yaml: profile 'double11': 6 stages, 40m …"
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from pathlib import Path

from loadkit.spec.errors import Problem, SpecError
from loadkit.spec.loader import Document, load_document

#: a key that tells the kind of a file → that kind
KIND_KEYS = {
    "stages": "profile",
    "faults": "scenario",
    "timeline": "scenario",
    "objectives": "slo",
    "services": "system",
}


def validate_file(path: str | Path) -> str:
    """Validate one file: a one-line summary when it is fine, else ``SpecError`` (all problems)."""
    doc = load_document(path)
    kind = detect_kind(doc)
    if kind == "profile":
        from loadkit.profile import read

        return read.summary(read.read_profile(doc), doc.file)
    if kind == "scenario":
        # imported here: the chaos package imports loadkit.spec's leaf modules
        from loadkit.chaos.spec import read_scenario, summary

        return summary(read_scenario(doc), doc.file)
    if kind == "system":
        from loadkit.stack import system

        return system.summary(system.read_system(doc), doc.file)
    from loadkit.gate import slo

    return slo.summary(slo.read_slo(doc))


def validate_files(paths: Iterable[str | Path]) -> list[str]:
    """Validate every file; their summaries, or one ``SpecError`` with the problems of all."""
    summaries: list[str] = []
    problems: list[Problem] = []
    for path in paths:
        try:
            summaries.append(validate_file(path))
        except SpecError as exc:
            problems.extend(exc.problems)
    if problems:
        raise SpecError(problems)
    return summaries


def detect_kind(doc: Document) -> str:
    """``profile``, ``scenario`` or ``slo`` from the top-level keys; a ``SpecError`` otherwise."""
    for key in doc.root.items:
        if key in KIND_KEYS:
            return KIND_KEYS[key]
    for key in doc.root.items:  # a misspelt 'stages' still makes a profile, reported as such
        if close := difflib.get_close_matches(key, KIND_KEYS, n=1, cutoff=0.6):
            return KIND_KEYS[close[0]]
    mark = doc.root.mark
    message = (
        "cannot tell what this file is: a profile has 'stages', a chaos scenario 'faults' or "
        "'timeline', an SLO file 'objectives', a system file 'services'"
    )
    raise SpecError([Problem(doc.file, mark.line, mark.column, "", message)])
