"""How the reference stack's components run: one backend per kind, behind one small interface.

:class:`~loadkit.stack.reference.ReferenceStack` is the facade every caller uses (up, attach,
down, status, handles); it does what is the same for every backend (the manifest, the schema, the
Toxiproxy proxies, the seed, the wallets' command lines) and asks its :class:`Backend` for the
rest: starting PostgreSQL, Toxiproxy and each wallet instance, readiness, liveness, stopping.

- ``process`` (:mod:`.process`): local OS processes (embedded PostgreSQL, ``toxiproxy-server``,
  ``python -m loadkit.wallet serve``);
- ``docker`` (:mod:`.docker`): the same components as containers with host networking.

The manifest's ``backend`` field names it, so any later process attaches to the right one::

    backend_class("docker")        # DockerBackend (imported on first use)
    stack.backend.name             # 'process'
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from loadkit.errors import ConfigError

if TYPE_CHECKING:
    from loadkit.stack.manifest import WalletInfo
    from loadkit.stack.postgres import Postgres
    from loadkit.stack.reference import ReferenceStack, StackOptions

#: backend name → ``module:class`` (imported on first use: the Docker SDK is not needed for
#: processes, and neither backend is needed to read a manifest)
BACKENDS = {
    "process": "loadkit.stack.backends.process:ProcessBackend",
    "docker": "loadkit.stack.backends.docker:DockerBackend",
}


class Backend(Protocol):
    """What one kind of stack does differently; the facade calls it with itself as ``stack``
    (its ``manifest``, ``stack_dir`` and ``save()``)."""

    name: ClassVar[str]
    #: the interpreter a wallet instance's command line starts with
    python: ClassVar[str]

    def __init__(self, stack: ReferenceStack) -> None: ...

    @classmethod
    def prepare(cls, opts: StackOptions) -> StackOptions:
        """Before anything is written: check what this backend needs (exit 3 when it is
        missing); the options to start with (the Docker image to use, say)."""
        ...

    def start_postgres(self, opts: StackOptions, logs: Path) -> str:
        """Start the stack's own PostgreSQL and create the wallet database; its DSN."""
        ...

    def start_toxiproxy(self, opts: StackOptions, port: int, logs: Path) -> None:
        """Start the Toxiproxy server on ``port``, record it in the manifest, wait for its API."""
        ...

    def spawn_wallet(
        self, w: WalletInfo, argv: list[str], env: dict[str, str], opts: StackOptions | None
    ) -> None:
        """Start instance ``w`` (the first time with ``opts``, again after a crash without),
        and record its process in the manifest; does not wait for it to be ready."""
        ...

    def wait_wallets_ready(self, wallets: Iterable[WalletInfo], timeout: float) -> None:
        """Wait until every instance answers ``/readyz`` (ComponentFailed with its log if not)."""
        ...

    def postgres(self) -> Postgres | None:
        """A handle on the stack's own PostgreSQL (None with an external server)."""
        ...

    def any_alive(self) -> bool:
        """Whether any component still runs (a stack to stop before starting another)."""
        ...

    def annotate_status(self, status: dict[str, Any]) -> None:
        """Add what this backend knows to :meth:`ReferenceStack.status`'s answer."""
        ...

    def stop(self) -> list[str]:
        """Stop every component and delete the database; the names of those that were running.
        ComponentFailed when something could not be stopped (the manifest is then kept)."""
        ...


def backend_class(name: str) -> type[Backend]:
    """The backend called ``name`` (``process`` or ``docker``)."""
    where = BACKENDS.get(name)
    if where is None:
        raise ConfigError(f"backend: expected one of {', '.join(BACKENDS)}, got {name!r}")
    module, _, attr = where.partition(":")
    cls: type[Backend] = getattr(importlib.import_module(module), attr)
    return cls
