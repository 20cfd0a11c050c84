"""``report.json``: the metrics as data, schema ``loadkit.report/v1``
(``loadkit/report/schema/report-v1.schema.json`` documents every field)::

    write_json_report(compute_metrics(run_dir), RunDir(run_dir).report_json)
    json.loads(RunDir(run_dir).report_json.read_text())["total"]["action"]["counts"]["busy_rate"]

A gated run's document has ``gate.json`` under ``gate`` (``null`` otherwise). A run that did not
end as planned (aborted, interrupted, failed, killed, invalid) has its warning under
``status_banner`` (``{"kind", "title", "text"}``, ``null`` for a complete, valid run). A run
that did not verify some certificates (``verify: false``) lists them under ``insecure_urls`` and
says so under ``tls_banner`` (``null`` when every https URL was verified).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from loadkit import __version__
from loadkit.report.model import RunMetrics
from loadkit.report.views import status_banner, tls_banner

if TYPE_CHECKING:
    from loadkit.report.formats import ReportOptions

SCHEMA = "loadkit.report/v1"
SCHEMA_PATH = Path(__file__).with_name("schema") / "report-v1.schema.json"


def report_dict(m: RunMetrics) -> dict[str, Any]:
    """The ``loadkit.report/v1`` document."""
    generated = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    head = {"schema": SCHEMA, "generated_at": generated, "loadkit_version": __version__}
    banner = status_banner(m)
    body = m.to_dict()
    body["status_banner"] = None if banner is None else vars(banner).copy()
    tls = tls_banner(m)
    body["tls_banner"] = None if tls is None else vars(tls).copy()
    return {**head, **body}


def render_json(m: RunMetrics, options: ReportOptions | None = None) -> str:
    """The ``loadkit.report/v1`` document as text: one space of indent per level, UTF-8 as
    is. orjson writes it (the standard library's indenting encoder is pure Python: ~0.1 s for
    an hour-long run); the text is the standard library's but for floats below 1e-4, which
    orjson spells ``5e-6`` where ``json.dumps`` spelled ``5e-06`` (the same number)."""
    raw = orjson.dumps(report_dict(m), option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS)
    return _one_space_indent(raw).decode() + "\n"


def _one_space_indent(raw: bytes) -> bytes:
    """orjson's two-space indent as one space per level (the document's since v1): the lines
    of each depth, deepest first, get a marker byte per level (JSON text has no raw NUL, and a
    line already marked no longer starts with spaces), then the markers become spaces."""
    depth = 0
    while b"\n" + b"  " * (depth + 1) in raw:
        depth += 1
    for level in range(depth, 0, -1):
        raw = raw.replace(b"\n" + b"  " * level, b"\n" + b"\0" * level)
    return raw.replace(b"\0", b" ")


def write_json_report(m: RunMetrics, path: Path) -> Path:
    path.write_text(render_json(m), encoding="utf-8")
    return path
