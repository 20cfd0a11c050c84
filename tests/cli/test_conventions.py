"""One CLI convention: every command and argument has help, every command lists its exit codes,
the same flag means the same thing everywhere, tables come as JSON with --json, and the shell
completion scripts complete what the parser knows."""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from loadkit.cli.completion import completion_script, tree
from loadkit.cli.main import build_parser
from loadkit.errors import ExitCode
from tests.support import loadkit

#: commands that print a table, each of which takes --json
TABLES = {
    "stack up",
    "stack status",
    "run",
    "demo",
    "chaos run",
    "chaos list",
    "report",
    "compare",
    "capacity",
    "gate",
    "doctor",
}
#: one spelling per thing: dest → the option strings it must have
SAME_FLAG = {"stack_dir": ["--stack-dir"], "out": ["-o", "--out"], "json": ["--json"]}


def commands() -> Iterator[tuple[str, argparse.ArgumentParser, str]]:
    """Every (sub)command: its path, parser and the one-line help it is listed with."""

    def walk(
        p: argparse.ArgumentParser, path: str, help: str
    ) -> Iterator[tuple[str, argparse.ArgumentParser, str]]:
        yield path, p, help
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                helps = {c.dest: c.help or "" for c in action._choices_actions}
                for name, child in action.choices.items():
                    yield from walk(child, f"{path} {name}".strip(), helps.get(name, ""))

    yield from walk(build_parser(), "", "the loadkit command")


def test_every_command_and_argument_has_help_and_every_command_its_exit_codes() -> None:
    missing: list[str] = []
    for path, parser, help in commands():
        name = path or "loadkit"
        if not help:
            missing.append(f"{name}: no help")
        if not parser.description:
            missing.append(f"{name}: no description")
        epilog = parser.epilog or ""
        if not epilog.startswith("exit codes:") or "\n    0  " not in epilog:
            missing.append(f"{name}: no exit codes in its help")
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction | argparse._VersionAction):
                continue
            if isinstance(action, argparse._SubParsersAction):
                continue
            if action.help == argparse.SUPPRESS:
                continue  # an old spelling kept working, on purpose unlisted
            if not action.help:
                missing.append(f"{name} {'/'.join(action.option_strings) or action.dest}: no help")
    assert not missing, "\n".join(missing)


def test_the_same_thing_has_the_same_flag_everywhere() -> None:
    wrong: list[str] = []
    has_json: set[str] = set()
    for path, parser, _help in commands():
        for action in parser._actions:
            if action.help == argparse.SUPPRESS or not action.option_strings:
                continue
            expected = SAME_FLAG.get(action.dest)
            if expected is not None and action.option_strings != expected:
                wrong.append(f"{path}: {action.option_strings} for {action.dest}")
            if action.option_strings in (["--dir"], ["--output"]):
                wrong.append(f"{path}: {action.option_strings[0]} is listed")
            if action.dest == "json":
                has_json.add(path)
    assert not wrong, "\n".join(wrong)
    assert not TABLES - has_json, f"print a table without --json: {sorted(TABLES - has_json)}"


def test_old_spellings_still_work() -> None:
    parser = build_parser()
    args = parser.parse_args(["stack", "status", "--dir", "/tmp/s"])
    assert args.stack_dir == "/tmp/s"
    args = parser.parse_args(["profile", "from-traffic", "t.csv", "--output", "p.yaml"])
    assert args.out == "p.yaml"
    assert parser.parse_args(["report", "r", "-o", "x"]).out == "x"


def test_help_shows_the_exit_codes_and_hides_old_spellings() -> None:
    run = loadkit("stack", "status", "--help", columns=100)
    assert run.returncode == 0
    assert "exit codes:\n    0  every component is healthy\n    3  " in run.stdout
    assert "--stack-dir DIR" in run.stdout and "--dir" not in run.stdout
    top = loadkit("--help", columns=100)
    assert "  130  interrupted by Ctrl-C or SIGTERM" in top.stdout


def test_json_output_of_table_commands(tmp_path: Path) -> None:
    listing = loadkit("chaos", "list", "--json")
    assert listing.returncode == 0 and json.loads(listing.stdout)[0]["type"]
    good = tmp_path / "slo.yaml"
    good.write_text("objectives:\n  - max_busy_rate: 1%\n")
    bad = tmp_path / "bad.yaml"
    bad.write_text("objectives:\n  - max_busy_rat: 1%\n")
    checked = loadkit("validate", str(good), str(bad), "--json")
    assert checked.returncode == ExitCode.USAGE, checked.stderr
    results = json.loads(checked.stdout)
    assert [r["ok"] for r in results] == [True, False]
    assert "did you mean 'max_busy_rate'" in results[1]["problems"][0]


def _bash_complete(script: Path, line: str) -> list[str]:
    words = line.split(" ")
    code = (
        f"source {script}\n"
        f"COMP_WORDS=({' '.join(repr(w) for w in words)})\n"
        f"COMP_CWORD={len(words) - 1}\n"
        "_loadkit\n"
        'printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    out = subprocess.run(["bash", "-c", code], capture_output=True, text=True, check=True)
    return out.stdout.split()


def test_bash_completion_completes_commands_options_and_choices(tmp_path: Path) -> None:
    script = tmp_path / "loadkit.bash"
    script.write_text(completion_script("bash"))
    subprocess.run(["bash", "-n", str(script)], check=True)
    assert _bash_complete(script, "loadkit st") == ["stack"]
    assert set(_bash_complete(script, "loadkit stack ")) == {"up", "down", "status"}
    run_opts = _bash_complete(script, "loadkit run --")
    assert {"--stack-dir", "--out", "--json", "--slo", "--chaos"} <= set(run_opts)
    assert "--dir" not in run_opts
    assert _bash_complete(script, "loadkit stack up --backend d") == ["docker"]
    assert _bash_complete(script, "loadkit report --format h") == []  # free text: files
    assert _bash_complete(script, "loadkit chaos run --stack-dir /tmp/x --") != []
    assert set(_bash_complete(script, "loadkit completion ")) == {"bash", "zsh", "fish"}


@pytest.mark.parametrize("shell", ["zsh", "fish"])
def test_zsh_and_fish_scripts(shell: str) -> None:
    script = completion_script(shell)
    nodes = tree(build_parser())
    assert len(nodes) > 15 and all(n.path in script for n in nodes if n.path)
    binary = shutil.which(shell)
    if binary is None:
        pytest.skip(f"{shell} is not installed")
    subprocess.run([binary, "-n" if shell == "zsh" else "--no-execute", "-c", script], check=True)
    if shell == "fish":
        ask = "; ".join(f"complete -C {q!r}; echo ---" for q in FISH_ASKS)
        out = subprocess.run(
            [binary, "-c", f"{script}\n{ask}"], capture_output=True, text=True, check=True
        ).stdout
        answers = [
            [line.split("\t")[0] for line in part.split("\n") if line]
            for part in out.split("---\n")
        ]
        assert answers[0] == ["stack"]
        assert answers[1] == ["--stack-dir"]
        assert answers[2] == ["docker", "process"]
        assert answers[3] == ["bash", "fish", "zsh"]
    else:  # what zsh runs: the bash function, under bashcompinit's sh emulation
        ask = (
            'COMP_WORDS=(loadkit stack u); COMP_CWORD=2; _loadkit; printf "%s\\n" "${COMPREPLY[@]}"'
        )
        out = subprocess.run(
            [binary, "-c", f"{script}\nemulate sh -c '{ask}'"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert set(out.split()) == {"up", "down", "status"}  # zsh filters by prefix itself


FISH_ASKS = [
    "loadkit st",
    "loadkit run --st",
    "loadkit stack up --backend ",
    "loadkit completion ",
]
