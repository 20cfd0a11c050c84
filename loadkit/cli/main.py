"""The ``loadkit`` command: argument parsing and printing over the library API.

Every :class:`~loadkit.errors.LoadkitError` is caught here, printed as one red line (plus its
detail, dim), and turned into its exit code. Nothing below this module calls ``sys.exit``.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from loadkit import __version__
from loadkit.cli.args import (
    Formatter,
    add_allow_arg,
    add_json_arg,
    add_out_arg,
    add_stack_dir_arg,
    add_tag_args,
    command,
    exit_codes,
)
from loadkit.cli.capacity import add_capacity_parsers
from loadkit.cli.chaos import add_chaos_parser
from loadkit.cli.completion import add_completion_parser
from loadkit.cli.export import add_export_parser
from loadkit.cli.gate import add_gate_parser
from loadkit.cli.live import add_live_args, close_live, open_live
from loadkit.cli.profile import add_profile_parsers
from loadkit.cli.report import add_report_parsers
from loadkit.errors import ExitCode, LoadkitError

if TYPE_CHECKING:
    from loadkit.run.orchestrator import RunOptions

console = Console()
err_console = Console(stderr=True)


def _stack_dir(args: argparse.Namespace) -> Path:
    from loadkit.stack.reference import stack_dir_from

    return stack_dir_from(args.stack_dir)


# -- stack ---------------------------------------------------------------------------------------


def cmd_stack_up(args: argparse.Namespace) -> int:
    from loadkit.stack.reference import ReferenceStack, StackOptions

    opts = StackOptions(
        instances=args.instances,
        users=args.users,
        merchants=args.merchants,
        balance=args.balance,
        pg_dsn=args.pg_dsn,
        unsafe=args.unsafe,
        backend=args.backend or "process",
        image=args.image,
        tls=args.tls,
    )
    with console.status("starting the reference wallet stack…"):
        stack = ReferenceStack.up(_stack_dir(args), opts)
    status = stack.status()
    if args.json:
        print(json.dumps(status, indent=2))
        return ExitCode.OK
    _print_status(status)
    first = stack.manifest.wallets[0]
    cacert = f"--cacert {stack.ca} " if stack.ca else ""
    console.print(
        f"\n[green]stack up[/] in {stack.stack_dir} — try: "
        f"curl -s {cacert}{first.client_url}/v1/login -d "
        f'\'{{"username":"user00001","password":"{stack.password}"}}\'',
        soft_wrap=True,
    )
    return ExitCode.OK


def cmd_stack_down(args: argparse.Namespace) -> int:
    from loadkit.errors import StackNotRunning
    from loadkit.stack.reference import ReferenceStack

    _check_engine(args)
    stale = _stop_stale_stacks(Path(args.runs))
    try:
        stack = ReferenceStack.attach(_stack_dir(args))
    except StackNotRunning:
        if args.backend == "docker":  # containers whose manifest is gone
            from loadkit.stack.backends.docker import remove_leftovers

            removed = remove_leftovers(_stack_dir(args))
            if removed:
                if args.json:
                    print(json.dumps({"stopped": removed}, indent=2))
                else:
                    console.print(f"[green]stack down[/]: removed containers {', '.join(removed)}")
                return ExitCode.OK
        if args.json:
            print(json.dumps({"stopped": []}, indent=2))
        elif not stale:
            console.print(f"no stack running in {_stack_dir(args)}")
        return ExitCode.OK
    stopped = stack.down()
    if args.json:
        print(json.dumps({"stopped": list(stopped)}, indent=2))
        return ExitCode.OK
    console.print(
        f"[green]stack down[/]: stopped {', '.join(stopped) or 'nothing (already stopped)'}"
    )
    return ExitCode.OK


def _stop_stale_stacks(runs: Path) -> int:
    """Stop the stacks runs under ``runs`` left behind when they were killed; how many."""
    from loadkit.stack.stale import stop_stale_stacks

    stopped = stop_stale_stacks(runs)
    for stale, names in stopped:
        console.print(
            f"[green]stack down[/]: {stale.stack_dir} (left by a {stale.run_status} run): "
            f"stopped {', '.join(names) or 'nothing (already stopped)'}",
            soft_wrap=True,
        )
    return len(stopped)


def cmd_stack_status(args: argparse.Namespace) -> int:
    from loadkit.stack.reference import ReferenceStack

    _check_engine(args)
    status = ReferenceStack.attach(_stack_dir(args)).status()
    if args.json:
        print(json.dumps(status, indent=2))
    else:
        _print_status(status)
    return ExitCode.OK if status["healthy"] else ExitCode.ENVIRONMENT


def _check_engine(args: argparse.Namespace) -> None:
    """``--backend docker``: the engine must answer first (exit 3, one line, nothing else)."""
    if args.backend == "docker":
        from loadkit.stack.docker import connect

        connect().close()


def _print_status(status: dict[str, Any]) -> None:
    table = Table(title=f"reference stack — {status['stack_dir']}", title_justify="left")
    for col in ("component", "pid", "port", "state", "log"):
        table.add_column(col)
    for c in status["components"]:
        if c.get("kind") == "external":
            table.add_row(c["name"], "-", "-", "external", c["dsn"])
            continue
        state = (
            "[green]ready[/]"
            if c["ready"]
            else "[yellow]running[/]"
            if c["running"]
            else "[red]down[/]"
        )
        table.add_row(c["name"], str(c["pid"]), str(c["port"]), state, str(c.get("log") or ""))
    console.print(table)
    if status.get("tls"):
        console.print(
            f"HTTPS: the wallets' certificates come from the stack's CA {status['tls']['ca']}",
            soft_wrap=True,
        )
    if status.get("unsafe"):
        console.print(
            f"[bold red]UNSAFE WALLET[/]: the wallets run with --unsafe {status['unsafe']} "
            "(deliberately broken, to show the integrity check catching it)"
        )
    proxies = Table(title="toxiproxy links (where network faults go)", title_justify="left")
    for col in ("proxy", "listen", "upstream", "link"):
        proxies.add_column(col)
    for p in status["proxies"]:
        proxies.add_row(p["name"], f"127.0.0.1:{p['listen_port']}", p["upstream"], p["link"])
    console.print(proxies)


# -- doctor --------------------------------------------------------------------------------------


def cmd_doctor(args: argparse.Namespace) -> int:
    from loadkit.doctor import run_checks

    checks = run_checks(Path(args.runs))
    missing_required = [c for c in checks if c.required and not c.ok]
    if args.json:
        print(json.dumps([c.to_dict() for c in checks], indent=2))
    else:
        table = Table(title=f"loadkit {__version__} — doctor", title_justify="left")
        table.add_column("component", no_wrap=True)
        table.add_column("", no_wrap=True)
        table.add_column("found / how to get it", overflow="fold")
        python = [c for c in checks if c.name.startswith("python: ")]
        missing_py = [c.name.removeprefix("python: ") for c in python if not c.ok]
        if missing_py:
            table.add_row(
                "python packages",
                "[red]✗[/]",
                f"missing: {', '.join(missing_py)}\n[dim]→ pip install -e . (or make setup)[/]",
            )
        else:
            table.add_row("python packages", "[green]✓[/]", f"all {len(python)} installed")
        for c in checks:
            if c in python:
                continue
            mark = "[green]✓[/]" if c.ok else ("[red]✗[/]" if c.required else "[yellow]–[/]")
            text = escape(c.detail) + (f"\n[dim]→ {escape(c.fix)}[/]" if c.fix else "")
            table.add_row(c.name, mark, text)
        console.print(table)
        if missing_required:
            err_console.print(f"[red]{len(missing_required)} required component(s) missing[/]")
    return ExitCode.ENVIRONMENT if missing_required else ExitCode.OK


# -- run ------------------------------------------------------------------------------------------


def cmd_run(args: argparse.Namespace) -> int:
    from loadkit.run.orchestrator import RunOptions

    options = RunOptions(
        profile=Path(args.profile),
        target=args.target,
        workers=args.workers,
        out=Path(args.out),
        time_scale=args.time_scale,
        stack_dir=Path(args.stack_dir) if args.stack_dir else None,
        chaos=Path(args.chaos) if args.chaos else None,
        remote_workers=args.remote_workers,
        master_port=args.master_port,
        master_bind=args.master_bind,
        wallet_unsafe=args.wallet_unsafe,
        command=["loadkit", *sys.argv[1:]],
        slo=Path(args.slo) if args.slo else None,
        slo_abort=args.slo_abort,
        allow=tuple(args.allow or ()),
        tags=tuple(args.tags or ()),
        exclude_tags=tuple(args.exclude_tags or ()),
        system=Path(args.system) if getattr(args, "system", None) else None,
        ca=Path(args.ca) if getattr(args, "ca", None) else None,
    )
    return _run_and_summarise(options, args, as_json=args.json)


def _run_and_summarise(
    options: RunOptions, args: argparse.Namespace | None = None, *, as_json: bool = False
) -> int:
    """Run with live progress; the reports (and the gate) are written at the run's end however
    it ended; print the summary (``as_json``: ``report.json`` instead of the terminal report).
    Exit 0 only for a completed run that passed."""
    from loadkit.gate import load_slo
    from loadkit.report.formats import ALL_FORMATS
    from loadkit.run.orchestrator import Runner
    from loadkit.run.progress import LiveProgress
    from loadkit.run.reports import ReportListener

    runner = Runner(options, None)  # validates the profile and the target: nothing started yet
    slo = load_slo(options.slo) if options.slo is not None else None
    # --web / --metrics: serving before the run starts (their addresses are checked here too)
    view = None
    if args is not None:
        title = runner.profile.name
        view = open_live(args, runner.allowlist, title=title, console=console, slo=slo)
    try:
        with LiveProgress(console, runner.profile.name) as live:
            runner.on_progress = live.update
            # the live line goes before the terminal report prints
            runner.events.stopping.add_listener(lambda run, reason: live.stop())
            # report.html / summary.md / report.json / junit.xml (with the gate), the terminal
            formats = [f for f in ALL_FORMATS if not (as_json and f == "terminal")]
            reports = ReportListener(formats, slo=slo, console=console)
            reports.attach(runner.events)
            if view is not None:  # after the reports: the page links them once written
                view.attach(runner)
            try:
                result = runner.run()
            except LoadkitError:
                # aborted (exit 4) or interrupted (130): the reports were written all the same
                if as_json and "json" in reports.written:
                    print(reports.written["json"].read_text(encoding="utf-8"), end="")
                raise
        code = _summarise(result, reports.gate, as_json=as_json)
        if options.chaos is not None:
            from loadkit.cli.chaos import print_rollback_hint

            if print_rollback_hint(result.run_dir):
                code = ExitCode.ENVIRONMENT  # as `chaos run`: the system is not as it was
    except BaseException:
        close_live(view, console, linger=False)
        if runner.rundir is not None:  # faults still in place: say how to put them back
            from loadkit.cli.chaos import print_rollback_hint

            print_rollback_hint(runner.rundir.path)
        raise
    # an open live page keeps its report links working for a while
    close_live(view, console, linger=True)
    return code


def _summarise(result: Any, gate: Any, *, as_json: bool = False) -> int:
    """Print where the reports are and what went wrong (``as_json``: ``report.json`` on
    stdout, the rest on stderr); the exit code."""
    from loadkit.report.rundata import insecure_urls
    from loadkit.rundir import RunDir, RunStatus

    rd = RunDir(result.run_dir)
    if as_json:
        print(rd.report_json.read_text(encoding="utf-8") if rd.report_json.exists() else "null")
    (err_console if as_json else console).print(
        f"report: {rd.report_html}\nrun directory: {result.run_dir}",
        soft_wrap=True,
        highlight=False,
    )
    insecure = insecure_urls(result.record.target)
    if insecure:
        err_console.print(
            Text.assemble(
                ("TLS NOT VERIFIED: ", "bold red"),
                f"certificates of {', '.join(insecure)} were not checked (verify: false); "
                "a man in the middle would have gone unnoticed",
            ),
            soft_wrap=True,
        )
    if result.status != RunStatus.COMPLETED:
        err_console.print(
            Text.assemble(("run " + result.status + ": ", "bold red"), result.record.reason or ""),
            soft_wrap=True,
        )
    integrity = result.integrity
    # the status stays `completed` (the load ran as planned); the exit code says money went wrong
    violated = integrity is not None and integrity.ok is False
    if integrity is not None and violated:
        err_console.print(
            Text.assemble(
                ("money integrity VIOLATED: ", "bold red"), "; ".join(integrity.problems())
            ),
            soft_wrap=True,
        )
    if gate is not None:  # its table ended the terminal report
        return ExitCode.OK if gate.passed and not violated else ExitCode.FAILED
    if result.status != RunStatus.COMPLETED or violated:
        return ExitCode.FAILED
    return ExitCode.OK


def cmd_demo(args: argparse.Namespace) -> int:
    from loadkit.demo import demo_options

    console.print(
        "[bold]loadkit demo[/]: starts the reference wallet stack, runs Double 11 night compressed "
        "to 2.5 minutes, crashes the database at the midnight peak and slows a database link "
        "after it, then reports what users saw and stops everything.",
        highlight=False,
    )
    if args.tls:
        console.print("over HTTPS: the stack makes its own CA; everything verifies with it")
    return _run_and_summarise(demo_options(Path(args.out), tls=args.tls), as_json=args.json)


def cmd_worker(args: argparse.Namespace) -> int:
    import os

    from loadkit.run.orchestrator import worker_argv

    argv = list(worker_argv(args.master))
    sys.stdout.flush()
    # the Locust worker takes this process's place: a signal to `loadkit worker` (Ctrl-C, a
    # kill, a machine going away) reaches the worker itself, and nothing is left behind
    os.execv(argv[0], argv)
    return ExitCode.OK  # not reached


# -- init ----------------------------------------------------------------------------------------


def cmd_init(args: argparse.Namespace) -> int:
    from loadkit.scaffold import scaffold

    result = scaffold(args.url, Path(args.out), name=args.name, force=args.force)
    if args.json:
        data = {
            "files": [str(p) for p in result.files],
            "checked": list(result.summaries),
            "next": list(result.next_steps),
        }
        print(json.dumps(data, indent=2))
        return ExitCode.OK
    for path in result.files:
        console.print(Text.assemble(("wrote ", "green"), str(path)), soft_wrap=True)
    for line in result.summaries:
        console.print(Text.assemble(("ok ", "green"), line), soft_wrap=True)
    console.print("\nnext:", style="bold")
    for step in result.next_steps:
        console.print(f"  {step}", soft_wrap=True, highlight=False)
    return ExitCode.OK


# -- validate ------------------------------------------------------------------------------------


def cmd_validate(args: argparse.Namespace) -> int:
    from loadkit.run.validate import validate_file
    from loadkit.spec import Problem, SpecError

    problems: list[Problem] = []
    results: list[dict[str, Any]] = []
    for path in args.files:
        try:
            summary = validate_file(path)
        except SpecError as exc:
            problems.extend(exc.problems)
            results.append({"file": path, "ok": False, "problems": [str(x) for x in exc.problems]})
        else:
            results.append({"file": path, "ok": True, "summary": summary})
            if not args.json:
                console.print(Text.assemble(("ok ", "green"), summary), soft_wrap=True)
    if args.json:
        print(json.dumps(results, indent=2))
        return ExitCode.USAGE if problems else ExitCode.OK
    if problems:
        raise SpecError(problems)
    return ExitCode.OK


# -- parser --------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="loadkit",
        description="Load and chaos testing for digital-wallet services: how often users see "
        "'wallet busy' when traffic surges and parts of the system fail, and whether money is "
        "lost.",
        epilog=exit_codes(ok="", failed="", usage="", environment="", aborted="", interrupted="")
        + "\n\nEach command lists its own: loadkit COMMAND --help.",
        formatter_class=Formatter,
    )
    parser.add_argument("--version", action="version", version=f"loadkit {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    stack = command(
        sub,
        "stack",
        "the reference wallet stack (PostgreSQL, Toxiproxy, wallets): up, down, status",
        codes=exit_codes(ok="", usage="", environment=""),
    )
    stack_sub = stack.add_subparsers(dest="stack_command", metavar="ACTION", required=True)

    def with_dir(p: argparse.ArgumentParser, json_what: str) -> argparse.ArgumentParser:
        add_stack_dir_arg(p)
        add_json_arg(p, json_what)
        p.add_argument(
            "--backend",
            choices=["process", "docker"],
            help="processes (default) or containers through the Docker engine (docs/docker.md)",
        )
        return p

    up = with_dir(
        command(
            stack_sub,
            "up",
            "start the stack and wait until it is ready",
            codes=exit_codes(
                ok="the stack is up and ready",
                usage="a bad option",
                environment="a component is missing or did not start (what started is stopped)",
            ),
        ),
        "the status table",
    )
    up.add_argument("--instances", type=int, default=2, help="wallet instances (default 2)")
    up.add_argument("--users", type=int, default=1000, help="seeded users (default 1000)")
    up.add_argument("--merchants", type=int, default=50, help="seeded merchants (default 50)")
    up.add_argument(
        "--balance",
        type=int,
        default=1_000_000,
        help="seed balance per user in fen (default 1000000)",
    )
    up.add_argument(
        "--pg-dsn", help="use this PostgreSQL (on loopback) instead of the embedded one"
    )
    up.add_argument(
        "--unsafe",
        metavar="MODE",
        help="DELIBERATELY UNSAFE wallets (ack-before-commit, ignore-idempotency, misapply), "
        "to show the integrity check catching them",
    )
    up.add_argument(
        "--tls",
        action="store_true",
        help="serve the wallets over HTTPS with certificates from the stack's own CA (ca.pem "
        "beside the manifest; runs against the stack verify with it)",
    )
    up.add_argument(
        "--image",
        help="--backend docker: run this image (e.g. built from docker/Dockerfile) instead of "
        "building loadkit-stack images here",
    )
    up.set_defaults(func=cmd_stack_up)
    down = with_dir(
        command(
            stack_sub,
            "down",
            "stop the stack; leaves no process",
            codes=exit_codes(
                ok="stopped (or nothing was running)",
                environment="--backend docker: the Docker engine does not answer",
            ),
        ),
        "a line",
    )
    down.add_argument(
        "--runs",
        default="reports",
        metavar="DIR",
        help="also stop the stacks killed runs left in DIR/*/stack (default reports/)",
    )
    down.set_defaults(func=cmd_stack_down)
    with_dir(
        command(
            stack_sub,
            "status",
            "what runs where",
            codes=exit_codes(
                ok="every component is healthy",
                environment="no stack runs there, or a component is down",
            ),
        ),
        "the status table",
    ).set_defaults(func=cmd_stack_status)

    run = command(
        sub,
        "run",
        "run a load profile against the reference stack, --target or --system",
        description="Run a load profile (open-model arrivals shaped like a surge) against the "
        "reference wallet stack, or your own service with --target or --system FILE, optionally "
        "with a chaos scenario on the same clock and an SLO gate at the end. Writes a run "
        "directory with report.html, summary.md, report.json and junit.xml, however the run "
        "ends.",
        codes=exit_codes(
            ok="the run completed (and met its SLO, money intact)",
            failed="the SLO failed, money integrity was violated, or the run is invalid or failed",
            usage="a bad profile, scenario, SLO file or option (nothing was started)",
            environment="a component is missing or did not start, or a fault could not be put "
            "back (the rollback command is printed)",
            aborted="an abort condition stopped the run (faults rolled back, reports written)",
            interrupted="Ctrl-C or SIGTERM (faults rolled back, reports written)",
        ),
    )
    run.add_argument("profile", metavar="PROFILE", help="a profile file, e.g. profiles/smoke.yaml")
    run.add_argument(
        "--target", help="URL(s) of your own service, comma-separated (not with --system)"
    )
    run.add_argument(
        "--system",
        metavar="FILE",
        help="a system file (systems/*.yaml): your services, TLS, headers, allowlist, checks; "
        "--chaos faults act on its own toxiproxy, docker, postgres and commands (docs/game-day.md)",
    )
    run.add_argument("--ca", metavar="FILE", help="a CA bundle for --target's https:// URLs")
    add_allow_arg(run)
    add_tag_args(run)
    run.add_argument(
        "--workers", type=int, default=0, help="Locust worker processes (0 = one process)"
    )
    add_out_arg(run, "where run directories go (default reports/)", default="reports")
    run.add_argument("--time-scale", type=float, help="override the profile's time_scale")
    add_stack_dir_arg(run, "use the reference stack running in this directory")
    run.add_argument("--chaos", metavar="SCENARIO", help="run a chaos scenario on the same clock")
    run.add_argument(
        "--remote-workers",
        type=int,
        default=0,
        help="also wait for N workers started elsewhere with `loadkit worker --master`",
    )
    run.add_argument("--master-port", type=int, help="the Locust master's port (default: free)")
    run.add_argument(
        "--master-bind",
        metavar="ADDR[:PORT]",
        help="where the master listens for workers on other hosts (default 127.0.0.1; another "
        "address only when allowed with --allow)",
    )
    run.add_argument(
        "--wallet-unsafe",
        metavar="MODE",
        help="start the run's own stack with DELIBERATELY UNSAFE wallets (ack-before-commit, "
        "ignore-idempotency, misapply); the integrity check must catch them",
    )
    run.add_argument(
        "--slo", metavar="SLO", help="gate the run on this SLO file at its end (exit 1 if it fails)"
    )
    run.add_argument(
        "--slo-abort",
        action="store_true",
        help="with --slo: stop the load as soon as an objective can no longer be met",
    )
    add_json_arg(run, "the terminal report (report.json on stdout)")
    add_live_args(run)
    run.set_defaults(func=cmd_run)

    add_chaos_parser(sub)
    add_report_parsers(sub)
    add_capacity_parsers(sub)
    add_profile_parsers(sub)
    add_gate_parser(sub)
    add_export_parser(sub)

    demo = command(
        sub,
        "demo",
        "the reference stack, a compressed Double 11 with faults, and its report",
        codes=exit_codes(
            ok="the demo ran (whatever its busy rate)",
            failed="the run failed or money integrity was violated",
            environment="a component is missing (loadkit doctor says which)",
            interrupted="Ctrl-C (everything stopped, reports written)",
        ),
    )
    add_out_arg(demo, "where the run directory goes (default reports/)", default="reports")
    add_json_arg(demo, "the terminal report (report.json on stdout)")
    demo.add_argument(
        "--tls", action="store_true", help="serve the wallets over HTTPS (the stack's own CA)"
    )
    demo.set_defaults(func=cmd_demo)

    worker = command(
        sub,
        "worker",
        "a Locust worker joining a master on another machine",
        codes=exit_codes(
            ok="the run ended and the worker's share was reported",
            failed="the worker failed (its log says why)",
            usage="a bad --master, or a bad run config from the master",
        ),
    )
    worker.add_argument(
        "--master",
        required=True,
        metavar="HOST:PORT",
        help="where `loadkit run --remote-workers N` listens (its --master-bind and port)",
    )
    worker.set_defaults(func=cmd_worker)

    init = command(
        sub,
        "init",
        "scaffold a profile, an SLO file and a chaos scenario for a service",
        description="Write a commented profile, SLO file and chaos scenario that validate, for "
        "your service at URL (or for the reference wallet when no URL is given).",
        codes=exit_codes(
            ok="written",
            usage="a bad URL or name, or a file exists (nothing written; --force replaces)",
        ),
    )
    init.add_argument("url", nargs="?", metavar="URL", help="your service's base URL")
    add_out_arg(init, "where to write (default .)", default=".")
    init.add_argument("--name", help="the profile's name (default: from the URL)")
    init.add_argument("--force", action="store_true", help="replace files that exist")
    add_json_arg(init, "the list of files written")
    init.set_defaults(func=cmd_init)

    validate = command(
        sub,
        "validate",
        "check profile, scenario, SLO and system files without starting anything",
        codes=exit_codes(
            ok="every file is valid",
            usage="a file has mistakes (each printed as file:line:col)",
        ),
    )
    validate.add_argument(
        "files", nargs="+", metavar="FILE", help="files to check (the kind is read from each)"
    )
    add_json_arg(validate, "one line per file")
    validate.set_defaults(func=cmd_validate)

    doctor = command(
        sub,
        "doctor",
        "what is installed, what is missing, how to get it",
        codes=exit_codes(
            ok="everything required is there",
            environment="a required component is missing",
        ),
    )
    add_json_arg(doctor, "the table")
    doctor.add_argument(
        "--runs",
        default="reports",
        metavar="DIR",
        help="find and stop stacks killed runs left in DIR/*/stack (default reports/)",
    )
    doctor.set_defaults(func=cmd_doctor)

    add_completion_parser(sub)
    return parser


def _sigterm_as_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``loadkit`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    # SIGTERM takes the same clean-up path as Ctrl-C
    signal.signal(signal.SIGTERM, _sigterm_as_interrupt)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return int(func(args))
    except LoadkitError as exc:
        # one red line per problem (a file with three mistakes shows all three)
        for line in exc.message.splitlines():
            err_console.print(Text.assemble(("error: ", "bold red"), line), soft_wrap=True)
        if exc.detail:
            err_console.print(exc.detail, style="dim", highlight=False, markup=False)
        return int(exc.exit_code)
    except KeyboardInterrupt:
        err_console.print("[yellow]interrupted[/]: everything started was stopped")
        return int(ExitCode.INTERRUPTED)


if __name__ == "__main__":
    sys.exit(main())
