"""``loadkit run --slo SLO [--slo-abort]``: the SLO file checked before anything starts, and
the early-abort watch as a run listener.

The SLO's phase, fault, journey and network-class names are checked against the profile and
the scenario at once (a typo is exit 2, nothing started). With ``--slo-abort`` the watch looks
at the timeline on every ``tick`` and stops the load once an objective can no longer be met (the
run is ``aborted``, and the gate at its end fails)::

    SloListener(Path("slo/smoke.yaml"), profile, faults=None, abort=True, drain_s=11.0)
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from loadkit.gate.slo import Slo, check_names, load_slo
from loadkit.gate.watch import SloWatch
from loadkit.profile.model import Profile
from loadkit.run.events import RunListener

if TYPE_CHECKING:
    from loadkit.run.orchestrator import Runner


class SloListener(RunListener):
    def __init__(
        self,
        path: Path,
        profile: Profile,
        *,
        faults: Sequence[str] | None,
        abort: bool,
        drain_s: float,
    ) -> None:
        self.path = path
        self.slo: Slo = load_slo(path)
        check_names(
            self.slo,
            phases=[s.name for s in profile.stages],
            faults=faults,
            journeys=[j.name for j in profile.journeys],
            networks=[c.name for c in profile.network],
        )
        self.watch = SloWatch(self.slo, profile, drain_s=drain_s) if abort else None

    def on_tick(self, run: Runner, t: float) -> None:
        if self.watch is not None and (why := self.watch.check(run.timeline, t)):
            run.abort(f"stopped by --slo-abort: {why}", safety=False)
