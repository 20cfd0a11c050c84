"""report.json validates against its JSON Schema and carries the metrics' numbers."""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import jsonschema

from loadkit.report.jsonreport import SCHEMA_PATH, render_json, report_dict, write_json_report
from loadkit.report.metrics import compute_metrics
from loadkit.report.model import RunMetrics
from tests.report.rundirs import RunDirBuilder


def _validate(doc: object) -> None:
    schema = json.loads(SCHEMA_PATH.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.validate(doc, schema, cls=jsonschema.Draft202012Validator)


def test_report_json_validates_and_has_the_numbers(
    fault_metrics: RunMetrics, fault_run: Path
) -> None:
    doc = json.loads(write_json_report(fault_metrics, fault_run / "report.json").read_text())
    _validate(doc)
    assert doc["schema"] == "loadkit.report/v1"
    counts = doc["total"]["action"]["counts"]
    assert counts["answered"] == 9000 and counts["busy"] == 2800 + 6
    assert counts["busy_rate"] == (2800 + 6) / 9000
    (fault,) = doc["faults"]
    assert fault["recovery_s"] == 18 and fault["recovered"] is True
    assert [p["name"] for p in doc["phases"]] == ["before", "during", "after"]
    assert doc["limit"]["source"] == "baseline"
    assert len(doc["series"]) == 90


def test_report_json_of_an_empty_interrupted_run_validates(tmp_path: Path) -> None:
    path = RunDirBuilder(tmp_path / "run", status="interrupted").write(clock=False)
    doc = json.loads(render_json(compute_metrics(path)))
    _validate(doc)
    assert doc["total"]["action"]["counts"]["busy_rate"] is None


def _stdlib_document(m: RunMetrics, generated_at: str) -> str:
    """The document as it was written before orjson: ``asdict``, the counts' rates added to
    every counts object, the standard library's encoder with a one-space indent."""

    def rates(value: Any) -> Any:
        if isinstance(value, dict):
            out = {k: rates(v) for k, v in value.items()}
            if set(out) == {"ok", "rejected", "busy", "unsent", "causes"}:
                out["answered"] = out["ok"] + out["rejected"] + out["busy"]
                out["busy_rate"] = out["busy"] / out["answered"] if out["answered"] else None
            return out
        if isinstance(value, list):
            return [rates(v) for v in value]
        return value

    doc = report_dict(m)
    body = rates(asdict(m))
    head = {k: doc[k] for k in ("schema", "generated_at", "loadkit_version")}
    head["generated_at"] = generated_at
    tail = {k: doc[k] for k in ("status_banner", "tls_banner")}
    return json.dumps({**head, **body, **tail}, indent=1, ensure_ascii=False) + "\n"


def test_report_json_is_the_standard_librarys_text(breakdown_run: Path, tmp_path: Path) -> None:
    """orjson's text, re-indented, is byte for byte what ``json.dumps(indent=1,
    ensure_ascii=False)`` wrote: nested counts, breakdowns, an empty run, non-ASCII text and
    control characters."""
    runs = [breakdown_run, RunDirBuilder(tmp_path / "run", status="interrupted").write()]
    for run in runs:
        m = compute_metrics(run)
        m = replace(m, profile="双十一 — café", notes=[*m.notes, 'tab\there "quoted" \\ \x01'])
        text = render_json(m)
        generated_at = json.loads(text)["generated_at"]
        assert text == _stdlib_document(m, generated_at)
