"""A ``gate.json`` (schema ``loadkit.gate/v1``) as the gate writes it, for the report's tests: one
objective met, one failed."""

from __future__ import annotations

from typing import Any

GATE_JSON: dict[str, Any] = {
    "schema": "loadkit.gate/v1",
    "passed": False,
    "slo": {"name": "smoke", "file": "slo/smoke.yaml"},
    "run_dir": "reports/x",
    "run_id": "20261128-193000-hand-built",
    "status": "completed",
    "invalid_reason": None,
    "baseline_dir": None,
    "max_regression": None,
    "failed": 1,
    "objectives": [
        {
            "title": "busy overall",
            "label": "busy rate (action) ≤ 50%",
            "measure": "max_busy_rate",
            "limit": 0.5,
            "limit_text": "50%",
            "line": 3,
            "measured": 0.2,
            "measured_text": "20.00%",
            "baseline": None,
            "baseline_text": None,
            "passed": True,
            "detail": "1,800 busy of 9,000 answered",
        },
        {
            "title": "recovery from db-down",
            "label": "recovery from fault db-down ≤ 10s",
            "measure": "max_recovery",
            "limit": 10.0,
            "limit_text": "10s",
            "line": 5,
            "measured": 18.0,
            "measured_text": "18s",
            "baseline": None,
            "baseline_text": None,
            "passed": False,
            "detail": "from the end of fault db-down",
        },
    ],
}
