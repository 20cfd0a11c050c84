"""What the gate writes and prints: the objectives table, ``gate.json``, and its own sections in
the run's ``junit.xml`` and ``summary.md`` (which keep the report's content)::

    result = gate_run(run_dir, load_slo("slo/smoke.yaml"))
    render_table(result, console)
    result.written  # {"junit": …/junit.xml, "md": …/summary.md, "json": …/gate.json}

- ``junit.xml``: the report's test suite stays; the gate adds a suite ``loadkit.gate.<slo>``
  with one test case per objective plus ``run valid``; gating again replaces that suite only.
- ``summary.md``: the gate's section goes between ``<!-- loadkit:gate -->`` and
  ``<!-- /loadkit:gate -->`` at the top of the report's summary; gating again replaces it.
- ``gate.json`` (schema ``loadkit.gate/v1``): the machine-readable verdict for CI.

A file the report has not written yet is rendered from the metrics first, so the gate works on a
run directory that only has the run's raw files.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import TYPE_CHECKING

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from loadkit.gate.evaluate import GateResult, ObjectiveResult, evaluate, format_value
from loadkit.gate.slo import Slo

if TYPE_CHECKING:
    from loadkit.report.model import RunMetrics

GATE_SUITE = "loadkit.gate."
MD_BEGIN = "<!-- loadkit:gate -->"
MD_END = "<!-- /loadkit:gate -->"


def gate_run(
    run_dir: Path,
    slo: Slo,
    *,
    baseline_dir: Path | None = None,
    max_regression: float | None = None,
    write: bool = True,
) -> GateResult:
    """Compute the run's metrics (and the baseline's), evaluate ``slo``, and write
    ``junit.xml``, ``summary.md`` and ``gate.json`` into ``run_dir`` (unless ``write=False``)."""
    from loadkit.report.metrics import compute_metrics

    run_dir = Path(run_dir)
    metrics = compute_metrics(run_dir)
    baseline = compute_metrics(Path(baseline_dir)) if baseline_dir is not None else None
    result = evaluate(
        metrics, slo, baseline=baseline, max_regression=max_regression, run_dir=run_dir
    )
    result.baseline_dir = Path(baseline_dir) if baseline_dir is not None else None
    if write:
        result.written = write_outputs(result, metrics)
    return result


def write_outputs(result: GateResult, metrics: RunMetrics) -> dict[str, Path]:
    run_dir = result.run_dir
    junit, md, js = run_dir / "junit.xml", run_dir / "summary.md", run_dir / "gate.json"
    junit.write_text(merge_junit(_read(junit), result, metrics), encoding="utf-8")
    md.write_text(merge_summary(_read(md), result, metrics), encoding="utf-8")
    js.write_text(json.dumps(result.to_dict(), indent=2) + "\n", encoding="utf-8")
    return {"junit": junit, "md": md, "json": js}


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        return None


# -- terminal --------------------------------------------------------------------------------


def render_table(result: GateResult, console: Console) -> None:
    """Every objective with measured value, limit and verdict; fits 80 columns."""
    has_baseline = any(r.baseline is not None for r in result.results)
    table = Table(
        box=box.SIMPLE_HEAD,
        title=f"SLO {result.slo.name} — run {result.run_id}",
        title_justify="left",
        pad_edge=False,
    )
    table.add_column("", no_wrap=True, width=4)
    table.add_column("objective", overflow="fold", ratio=1)
    table.add_column("measured", justify="right", no_wrap=True)
    table.add_column("limit", justify="right", no_wrap=True)
    if has_baseline:
        table.add_column("baseline", justify="right", no_wrap=True)
    rows: list[tuple[bool, str, str, str, str]] = [
        (
            result.invalid_reason is None,
            "run completed and valid",
            result.status or "-",
            "completed",
            "",
        )
    ]
    for r in result.results:
        o = r.objective
        limit = o.limit_text()
        measured = shown(r)
        baseline = format_value(o, r.baseline) if r.baseline is not None else ""
        rows.append((r.passed, r.title(), measured, limit, baseline))
    for passed, title, measured, limit, baseline in rows:
        mark = Text("pass", style="green") if passed else Text("FAIL", style="bold red")
        cells: list[Text | str] = [mark, title, measured, limit]
        if has_baseline:
            cells.append(baseline)
        table.add_row(*cells)
    console.print(table)
    for line in failure_lines(result):
        console.print(Text.assemble(("✗ ", "red"), line), soft_wrap=True, highlight=False)
    style = "bold green" if result.passed else "bold red"
    console.print(Text(result.headline(), style=style), soft_wrap=True)


def shown(r: ObjectiveResult) -> str:
    """The measured value as a table shows it (integrity: ``clean``, ``violated``, ``not run``)."""
    if r.objective.measure != "integrity":
        return r.measured_text()
    if r.passed:
        return "clean"
    return "violated" if r.detail.startswith("violated") else "not run"


def describe(r: ObjectiveResult) -> str:
    """``measured 3.00%, limit 2% — 30 busy of 1,000 answered``; just the reason when nothing
    could be measured."""
    if r.measured is None:
        return r.detail
    text = f"measured {shown(r)}, limit {r.objective.limit_text()}"
    return f"{text} — {r.detail}" if r.detail else text


def failure_lines(result: GateResult) -> list[str]:
    """One line per failed objective (and the invalid run): what the pytest plugin shows."""
    lines = [f"run cannot pass: {result.invalid_reason}"] if result.invalid_reason else []
    for r in result.failed:
        lines.append(f"{r.title()}: {describe(r)}")
    return lines


# -- junit.xml ------------------------------------------------------------------------------


def merge_junit(existing: str | None, result: GateResult, metrics: RunMetrics) -> str:
    """The report's ``junit.xml`` (rendered from ``metrics`` when missing or unreadable) with
    the gate's suite added, replacing an earlier gate suite."""
    root: ET.Element | None = None
    if existing:
        try:
            root = ET.fromstring(existing)
        except ET.ParseError:
            root = None
    if root is None or root.tag != "testsuites":
        from loadkit.report.junit import render_junit

        root = ET.fromstring(render_junit(metrics))
    for suite in list(root):
        if _is_gate_suite(suite):
            root.remove(suite)
    root.append(_gate_suite(result))
    for attr in ("tests", "failures", "errors"):
        root.set(attr, str(sum(int(s.get(attr, "0")) for s in root.iter("testsuite"))))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, "unicode") + "\n"


def _gate_suite(result: GateResult) -> ET.Element:
    suite = ET.Element("testsuite", name=f"{GATE_SUITE}{result.slo.name}")
    props = ET.SubElement(suite, "properties")
    for name, value in (
        ("slo_file", result.slo.file),
        ("passed", str(result.passed).lower()),
        ("baseline_dir", str(result.baseline_dir or "")),
    ):
        ET.SubElement(props, "property", name=name, value=value)
    classname = f"{GATE_SUITE}{result.slo.name}"
    failures = 0
    run = ET.SubElement(suite, "testcase", name="run completed and valid", classname=classname)
    if result.invalid_reason:
        failures += 1
        ET.SubElement(run, "failure", message=result.invalid_reason, type="invalid-run")
    for r in result.results:
        o = r.objective
        case = ET.SubElement(suite, "testcase", name=r.title(), classname=classname)
        case_props = ET.SubElement(case, "properties")
        values = {
            "measure": o.measure,
            "limit": o.limit_text(),
            "measured": shown(r),
            "baseline": format_value(o, r.baseline) if r.baseline is not None else "",
            "slo_line": str(o.line),
        }
        for name, value in values.items():
            ET.SubElement(case_props, "property", name=name, value=value)
        if not r.passed:
            failures += 1
            message = f"{o.label()}: {describe(r)}"
            ET.SubElement(case, "failure", message=message, type=o.measure).text = r.detail
        else:
            ET.SubElement(case, "system-out").text = r.detail
    suite.set("tests", str(len(result.results) + 1))
    suite.set("failures", str(failures))
    suite.set("errors", "0")
    suite.set("time", "0.000")
    return suite


def carry_junit(previous: str | None, fresh: str) -> str:
    """``fresh`` (the report's new ``junit.xml``) with the gate suite of ``previous`` kept: what
    ``loadkit report`` does so that reporting again does not drop an earlier gate."""
    try:
        old = ET.fromstring(previous) if previous else None
        root = ET.fromstring(fresh)
    except ET.ParseError:
        return fresh
    suites = [] if old is None else [s for s in old if _is_gate_suite(s)]
    if not suites or root.tag != "testsuites":
        return fresh
    for suite in suites:
        root.append(suite)
    for attr in ("tests", "failures", "errors"):
        root.set(attr, str(sum(int(s.get(attr, "0")) for s in root.iter("testsuite"))))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, "unicode") + "\n"


def _is_gate_suite(suite: ET.Element) -> bool:
    return suite.tag == "testsuite" and suite.get("name", "").startswith(GATE_SUITE)


# -- summary.md -----------------------------------------------------------------------------


def carry_summary(previous: str | None, fresh: str) -> str:
    """``fresh`` (the report's new ``summary.md``) with the gate section of ``previous`` on top."""
    if not previous or MD_BEGIN not in previous or MD_END not in previous:
        return fresh
    _, _, rest = previous.partition(MD_BEGIN)
    section, _, _ = rest.partition(MD_END)
    return f"{MD_BEGIN}{section}{MD_END}\n\n{fresh}"


def merge_summary(existing: str | None, result: GateResult, metrics: RunMetrics) -> str:
    """The report's ``summary.md`` (rendered when missing) with the gate's section on top."""
    body = existing
    if body is None:
        from loadkit.report.markdown import render_markdown

        body = render_markdown(metrics)
    if MD_BEGIN in body and MD_END in body:
        head, _, rest = body.partition(MD_BEGIN)
        _, _, tail = rest.partition(MD_END)
        body = head + tail.lstrip("\n")
    return render_gate_markdown(result) + "\n" + body


def render_gate_markdown(result: GateResult) -> str:
    """The gate's section of ``summary.md`` (between the markers)."""
    icon = "✅" if result.passed else "❌"
    has_baseline = any(r.baseline is not None for r in result.results)
    header = ["", "objective", "measured", "limit"] + (["baseline"] if has_baseline else [])
    lines = [
        MD_BEGIN,
        f"### {icon} {result.headline()}",
        "",
        "| " + " | ".join(header) + " |",
        "| "
        + " | ".join(["---", "---", "---:", "---:"] + (["---:"] if has_baseline else []))
        + " |",
    ]

    def row(passed: bool, cells: list[str]) -> None:
        text = [c.replace("|", "\\|") for c in cells]
        lines.append("| " + " | ".join(["✅" if passed else "❌", *text]) + " |")

    row(
        result.invalid_reason is None,
        ["run completed and valid", result.status, "completed"] + ([""] if has_baseline else []),
    )
    for r in result.results:
        o = r.objective
        cells = [r.title(), shown(r), o.limit_text()]
        if has_baseline:
            cells.append(format_value(o, r.baseline) if r.baseline is not None else "")
        row(r.passed, cells)
    failed = failure_lines(result)
    if failed:
        lines += ["", *[f"- {line}" for line in failed]]
    if result.baseline_dir is not None:
        lines += ["", f"Baseline: `{result.baseline_dir}`"]
    lines += ["", f"<sub>SLO file `{result.slo.file}`</sub>", MD_END, ""]
    return "\n".join(lines)
