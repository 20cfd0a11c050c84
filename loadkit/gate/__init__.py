"""Release gating: a run directory against an SLO file → pass or fail, with the reasons.

``loadkit gate RUN_DIR --slo SLO`` and ``loadkit run … --slo SLO`` call this; so does the pytest
plugin. The SLO format is in docs/slo.md (loader: :mod:`loadkit.gate.slo`)::

    from loadkit.gate import gate_run, load_slo
    result = gate_run(Path("reports/20261128-193000-smoke"), load_slo("slo/smoke.yaml"))
    result.passed, [r.title() for r in result.failed]

Modules: ``slo`` (the SLO file reader), ``evaluate`` (objectives against metrics, baselines),
``output`` (``gate.json``, the report files rendered again to show it, the table), ``watch``
(early abort while a run goes). The command is in :mod:`loadkit.cli.gate`. The gate writes only
``gate.json``; the report's renderers draw the gate section from it.
"""

from loadkit.gate.evaluate import GateResult, ObjectiveResult, evaluate, invalid_reason, measure
from loadkit.gate.output import failure_lines, gate_run, render_table
from loadkit.gate.slo import Objective, Slo, check_names, load_slo

__all__ = [
    "GateResult",
    "Objective",
    "ObjectiveResult",
    "Slo",
    "check_names",
    "evaluate",
    "failure_lines",
    "gate_run",
    "invalid_reason",
    "load_slo",
    "measure",
    "render_table",
]
