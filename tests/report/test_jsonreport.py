"""report.json validates against its JSON Schema and carries the metrics' numbers."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema

from loadkit.report.jsonreport import SCHEMA_PATH, render_json, write_json_report
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
