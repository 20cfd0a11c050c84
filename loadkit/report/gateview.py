"""The release gate as the reports show it, read from ``gate.json`` (schema ``loadkit.gate/v1``,
docs/slo.md). The gate writes only that file; every renderer (html, md, json, junit, terminal)
draws its gate section from this view, so the report never imports the gate::

    view = gate_view(metrics.gate)          # None when the run was not gated
    view.headline                           # "gate FAILED: 1 of 4 objectives failed (SLO smoke)"
    [row.title for row in view.rows]        # "run completed and valid", then each objective

A hand-edited or older ``gate.json`` may lack keys: what is missing shows as ``-`` or ``?``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

#: the first row of every gate: a run that did not complete, or left over 1% unsent, never passes
RUN_ROW = "run completed and valid"


@dataclass(frozen=True)
class GateRow:
    """One line of the gate: the run itself (``measure`` ``run``) or one objective."""

    passed: bool
    title: str
    label: str
    measure: str
    measured: float | None
    measured_text: str
    limit_text: str
    baseline: float | None
    baseline_text: str
    detail: str
    line: int | None = None  # the objective's line in the SLO file

    @property
    def message(self) -> str:
        """``measured 3.00%, limit 2% — 30 busy of 1,000 answered``; just the detail when
        nothing was measured (integrity, or a scope the run does not have)."""
        if self.measure == "run" or self.measured is None:
            return self.detail
        text = f"measured {self.measured_text}, limit {self.limit_text}"
        return f"{text} — {self.detail}" if self.detail else text


@dataclass(frozen=True)
class GateView:
    """``gate.json`` made safe and typed for the renderers."""

    passed: bool
    slo_name: str
    slo_file: str
    run_id: str
    status: str
    invalid_reason: str | None
    baseline_dir: str | None
    objectives: tuple[GateRow, ...]

    @property
    def run_row(self) -> GateRow:
        return GateRow(
            passed=self.invalid_reason is None,
            title=RUN_ROW,
            label=RUN_ROW,
            measure="run",
            measured=None,
            measured_text=self.status,
            limit_text="completed",
            baseline=None,
            baseline_text="",
            detail=self.invalid_reason or "",
        )

    @property
    def rows(self) -> tuple[GateRow, ...]:
        """The run's row, then every objective."""
        return (self.run_row, *self.objectives)

    @property
    def failed(self) -> list[GateRow]:
        return [o for o in self.objectives if not o.passed]

    @property
    def has_baseline(self) -> bool:
        return any(o.baseline is not None for o in self.objectives)

    @property
    def headline(self) -> str:
        return headline(
            self.passed, len(self.objectives), len(self.failed), self.invalid_reason, self.slo_name
        )

    @property
    def failure_lines(self) -> list[str]:
        """One line per failed objective (and the invalid run): what the pytest plugin shows."""
        lines = [f"run cannot pass: {self.invalid_reason}"] if self.invalid_reason else []
        return lines + [f"{o.title}: {o.message}" for o in self.failed]


def headline(
    passed: bool, total: int, failed: int, invalid_reason: str | None, slo_name: str
) -> str:
    """``gate passed: 7 of 7 objectives met (SLO smoke)`` / ``gate FAILED: 2 of 7 objectives
    failed; the run cannot pass: run aborted (SLO smoke)``."""
    if passed:
        return f"gate passed: {total} of {total} objectives met (SLO {slo_name})"
    parts = []
    if failed:
        parts.append(f"{failed} of {total} objectives failed")
    if invalid_reason:
        parts.append(f"the run cannot pass: {invalid_reason}")
    return f"gate FAILED: {'; '.join(parts)} (SLO {slo_name})"


def gate_view(data: Mapping[str, Any] | None) -> GateView | None:
    """The view of a ``gate.json`` document; ``None`` when there is none (or no objectives)."""
    if not isinstance(data, Mapping) or not isinstance(data.get("objectives"), list):
        return None
    slo = data.get("slo")
    slo = slo if isinstance(slo, Mapping) else {}
    invalid = data.get("invalid_reason")
    baseline_dir = data.get("baseline_dir")
    return GateView(
        passed=bool(data.get("passed")),
        slo_name=str(slo.get("name") or "?"),
        slo_file=str(slo.get("file") or "?"),
        run_id=str(data.get("run_id") or "?"),
        status=str(data.get("status") or "-"),
        invalid_reason=str(invalid) if invalid else None,
        baseline_dir=str(baseline_dir) if baseline_dir else None,
        objectives=tuple(_row(o) for o in data["objectives"] if isinstance(o, Mapping)),
    )


def _row(o: Mapping[str, Any]) -> GateRow:
    baseline = _number(o.get("baseline"))
    line = o.get("line")
    return GateRow(
        passed=bool(o.get("passed")),
        title=str(o.get("title") or o.get("label") or "?"),
        label=str(o.get("label") or o.get("title") or "?"),
        measure=str(o.get("measure") or "?"),
        measured=_number(o.get("measured")),
        measured_text=str(o.get("measured_text") or "-"),
        limit_text=str(o.get("limit_text") or "-"),
        baseline=baseline,
        baseline_text="" if baseline is None else str(o.get("baseline_text") or baseline),
        detail=str(o.get("detail") or ""),
        line=line if isinstance(line, int) else None,
    )


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
