"""``loadkit export RUN_DIR [--what acks|timeline] [-o FILE]``: a run's compact files as JSON
lines, for people who grep.

``acks`` writes one JSON object per acknowledgement record of every log of the run
(``acks.bin``, then each load process's own log in ``acks.d/``; the ``.jsonl`` logs of older
runs too), with the fields docs/run-directory.md lists; ``timeline`` writes the timeline's
deltas (its schema header left out). Exit codes: ``0`` written, ``2`` not a run directory or a
bad option::

    loadkit export reports/20261128-193000-double11 | grep '"view":"unknown"'
    loadkit export reports/20261128-193000-double11 --what timeline -o timeline.jsonl
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import orjson

from loadkit.cli.args import command, exit_codes
from loadkit.errors import ConfigError, ExitCode
from loadkit.rundir import RunDir
from loadkit.rundir.acks import read_records

WHAT = ("acks", "timeline")


def export_lines(run_dir: RunDir, what: str) -> Iterator[bytes]:
    """The JSON lines ``loadkit export`` writes for ``what`` (``acks`` or ``timeline``)::

    for line in export_lines(RunDir("reports/x"), "acks"): ...
    """
    if what == "acks":
        for path in run_dir.ack_logs():
            for record in read_records(path):
                yield orjson.dumps(record) + b"\n"
        return
    with contextlib.suppress(FileNotFoundError), run_dir.timeline.open("rb") as fh:
        for line in fh:
            if line.strip() and line.endswith(b"\n") and b'"schema"' not in line[:20]:
                yield line  # a line a killed writer left unfinished is not a delta


def cmd_export(args: argparse.Namespace) -> int:
    run_dir = RunDir.open(args.run_dir, "RUN_DIR")
    out: IO[bytes]
    if args.out in (None, "-"):
        out = sys.stdout.buffer
        _write(out, export_lines(run_dir, args.what))
        out.flush()
        return ExitCode.OK
    path = Path(args.out)
    try:
        with path.open("wb") as out:
            _write(out, export_lines(run_dir, args.what))
    except (FileNotFoundError, IsADirectoryError, PermissionError) as exc:
        raise ConfigError(f"-o {path}: cannot write: {exc.strerror}") from exc
    return ExitCode.OK


def _write(out: IO[bytes], lines: Iterator[bytes]) -> None:
    batch: list[bytes] = []
    for line in lines:
        batch.append(line)
        if len(batch) >= 4096:
            out.write(b"".join(batch))
            batch.clear()
    out.write(b"".join(batch))


def add_export_parser(sub: Any) -> None:
    """Register ``export`` on loadkit's subparsers."""
    export = command(
        sub,
        "export",
        "write a run's acknowledgement records or timeline as JSON lines",
        description="Write a run directory's acknowledgement records (acks.bin and acks.d/, "
        "one JSON object per money movement, with its final view) or its timeline deltas as "
        "JSON lines, for grep and jq. The run directory is only read.",
        codes=exit_codes(ok="written", usage="not a run directory, or a bad option"),
    )
    export.add_argument("run_dir", metavar="RUN_DIR", help="a run directory, e.g. reports/<run-id>")
    export.add_argument(
        "--what", choices=WHAT, default="acks", help="what to export (default: acks)"
    )
    export.add_argument(
        "-o", "--out", metavar="FILE", help="write to FILE instead of standard output ('-')"
    )
    export.set_defaults(func=cmd_export)
