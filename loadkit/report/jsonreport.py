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

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loadkit import __version__
from loadkit.report.model import RunMetrics
from loadkit.report.views import status_banner, tls_banner

if TYPE_CHECKING:
    from loadkit.report.formats import ReportOptions

SCHEMA = "loadkit.report/v1"
SCHEMA_PATH = Path(__file__).with_name("schema") / "report-v1.schema.json"
_COUNT_KEYS = {"ok", "rejected", "busy", "unsent", "causes"}


def _with_rates(value: Any) -> Any:
    """Add ``answered`` and ``busy_rate`` to every counts object (they are properties)."""
    if isinstance(value, dict):
        out = {k: _with_rates(v) for k, v in value.items()}
        if set(out) == _COUNT_KEYS:
            answered = out["ok"] + out["rejected"] + out["busy"]
            out["answered"] = answered
            out["busy_rate"] = out["busy"] / answered if answered else None
        return out
    if isinstance(value, list):
        return [_with_rates(v) for v in value]
    return value


def report_dict(m: RunMetrics) -> dict[str, Any]:
    """The ``loadkit.report/v1`` document."""
    generated = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    head = {"schema": SCHEMA, "generated_at": generated, "loadkit_version": __version__}
    banner = status_banner(m)
    body = _with_rates(m.to_dict())
    body["status_banner"] = None if banner is None else vars(banner).copy()
    tls = tls_banner(m)
    body["tls_banner"] = None if tls is None else vars(tls).copy()
    return {**head, **body}


def render_json(m: RunMetrics, options: ReportOptions | None = None) -> str:
    """The ``loadkit.report/v1`` document as text."""
    return json.dumps(report_dict(m), indent=1, ensure_ascii=False) + "\n"


def write_json_report(m: RunMetrics, path: Path) -> Path:
    path.write_text(render_json(m), encoding="utf-8")
    return path
