"""The loadkit error tree and the exit codes the CLI maps it to.

Every error a user can cause or meet derives from :class:`LoadkitError`; the CLI catches it once,
prints one red line and exits with the error's ``exit_code``::

    raise ConfigError("profiles/x.yaml:3:5: stages[0].duration: expected a duration like '90s'")
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Exit codes, as docs/design.md documents them."""

    OK = 0
    FAILED = 1  # an SLO or gate failed, integrity violated
    USAGE = 2  # usage or configuration error
    ENVIRONMENT = 3  # a component missing or failing to start
    ABORTED = 4  # run aborted by a safety condition
    INTERRUPTED = 130  # interrupted (after rollback)


class LoadkitError(Exception):
    """Root of every error loadkit raises on purpose."""

    exit_code: ExitCode = ExitCode.FAILED

    def __init__(self, message: str, *, detail: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        #: optional extra lines (e.g. the tail of a component's log), printed dim under the message
        self.detail = detail


class ConfigError(LoadkitError):
    """Bad usage or a bad file: exit 2, nothing started."""

    exit_code = ExitCode.USAGE


class EnvironmentProblem(LoadkitError):
    """A component is missing or failed to start: exit 3."""

    exit_code = ExitCode.ENVIRONMENT


class ComponentFailed(EnvironmentProblem):
    """A stack component failed to start or to become ready; carries the tail of its log."""

    def __init__(self, component: str, reason: str, *, log_tail: str | None = None) -> None:
        super().__init__(f"{component} failed: {reason}", detail=log_tail)
        self.component = component


class StackNotRunning(EnvironmentProblem):
    """A command needs a running stack and there is none in the stack directory."""


class SafetyAbort(LoadkitError):
    """A run stopped by a safety condition: exit 4."""

    exit_code = ExitCode.ABORTED


class Interrupted(LoadkitError):
    """Ctrl-C or SIGTERM, after everything was put back: exit 130."""

    exit_code = ExitCode.INTERRUPTED
