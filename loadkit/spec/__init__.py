"""Spec files (profiles now; chaos scenarios and SLO files later): YAML with line numbers, value
parsers and validation that reports every mistake as ``file:line:col: field: message``::

    from loadkit.spec import validate_file
    print(validate_file("profiles/smoke.yaml"))
"""

from loadkit.run.validate import detect_kind, validate_file, validate_files
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
    "detect_kind",
    "format_duration",
    "format_rate",
    "load_document",
    "parse_bandwidth",
    "parse_duration",
    "parse_percent",
    "parse_rate",
    "validate_file",
    "validate_files",
]
