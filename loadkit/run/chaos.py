"""``loadkit run --chaos``: the chaos controller as a run listener, on the run's own clock.

It is made (and the scenario validated, against the profile's phases) before anything starts;
at ``starting`` it checks the plan against the stack's allowlist, at ``started`` it starts the
faults on the run clock, and at ``stopping`` it reverts whatever is still in. Faults going in
and out are re-published as the run's ``fault_injected`` / ``fault_reverted`` events; an abort
condition aborts the run (exit 4, load stopped)::

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

    @property
    def fault_names(self) -> list[str]:
        """The names an SLO file may scope objectives to (``name`` and ``f01``…)."""
        names = [f.name for f in self.scenario.faults]
        return names + [f"f{i + 1:02d}" for i in range(len(names))]

    def on_starting(self, run: Runner) -> None:
        if run.stack is None:
            raise ConfigError(
                "--chaos: faults go to the reference stack's components; drop --target "
                "(loadkit starts the stack) or add --stack-dir"
            )
        self._run = run
        # plan and allowlist are checked here, before any load or fault
        self.controller = Controller(
            self.scenario,
            run.stack,
            run.run_dir,
            run.profile,
            load=True,
            on_abort=run.abort,
            on_fault=self._relay,
            hosts=run.allowlist,
        )
        run.record.scenario = {
            "path": str(self.path.absolute()),
            "name": self.scenario.name,
            "faults": len(self.controller.plan.faults),
        }

    def on_started(self, run: Runner, t0: float) -> None:
        if self.controller is not None:
            self.controller.start(t0)

    def on_stopping(self, run: Runner, reason: str | None) -> None:
        if self.controller is None:
            return
        result = self.controller.stop()
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
