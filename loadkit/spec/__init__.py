"""The leaf toolkit every file reader builds on: YAML with line numbers (``loader``), schema
helpers (``schema``), value parsers (``values``), templates (``template``) and the error that
reports every mistake as ``file:line:col: field: message`` (``errors``). It knows no file kind:
profiles are read in :mod:`loadkit.profile`, scenarios in :mod:`loadkit.chaos`, SLO files in
:mod:`loadkit.gate`, and ``loadkit validate`` dispatches in :mod:`loadkit.run.validate`::

    from loadkit.spec import parse_duration
    parse_duration("1m30s")  # 90.0
"""

from loadkit.spec.errors import Invalid, Problem, SpecError
from loadkit.spec.loader import Document, Map, Mark, Node, Scalar, Seq, load_document
from loadkit.spec.values import (
    format_duration,
    format_rate,
    parse_bandwidth,
    parse_duration,
    parse_percent,
    parse_rate,
)

__all__ = [
    "Document",
    "Invalid",
    "Map",
    "Mark",
    "Node",
    "Problem",
    "Scalar",
    "Seq",
    "SpecError",
    "format_duration",
    "format_rate",
    "load_document",
    "parse_bandwidth",
    "parse_duration",
    "parse_percent",
    "parse_rate",
]
