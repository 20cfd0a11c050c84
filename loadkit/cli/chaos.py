"""``loadkit chaos run|list|rollback``: argument parsing and printing over the chaos library.

``add_chaos_parser(subparsers)`` registers the commands on loadkit's argparse subparsers; each
returns an exit code and raises :class:`~loadkit.errors.LoadkitError` for the CLI's ``main`` to
print as one red line::

    loadkit chaos run chaos/db-crash.yaml --stack-dir .loadkit/stack
    loadkit chaos rollback reports/20261111-000012-db-crash
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from loadkit.cli.args import (
    add_allow_arg,
    add_json_arg,
    add_out_arg,
    add_stack_dir_arg,
    command,
    exit_codes,
)
from loadkit.cli.live import add_live_args, close_live, open_live
from loadkit.errors import (
    EnvironmentProblem,
    ExitCode,
    Interrupted,
    SafetyAbort,
    StackNotRunning,
)

console = Console()
err_console = Console(stderr=True)


def _stack_dir(args: argparse.Namespace) -> Path:
    from loadkit.stack.reference import stack_dir_from

    return stack_dir_from(args.stack_dir)


def cmd_chaos_run(args: argparse.Namespace) -> int:
    from loadkit.chaos.dashboard import Dashboard, plan_table
    from loadkit.chaos.results import ChaosStatus
    from loadkit.chaos.scenario import load_scenario, make_plan
    from loadkit.profile.model import load_profile
    from loadkit.run.gameday import GamedayOptions, Prepared, prepare, run_gameday

    options = GamedayOptions(
        scenario=Path(args.scenario),
        stack_dir=_stack_dir(args),
        out=Path(args.out),
        profile=Path(args.profile) if args.profile else None,
        command=list(sys.argv),
        allow=tuple(args.allow or ()),
        system=Path(args.system) if args.system else None,
    )
    where = f"system {options.system}" if options.system else f"the stack in {options.stack_dir}"
    if args.dry_run:
        try:
            ready: Prepared | None = prepare(options)
        except StackNotRunning:
            ready = None
        targets: dict[str, list[str]] | None = None
        if ready is None:  # still show the plan; the targets are checked when a stack runs
            scenario = load_scenario(options.scenario)
            profile = load_profile(options.profile) if options.profile else None
            plan = make_plan(scenario, profile)
            note = f"no stack running in {options.stack_dir}: targets not checked"
        else:
            scenario, plan, targets = ready.scenario, ready.plan, ready.targets
            note = f"every target is allowlisted on {where}; nothing else is touched"
        if args.json:
            data = _plan_dict(scenario, plan, note)
            if targets is not None:
                data["targets"] = targets
            print(json.dumps(data, indent=2))
            return ExitCode.OK
        console.print(plan_table(plan, f"plan of '{scenario.name}' on the run clock", targets))
        for cond in scenario.abort:
            console.print(f"abort when {cond.describe()} ({cond.name})", highlight=False)
        console.print(f"run ends at {plan.end_s:g}s; {note}", highlight=False)
        return ExitCode.OK
    ready = prepare(options)
    view = open_live(args, ready.hosts, title=ready.scenario.name, console=console)
    feed = view.watch_gameday(ready.profile) if view is not None else None
    board: list[Dashboard] = []

    def watch(controller: Any) -> None:
        if feed is not None:
            feed(controller)
        if args.no_dashboard or args.json:
            return
        if not board:
            board.append(Dashboard(controller, console).__enter__())
        board[0].refresh()

    try:
        try:
            result = run_gameday(options, prepared=ready, watch=watch)
        finally:
            if board:
                board[0].__exit__(None, None, None)
    except BaseException:
        close_live(view, console, linger=False)
        print_rollback_hint(ready.run_dir)
        raise
    if feed is not None:
        feed.finish(result)
    close_live(view, console, linger=True)
    if args.json:
        data = {
            "run_dir": str(result.run_dir),
            "status": result.status.value,
            "reason": result.reason,
            "injected": result.injected,
            "reverted": result.reverted,
            "unreverted": list(result.unreverted),
            "errors": list(result.errors),
        }
        print(json.dumps(data, indent=2))
    else:
        console.print(f"run directory: {result.run_dir}", soft_wrap=True, highlight=False)
        console.print(
            f"{result.injected} fault(s) injected, {result.reverted} reverted; "
            f"status {result.status.value}",
            highlight=False,
        )
    if result.unreverted:
        raise EnvironmentProblem(
            "could not revert: " + "; ".join(result.unreverted),
            detail=f"retry with: loadkit chaos rollback {shlex.quote(str(result.run_dir))}",
        )
    if result.status is ChaosStatus.ABORTED:
        raise SafetyAbort(f"aborted, everything rolled back: {result.reason}")
    if result.status is ChaosStatus.HALTED:
        raise Interrupted(f"halted, everything rolled back: {result.reason}")
    if result.status is ChaosStatus.DEVIATED or result.errors:
        for line in [result.reason or "", *result.errors]:
            if line:
                err_console.print(Text.assemble(("failed: ", "bold red"), line), soft_wrap=True)
        return ExitCode.FAILED
    return ExitCode.OK


def print_rollback_hint(run_dir: Path | None) -> bool:
    """Whenever a run exits with faults still in place: the exact command that reverts them
    (True: it was printed, something is still in place)."""
    from loadkit.chaos.rollback import rollback_hint

    hint = rollback_hint(run_dir) if run_dir is not None else None
    if hint:
        err_console.print(Text.assemble(("warning: ", "bold yellow"), hint), soft_wrap=True)
    return hint is not None


def cmd_chaos_list(args: argparse.Namespace) -> int:
    from loadkit.chaos.catalog import describe_all

    rows = describe_all()
    if args.json:
        print(json.dumps([vars(r) for r in rows], indent=2))
        return ExitCode.OK
    table = Table(title="fault catalog (type: in a scenario's faults)", title_justify="left")
    for col in ("type", "target", "window", "what it does", "parameters (default)"):
        table.add_column(col, overflow="fold")
    for r in rows:
        params = "\n".join(f"{p['name']} ({p['default']}): {p['help']}" for p in r.params)
        table.add_row(r.type, r.target, r.window, r.summary, params or "-")
    console.print(table)
    console.print(
        "every fault also takes: name, target, at (90s, or phase+10s), duration or until",
        highlight=False,
    )
    return ExitCode.OK


def cmd_chaos_rollback(args: argparse.Namespace) -> int:
    from loadkit.chaos.rollback import rollback_run

    result = rollback_run(
        Path(args.run_dir),
        stack_dir=Path(args.stack_dir) if args.stack_dir else None,
        system=Path(args.system) if args.system else None,
        force=args.force,
    )
    if args.json:
        data = {
            "reverted": [{"fault": f, "detail": d} for f, d in result.reverted],
            "failed": [{"fault": f, "error": e} for f, e in result.failed],
        }
        print(json.dumps(data, indent=2))
    elif not result.reverted and not result.failed:
        console.print("nothing to roll back: the journal shows every fault reverted")
    for fault, detail in [] if args.json else result.reverted:
        console.print(Text.assemble(("reverted ", "green"), f"{fault}: {detail}"), soft_wrap=True)
    if result.failed:
        raise EnvironmentProblem(
            "could not revert: " + "; ".join(f"{f}: {e}" for f, e in result.failed)
        )
    return ExitCode.OK


def _plan_dict(scenario: Any, plan: Any, note: str) -> dict[str, Any]:
    """``chaos run --dry-run --json``: the plan as data."""
    return {
        "scenario": scenario.name,
        "faults": [
            {
                "id": f.id,
                "name": f.spec.name,
                "type": f.spec.type,
                "target": f.spec.target,
                "start_s": f.start_s,
                "end_s": f.end_s,
                "params": {k: v for k, v in f.spec.params.items()},
            }
            for f in plan.faults
        ],
        "abort": [c.describe() for c in scenario.abort],
        "end_s": plan.end_s,
        "note": note,
    }


CHAOS_RUN_CODES = exit_codes(
    ok="every fault injected and reverted, the steady state held",
    failed="the steady state deviated, or a fault could not be injected",
    usage="a bad scenario, profile or option (nothing was injected)",
    environment="no stack runs there, or a fault could not be reverted (see rollback)",
    aborted="an abort condition fired (everything rolled back)",
    interrupted="halted from the dashboard, the web view or Ctrl-C (everything rolled back)",
)


def add_actions(sub: Any) -> None:
    """Add ``run``, ``list`` and ``rollback`` to an argparse subparsers action."""
    run = command(
        sub,
        "run",
        "run a chaos scenario against a running stack, or a system file's components (--system)",
        codes=CHAOS_RUN_CODES,
    )
    run.add_argument(
        "scenario", metavar="SCENARIO", help="a scenario file, e.g. chaos/db-crash.yaml"
    )
    add_stack_dir_arg(run, "the running stack (default: $LOADKIT_STACK_DIR or .loadkit/stack)")
    run.add_argument(
        "--system",
        metavar="FILE",
        help="faults on this system file's own components (toxiproxy, docker, postgres, "
        "commands) instead of the reference stack (docs/game-day.md)",
    )
    add_allow_arg(run)
    add_out_arg(run, "where run directories go (default reports/)", default="reports")
    run.add_argument("--profile", help="a profile, to place phase-relative times (no load is sent)")
    run.add_argument("--dry-run", action="store_true", help="print the plan; inject nothing")
    run.add_argument("--no-dashboard", action="store_true", help="no live dashboard")
    add_json_arg(run, "the plan (--dry-run) or the dashboard and summary")
    add_live_args(run)
    run.set_defaults(func=cmd_chaos_run)
    listing = command(
        sub,
        "list",
        "every fault type with its parameters and defaults",
        codes=exit_codes(ok="printed"),
    )
    add_json_arg(listing, "the table")
    listing.set_defaults(func=cmd_chaos_list)
    rollback = command(
        sub,
        "rollback",
        "revert what a run's journal shows still injected",
        codes=exit_codes(
            ok="nothing was left injected, or everything left was reverted",
            usage="not a run directory, or its controller still runs (--force)",
            environment="a fault could not be reverted",
        ),
    )
    rollback.add_argument(
        "run_dir", metavar="RUN_DIR", help="the run directory whose journal (events.jsonl) to read"
    )
    add_stack_dir_arg(rollback, "the stack (default: the one the journal names)")
    rollback.add_argument(
        "--system", metavar="FILE", help="the system file (default: the one the journal names)"
    )
    rollback.add_argument(
        "--force", action="store_true", help="even if the run's controller still runs"
    )
    add_json_arg(rollback, "one line per fault")
    rollback.set_defaults(func=cmd_chaos_rollback)


def add_chaos_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``chaos run|list|rollback`` on loadkit's top-level subparsers."""
    chaos = command(
        subparsers,
        "chaos",
        "fault scenarios on the run clock, with rollback (run, list, rollback)",
        codes=CHAOS_RUN_CODES,
    )
    add_actions(chaos.add_subparsers(dest="chaos_command", metavar="ACTION", required=True))
    return chaos
