"""``loadkit run --chaos``: the chaos controller as a run listener, on the run's own clock.

It is made (and the scenario validated, against the profile's phases) before anything starts;
at ``starting`` it checks the plan against the allowlist of what the faults act on (the run's
system file, ``runner.system``, or else the reference stack) and takes that system's lock, at
``started`` it starts the faults on the run clock, and at ``stopping`` it reverts whatever is
still in, whatever the operator presses meanwhile. Faults going in and out are re-published as
the run's ``fault_injected`` / ``fault_reverted`` events; an abort condition aborts the run
(exit 4, load stopped)::

    ChaosListener(Path("chaos/db-crash.yaml")).attach(runner.events)
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from loadkit.chaos import Controller, Scenario, load_scenario
from loadkit.chaos.controller import FaultEvent
from loadkit.errors import ConfigError
from loadkit.run.events import RunListener

if TYPE_CHECKING:
    from loadkit.run.orchestrator import Runner


class ChaosListener(RunListener):
    def __init__(self, path: Path) -> None:
        self.path = path
        self.scenario: Scenario = load_scenario(path)  # validated before anything starts
        self.controller: Controller | None = None
        self._run: Runner | None = None
        self._rolled_back = False

    @property
    def fault_names(self) -> list[str]:
        """The names an SLO file may scope objectives to (``name`` and ``f01``…)."""
        names = [f.name for f in self.scenario.faults]
        return names + [f"f{i + 1:02d}" for i in range(len(names))]

    def on_starting(self, run: Runner) -> None:
        system = getattr(run, "system", None)
        target = system if system is not None else run.stack
        if target is None:
            raise ConfigError(
                "--chaos: faults go to the reference stack's components or to a system file's "
                "(--system FILE: its toxiproxy, docker, postgres and commands); use --system "
                "instead of --target, drop --target (loadkit starts the stack) or add --stack-dir"
            )
        self._run = run
        # plan, allowlist and blast radius are checked here, before any load or fault
        self.controller = Controller(
            self.scenario,
            target,
            run.run_dir,
            run.profile,
            load=True,
            on_abort=run.abort,
            on_fault=self._relay,
            hosts=run.allowlist,
        )
        self.controller.acquire()  # one controller per system: refused (exit 4) before load
        run.record.scenario = {
            "path": str(self.path.absolute()),
            "name": self.scenario.name,
            "faults": len(self.controller.plan.faults),
            "targets": self.controller.targets,
        }

    def on_started(self, run: Runner, t0: float) -> None:
        if self.controller is not None:
            self.controller.start(t0)

    def on_stopping(self, run: Runner, reason: str | None) -> None:
        self.roll_back(run)

    def roll_back(self, run: Runner) -> None:
        """Halt the faults and wait for their rollback, however many times Ctrl-C is pressed
        meanwhile; idempotent (the run calls it again on its way out, in case ``stopping`` was
        cut short)."""
        controller = self.controller
        if controller is None or self._rolled_back:
            return
        while True:
            try:
                result = controller.stop()
                break
            except KeyboardInterrupt:
                continue  # the rollback goes on: faults must not be left in place
        self._rolled_back = True
        if run.record.scenario is not None:
            run.record.scenario.update(
                status=str(result.status),
                reason=result.reason,
                injected=result.injected,
                reverted=result.reverted,
                unreverted=list(result.unreverted),
                errors=list(result.errors),
            )

    def _relay(self, event: FaultEvent) -> None:
        """The controller's threads → the run's fault events."""
        run = self._run
        if run is None:
            return
        hook = run.events.fault_injected if event.kind == "injected" else run.events.fault_reverted
        extra = {} if event.kind == "injected" else {"ok": event.ok}
        hook.fire(run, fault=event.fault, type=event.type, target=event.target, t=event.t, **extra)
