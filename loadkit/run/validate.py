"""``loadkit validate``: check spec files on their own, whatever kind they are.

The kind is told by the top-level keys: a profile has ``stages``, a chaos scenario ``faults`` (or
``timeline``), an SLO file ``objectives``::

    validate_file("profiles/double11.yaml")
    # "profiles/double11.yaml: profile 'double11': 6 stages, 40m …"
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sized
from pathlib import Path

from loadkit.spec.errors import Problem, SpecError
from loadkit.spec.loader import Document, load_document
from loadkit.spec.values import format_duration, format_rate

#: a key that tells the kind of a file → that kind
KIND_KEYS = {"stages": "profile", "faults": "scenario", "timeline": "scenario", "objectives": "slo"}


def validate_file(path: str | Path) -> str:
    """Validate one file: a one-line summary when it is fine, else ``SpecError`` (all problems)."""
    doc = load_document(path)
    kind = detect_kind(doc)
    if kind == "profile":
        # imported here: the profile model imports loadkit.spec's leaf modules
        from loadkit.profile.model import LoadModel
        from loadkit.profile.read import read_profile

        profile = read_profile(doc)
        peak = max((stage.peak for stage in profile.stages), default=0.0)
        unit = format_rate(peak) if profile.model is LoadModel.OPEN else f"{peak:g} users"
        length = format_duration(profile.profile_duration_s)
        if profile.time_scale != 1:
            length += (
                f" (runs {format_duration(profile.duration_s)}, time_scale {profile.time_scale:g})"
            )
        return (
            f"{doc.file}: profile '{profile.name}': {_count(profile.stages, 'stage')}, {length}, "
            f"peak {unit}, {_count(profile.journeys, 'journey')}, "
            f"{_count(profile.network, 'network class', 'network classes')}"
        )
    if kind == "scenario":
        # imported here: the chaos package imports loadkit.spec's leaf modules
        from loadkit.chaos.spec import read_scenario, summary

        return summary(read_scenario(doc), doc.file)
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
        "'timeline', an SLO file 'objectives'"
    )
    raise SpecError([Problem(doc.file, mark.line, mark.column, "", message)])


def _count(items: Sized, noun: str, plural: str = "") -> str:
    return f"{len(items)} {noun if len(items) == 1 else plural or noun + 's'}"
