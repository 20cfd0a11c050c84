"""``junit.xml``: one test case per phase and per fault, plus one for the run itself, so CI
systems show a run like a test suite. Every case carries its numbers as ``<properties>``.

What fails in the report's suite ``loadkit.<profile>``:

- ``run``: the run did not complete, or over 1% of arrivals were unsent (an invalid run is never
  silently passed, docs/design.md);
- a phase: only when ``max_busy`` is given and its action busy rate exceeds it;
- a fault: when it did not recover (or was never reverted); an injection error is an *error*.

A gated run (``gate.json``) gets a second suite, ``loadkit.gate.<slo name>``: a test case
``run completed and valid`` and one per objective, failed as the gate judged them::

    RunDir(run_dir).junit_xml.write_text(render_junit(m, max_busy=0.05))
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import TYPE_CHECKING

from loadkit.report.gateview import GateView, gate_view
from loadkit.report.model import LevelStats, RunMetrics
from loadkit.report.verdict import pct, recovery_text
from loadkit.report.views import fault_instances_text, status_banner, tls_banner

if TYPE_CHECKING:
    from loadkit.report.formats import ReportOptions

#: the gate's suite is ``loadkit.gate.<slo name>`` (CI configurations may select on it)
GATE_SUITE = "loadkit.gate."


def _props(case: ET.Element, values: dict[str, object]) -> None:
    props = ET.SubElement(case, "properties")
    for name, value in values.items():
        text = "" if value is None else f"{value:.6g}" if isinstance(value, float) else str(value)
        ET.SubElement(props, "property", name=name, value=text)


def _level(prefix: str, s: LevelStats) -> dict[str, object]:
    return {
        f"{prefix}.answered": s.counts.answered,
        f"{prefix}.busy": s.counts.busy,
        f"{prefix}.busy_rate": s.busy_rate,
        f"{prefix}.p95_ms": s.latency.p95,
        f"{prefix}.p99_ms": s.latency.p99,
    }


def render_junit(
    m: RunMetrics, options: ReportOptions | None = None, *, max_busy: float | None = None
) -> str:
    """The JUnit XML document (``max_busy``, else ``options.max_busy``: fail phases above this
    action busy rate)."""
    if max_busy is None and options is not None:
        max_busy = options.max_busy
    suites = ET.Element("testsuites", name=f"loadkit {m.profile}")
    suite = ET.SubElement(suites, "testsuite", name=f"loadkit.{m.profile}")
    banner, tls = status_banner(m), tls_banner(m)
    _props(
        suite,
        {
            "run_id": m.run_id,
            "status": m.status,
            "verdict": m.verdict,
            "status_banner": banner.line() if banner is not None else None,
            "tls_banner": tls.line() if tls is not None else None,
        },
    )
    tests = failures = errors = 0
    time_total = 0.0

    def case(name: str, classname: str, seconds: float) -> ET.Element:
        nonlocal tests, time_total
        tests += 1
        time_total += seconds
        return ET.SubElement(
            suite, "testcase", name=name, classname=classname, time=f"{max(seconds, 0.0):.3f}"
        )

    run = case("run", f"loadkit.{m.profile}", m.duration_s)
    _props(
        run,
        {
            **_level("action", m.total.action),
            **_level("request", m.total.request),
            "unsent": m.total.action.counts.unsent,
            "unsent_share": m.total.unsent_share,
        },
    )
    problems = []
    if m.status not in ("completed",):
        problems.append(f"run {m.status}" + (f": {m.reason}" if m.reason else ""))
    if not m.total.valid:
        problems.append(f"{pct(m.total.unsent_share, 2)} of arrivals unsent (over 1%)")
    if problems:
        failures += 1
        text = m.verdict if banner is None else f"{banner.line()}\n{m.verdict}"
        kind = "run-" + m.status if m.status != "completed" else "run"
        ET.SubElement(run, "failure", message="; ".join(problems), type=kind).text = text
    for p in m.phases:
        c = case(f"phase {p.name}", f"loadkit.{m.profile}.phases", p.duration_s)
        _props(
            c,
            {
                **_level("action", p.action),
                **_level("request", p.request),
                "offered_rate": p.offered_rate,
                "achieved_rate": p.achieved_rate,
            },
        )
        rate = p.action.busy_rate
        if max_busy is not None and rate is not None and rate > max_busy:
            failures += 1
            message = f"busy {pct(rate, 2)} > {pct(max_busy, 2)}"
            ET.SubElement(c, "failure", message=message, type="busy-rate")
    for f in m.faults:
        length = (f.end_s if f.end_s is not None else m.duration_s) - f.start_s
        c = case(f"fault {f.name}", f"loadkit.{m.profile}.faults", length)
        _props(
            c,
            {
                **_level("action", f.action),
                "type": f.type,
                "target": f.target,
                "busy_s": f.busy_s,
                "recovery_s": f.recovery_s,
                "recovered": f.recovered,
                "instances": fault_instances_text(f) or None,
            },
        )
        if f.error:
            errors += 1
            ET.SubElement(c, "error", message=f"injection failed: {f.error}", type="inject")
        elif not f.recovered:
            failures += 1
            message = recovery_text(f) + (f": {f.note}" if f.note else "")
            ET.SubElement(c, "failure", message=message, type="recovery")
    for el in (suite, suites):
        el.set("tests", str(tests))
        el.set("failures", str(failures))
        el.set("errors", str(errors))
        el.set("time", f"{time_total:.3f}")
    gate = gate_view(m.gate)
    if gate is not None:
        suites.append(gate_suite(gate))
        for attr in ("tests", "failures", "errors"):
            suites.set(attr, str(sum(int(s.get(attr, "0")) for s in suites)))
    ET.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, "unicode") + "\n"


def gate_suite(gate: GateView) -> ET.Element:
    """The gate's test suite: one case per row of the gate, with its numbers as properties."""
    name = f"{GATE_SUITE}{gate.slo_name}"
    suite = ET.Element("testsuite", name=name)
    props = ET.SubElement(suite, "properties")
    for prop, value in (
        ("slo_file", gate.slo_file),
        ("passed", str(gate.passed).lower()),
        ("baseline_dir", gate.baseline_dir or ""),
    ):
        ET.SubElement(props, "property", name=prop, value=value)
    failures = 0
    run = gate.run_row
    case = ET.SubElement(suite, "testcase", name=run.title, classname=name)
    if not run.passed:
        failures += 1
        ET.SubElement(case, "failure", message=run.detail, type="invalid-run")
    for row in gate.objectives:
        case = ET.SubElement(suite, "testcase", name=row.title, classname=name)
        case_props = ET.SubElement(case, "properties")
        values = {
            "measure": row.measure,
            "limit": row.limit_text,
            "measured": row.measured_text,
            "baseline": row.baseline_text,
            "slo_line": "" if row.line is None else str(row.line),
        }
        for prop, value in values.items():
            ET.SubElement(case_props, "property", name=prop, value=value)
        if not row.passed:
            failures += 1
            message = f"{row.label}: {row.message}"
            ET.SubElement(case, "failure", message=message, type=row.measure).text = row.detail
        else:
            ET.SubElement(case, "system-out").text = row.detail
    suite.set("tests", str(len(gate.objectives) + 1))
    suite.set("failures", str(failures))
    suite.set("errors", "0")
    suite.set("time", "0.000")
    return suite
