"""User-supplied faults: a pair of commands from the system file (inject, revert), like Chaos
Toolkit's process actions, journaled and reverted like every other fault.

The target names a command of the system file's ``commands:``. Each runs without a shell, in
the system file's directory, with its own timeout (then its whole process group is killed).
The journal records the revert and check commands as they were, so ``loadkit chaos rollback``
reverts from the journal alone; a revert succeeded when it exits 0 and, if the command has a
``check``, the check exits 0 too::

    with make_fault(env, "command.run", "cache-off"):
        ...  # ./flags.sh set cache off ran; ./flags.sh set cache on runs after the block
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Mapping, Sequence

from loadkit.chaos.faults.base import ChaosEnv, Fault, FaultType, State, TargetKind, Window
from loadkit.errors import EnvironmentProblem


def run_command(argv: Sequence[str], *, cwd: str, timeout: float, what: str) -> str:
    """Run ``argv`` to its end within ``timeout``; its output's tail, or
    :class:`EnvironmentProblem` naming what failed (exit status or timeout, and stderr)."""
    try:
        proc = subprocess.Popen(
            list(argv),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,  # a timeout ends everything it started
        )
    except OSError as exc:
        raise EnvironmentProblem(f"{what}: cannot run {argv[0]!r}: {exc.strerror}") from exc
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        raise EnvironmentProblem(
            f"{what}: {' '.join(argv)} did not finish within {timeout:g}s (killed)"
        ) from None
    if proc.returncode != 0:
        tail = (err or out).strip()[-300:]
        raise EnvironmentProblem(
            f"{what}: {' '.join(argv)} exited {proc.returncode}" + (f": {tail}" if tail else "")
        )
    return (out or "").strip()[-300:]


class Run(Fault):
    """The system file's command pair: ``inject`` now, ``revert`` (then ``check``) at the end."""

    @classmethod
    def targets(cls, env: ChaosEnv, target: str, params: Mapping[str, object]) -> list[str]:
        spec = env.command(target)
        return [f"command {target}: {' '.join(spec.inject)} (revert: {' '.join(spec.revert)})"]

    def prepare(self) -> State:
        spec = self.env.command(self.target)
        return {
            "target": self.target,
            "inject": list(spec.inject),
            "revert": list(spec.revert),
            "check": list(spec.check) if spec.check else None,
            "timeout": spec.timeout_s,
            "cwd": spec.cwd,
        }

    def apply(self, state: State) -> State | None:
        out = run_command(
            state["inject"], cwd=state["cwd"], timeout=state["timeout"], what="inject"
        )
        return {"output": out} if out else None

    @classmethod
    def restore(cls, env: ChaosEnv, state: State) -> str:
        cwd, timeout = state["cwd"], float(state["timeout"])
        run_command(state["revert"], cwd=cwd, timeout=timeout, what="revert")
        if state.get("check"):
            run_command(state["check"], cwd=cwd, timeout=timeout, what="check after the revert")
            return f"{' '.join(state['revert'])} ran; check passed"
        return f"{' '.join(state['revert'])} ran"


TYPES = (
    FaultType(
        "command.run",
        "a command pair of the system file: inject now, revert (and check) after 'duration'",
        TargetKind.COMMAND,
        Window.SUSTAINED,
        Run,
        slot="command",
    ),
)
