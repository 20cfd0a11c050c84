"""gate.json as the renderers see it: typed, tolerant of missing keys, one wording."""

from __future__ import annotations

from loadkit.report.gateview import RUN_ROW, gate_view, headline
from tests.report.gate_json import GATE_JSON


def test_the_view_of_a_gate_json() -> None:
    view = gate_view(GATE_JSON)
    assert view is not None and not view.passed
    assert [r.title for r in view.rows] == [RUN_ROW, "busy overall", "recovery from db-down"]
    assert view.headline == "gate FAILED: 1 of 2 objectives failed (SLO smoke)"
    assert view.failure_lines == [
        "recovery from db-down: measured 18s, limit 10s — from the end of fault db-down"
    ]
    assert not view.has_baseline and view.run_row.passed and view.rows[2].line == 5


def test_an_invalid_run_and_an_unmeasured_objective() -> None:
    objective = {**GATE_JSON["objectives"][1], "measured": None, "detail": "not recovered"}
    view = gate_view({**GATE_JSON, "invalid_reason": "run aborted", "objectives": [objective]})
    assert view is not None and not view.run_row.passed
    assert view.failure_lines == [
        "run cannot pass: run aborted",
        "recovery from db-down: not recovered",
    ]
    assert view.headline == (
        "gate FAILED: 1 of 1 objectives failed; the run cannot pass: run aborted (SLO smoke)"
    )
    assert headline(True, 3, 0, None, "s") == "gate passed: 3 of 3 objectives met (SLO s)"


def test_a_hand_edited_gate_json_still_renders() -> None:
    assert gate_view(None) is None and gate_view({"passed": True}) is None
    view = gate_view({"objectives": [{"passed": True, "baseline": 0.01}, "junk"]})
    assert view is not None
    (row,) = view.objectives
    cells = (row.title, row.measured_text, row.limit_text, row.baseline_text)
    assert cells == ("?", "-", "-", "0.01")
    assert view.slo_name == "?" and view.has_baseline
