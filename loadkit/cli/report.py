"""``loadkit report`` and ``loadkit compare``: argument parsing and printing over the library.

``add_report_parsers(subparsers)`` registers both on loadkit's argparse subparsers; each command
returns an exit code and raises :class:`~loadkit.errors.ConfigError` (exit 2) for a bad run
directory or option::

    loadkit report reports/20261128-193000-double11                 # every format
    loadkit report RUN_DIR --format html,terminal --max-busy 5%
    loadkit compare reports/OLD reports/NEW --fail-on-regression
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rich.console import Console

from loadkit.errors import ConfigError, ExitCode

FORMATS = ("html", "md", "json", "junit", "terminal")
FILES = {"html": "report.html", "md": "summary.md", "json": "report.json", "junit": "junit.xml"}

console = Console()


def _percent(value: str) -> float:
    from loadkit.spec.values import parse_percent

    try:
        return parse_percent(value if value.strip().endswith("%") else float(value))
    except (ValueError, Exception) as exc:
        raise argparse.ArgumentTypeError(f"expected a percentage like 5% or 0.05 ({exc})") from exc


def run_dir_arg(path: str, what: str | None = None) -> Path:
    """``path`` as a run directory, or a ``ConfigError`` (exit 2) naming the option (``what``)."""
    run_dir = Path(path)
    label = f"{what} {path}" if what else path
    if not run_dir.is_dir():
        raise ConfigError(f"{label}: not a run directory (no such directory)")
    if not (run_dir / "run.json").exists() and not (run_dir / "timeline.jsonl").exists():
        raise ConfigError(f"{label}: not a run directory (no run.json and no timeline.jsonl)")
    return run_dir


def parse_formats(text: str) -> list[str]:
    """``"html,md"`` → ``["html", "md"]``; ``all`` is every format."""
    from loadkit.spec.values import did_you_mean

    names = [f.strip().lower() for f in text.split(",") if f.strip()]
    if names == ["all"]:
        return list(FORMATS)
    aliases = {"markdown": "md", "xml": "junit"}
    out = []
    for name in names:
        name = aliases.get(name, name)
        if name not in FORMATS:
            hint = did_you_mean(name, FORMATS)
            raise ConfigError(
                f"--format: unknown format '{name}'{hint} (one of {', '.join(FORMATS)})"
            )
        out.append(name)
    if not out:
        raise ConfigError(f"--format: expected a list like html,md (one of {', '.join(FORMATS)})")
    return out


def write_reports(
    run_dir: Path,
    formats: list[str],
    *,
    out: Path | None = None,
    max_busy: float | None = None,
    busy_limit: float | None = None,
    term: Console | None = None,
) -> dict[str, Path]:
    """Compute the metrics once and write each format (``terminal`` prints to ``term``); the
    files written, by format. What ``loadkit report`` and the end of ``loadkit run`` call."""
    from loadkit.report.html import render_html
    from loadkit.report.jsonreport import render_json
    from loadkit.report.junit import render_junit
    from loadkit.report.markdown import render_markdown
    from loadkit.report.metrics import compute_metrics
    from loadkit.report.terminal import render_terminal

    m = compute_metrics(run_dir, busy_limit=busy_limit)
    target = out or run_dir
    target.mkdir(parents=True, exist_ok=True)
    renderers: dict[str, Any] = {
        "html": lambda: render_html(m),
        "md": lambda: render_markdown(m),
        "json": lambda: render_json(m),
        "junit": lambda: render_junit(m, max_busy=max_busy),
    }
    written = {}
    for fmt in formats:
        if fmt == "terminal":
            render_terminal(m, term or console)
            continue
        path = target / FILES[fmt]
        text = renderers[fmt]()
        if fmt in ("md", "junit") and m.gate is not None:
            # a gated run: keep the gate's section (loadkit.gate.output writes it)
            from loadkit.gate.output import carry_junit, carry_summary

            previous = path.read_text(encoding="utf-8") if path.exists() else None
            text = (carry_summary if fmt == "md" else carry_junit)(previous, text)
        path.write_text(text, encoding="utf-8")
        written[fmt] = path
    return written


def cmd_report(args: argparse.Namespace) -> int:
    run_dir = run_dir_arg(args.run_dir)
    formats = parse_formats(args.format)
    written = write_reports(
        run_dir,
        formats,
        out=Path(args.out) if args.out else None,
        max_busy=args.max_busy,
        busy_limit=args.busy_limit,
    )
    for fmt, path in written.items():
        console.print(f"{fmt:>5}: {path}", highlight=False, soft_wrap=True)
    return ExitCode.OK


def cmd_compare(args: argparse.Namespace) -> int:
    from loadkit.report.compare import compare_metrics, render_comparison
    from loadkit.report.metrics import compute_metrics

    a = compute_metrics(run_dir_arg(args.run_a))
    b = compute_metrics(run_dir_arg(args.run_b))
    comparison = compare_metrics(a, b)
    render_comparison(comparison, console)
    if args.fail_on_regression and comparison.regressions:
        return ExitCode.FAILED
    return ExitCode.OK


def add_report_parsers(sub: Any) -> None:
    """Register ``report`` and ``compare`` on loadkit's subparsers."""
    report = sub.add_parser("report", help="busy-rate reports of a run directory")
    report.add_argument("run_dir", metavar="RUN_DIR", help="a run directory, e.g. reports/<run-id>")
    report.add_argument(
        "--format",
        default="all",
        help="comma-separated: html,md,json,junit,terminal (default: all)",
    )
    report.add_argument("--out", help="where the files go (default: the run directory)")
    report.add_argument(
        "--max-busy",
        type=_percent,
        metavar="PCT",
        help="junit.xml: fail a phase whose busy rate is above this (e.g. 5%%)",
    )
    report.add_argument(
        "--busy-limit",
        type=_percent,
        metavar="PCT",
        help="steady-state limit for recovery (default: the scenario's busy-rate probe, else "
        "the pre-fault baseline + 1 point)",
    )
    report.set_defaults(func=cmd_report)

    compare = sub.add_parser("compare", help="two runs side by side: deltas and regressions")
    compare.add_argument("run_a", metavar="RUN_A", help="the baseline run directory")
    compare.add_argument("run_b", metavar="RUN_B", help="the run to compare with it")
    compare.add_argument(
        "--fail-on-regression", action="store_true", help="exit 1 when a regression is flagged"
    )
    compare.set_defaults(func=cmd_compare)
