"""What a report needs from a run directory besides the timeline: run.json, clock.json, the
chaos journal's fault windows, the profile (for the offered load), the scenario's busy-rate
limit, ``integrity.json``, ``gate.json`` and ``security.json``, each through
:class:`~loadkit.rundir.RunDir`. Every file may be missing or cut short (a killed run)::

    data = RunData.load(Path("reports/20261128-193000-double11"))
    data.status, [f.name for f in data.faults], data.profile
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loadkit.profile.model import Profile
from loadkit.rundir import CLOCK, GATE, INTEGRITY, RUN, SECURITY, RunDir
from loadkit.rundir.events import SCHEMA as EVENTS_SCHEMA
from loadkit.rundir.events import read_events

log = logging.getLogger(__name__)


def insecure_urls(target: Mapping[str, Any]) -> list[str]:
    """The https URLs of a run's target, and of each of its services, whose certificates were
    not verified (run.json's ``target.insecure_urls``, ``target.services.NAME.insecure_urls``)::

        insecure_urls({"insecure_urls": ["https://a"], "services": {"b": {"insecure_urls":
            ["https://b"]}}})   # ['https://a', 'https://b']
    """
    found = [str(u) for u in target.get("insecure_urls") or ()]
    services = target.get("services")
    for service in (services or {}).values() if isinstance(services, Mapping) else ():
        if isinstance(service, Mapping):
            found += [str(u) for u in service.get("insecure_urls") or () if str(u) not in found]
    return list(dict.fromkeys(found))


@dataclass(frozen=True)
class FaultWindow:
    """One fault as the journal shows it, on the run clock. ``end_s`` is ``None`` when it was
    never reverted (still injected when the run ended); ``error`` when injection failed."""

    id: str
    name: str
    type: str
    target: str
    start_s: float
    end_s: float | None
    error: str | None = None


@dataclass
class RunData:
    """The run's facts (everything but the timeline), with a note for each file that was missing
    or unreadable."""

    run_dir: Path
    run: dict[str, Any] = field(default_factory=dict)
    clock: dict[str, Any] = field(default_factory=dict)
    faults: list[FaultWindow] = field(default_factory=list)
    profile: Profile | None = None
    busy_limit: float | None = None  # from the scenario's busy-rate probe
    scenario_name: str | None = None
    integrity: dict[str, Any] | None = None
    gate: dict[str, Any] | None = None  # gate.json, when the run was gated
    #: security.json: the wallet's anomaly counters during the run (reference stack only)
    security: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def run_id(self) -> str:
        return str(self.run.get("run_id") or self.run_dir.name)

    @property
    def status(self) -> str:
        return str(self.run.get("status") or "unknown")

    @property
    def insecure_urls(self) -> list[str]:
        """The https URLs this run did not verify (``verify: false``), from run.json's target."""
        target = self.run.get("target")
        return insecure_urls(target) if isinstance(target, Mapping) else []

    @property
    def profile_name(self) -> str:
        prof = self.run.get("profile") or {}
        return str(prof.get("name") or (self.profile.name if self.profile else self.run_id))

    @classmethod
    def load(cls, run_dir: Path | RunDir) -> RunData:
        rd = run_dir if isinstance(run_dir, RunDir) else RunDir(run_dir)
        data = cls(rd.path)
        run = rd.read_record()  # a run whose process died reads `killed`, not `running`
        if run is None:
            data.notes.append(f"no readable {RUN}: status unknown")
        else:
            data.run = run
            if run.get("status") == "running":
                data.notes.append(f"{RUN} says 'running': the run still goes")
            elif run.get("status") == "killed":
                data.notes.append(f"the run's process was killed: {run.get('reason') or ''}")
        clock = _json(rd, CLOCK)
        if clock is None:
            data.notes.append(f"no {CLOCK}: the run clock never started")
        else:
            data.clock = clock
        data.faults, header = _faults(rd.events)
        data.profile = _profile(data, rd)
        data.scenario_name, data.busy_limit = _scenario(data, header)
        data.integrity = _json(rd, INTEGRITY)
        data.gate = _json(rd, GATE)
        data.security = _json(rd, SECURITY)
        return data


def _json(rd: RunDir, name: str) -> dict[str, Any] | None:
    value = rd.read_json(name)
    return value if isinstance(value, dict) else None


def _journal(path: Path) -> list[dict[str, Any]]:
    """The chaos journal's complete lines (a torn last line is skipped); none when unreadable."""
    try:
        return [e for e in read_events(path) if isinstance(e, dict)]
    except (OSError, ValueError):  # unreadable, or not UTF-8
        return []


def _faults(path: Path) -> tuple[list[FaultWindow], dict[str, Any]]:
    header: dict[str, Any] = {}
    opened: dict[str, dict[str, Any]] = {}
    order: list[str] = []
    for e in _journal(path):
        if e.get("schema") == EVENTS_SCHEMA:
            header = e
            continue
        kind, fid = e.get("event"), str(e.get("id", ""))
        if kind == "inject.begin":
            order.append(fid)
            opened[fid] = {
                "name": str(e.get("fault", fid)),
                "type": str(e.get("type", "")),
                "target": str(e.get("target", "")),
                "start": float(e.get("t", 0.0)),
                "end": None,
                "error": None,
            }
        elif fid in opened and kind == "inject.end" and e.get("result") == "error":
            opened[fid]["error"] = str(e.get("error") or "injection failed")
        elif fid in opened and kind == "revert.end":
            opened[fid]["end"] = float(e.get("t", 0.0))
    faults = [
        FaultWindow(fid, f["name"], f["type"], f["target"], f["start"], f["end"], f["error"])
        for fid, f in ((fid, opened[fid]) for fid in order)
    ]
    return faults, header


def _profile(data: RunData, rd: RunDir) -> Profile | None:
    """The profile the run used, for the offered load: the run directory's copy if there is
    one, else the path run.json names, with the run's time scale."""
    from loadkit.profile.model import load_profile

    prof = data.run.get("profile") or {}
    candidates = [rd.profile]
    if prof.get("path"):
        candidates.append(Path(str(prof["path"])))
    for path in candidates:
        if not path.is_file():
            continue
        try:
            # the stages are what reports need: the data files stay where the profile named them
            profile = load_profile(path, data=False)
            if prof.get("time_scale"):
                profile = profile.with_time_scale(float(prof["time_scale"]))
        except Exception as exc:  # a changed or broken file must not break the report
            data.notes.append(f"profile {path} unreadable ({exc}): offered load unknown")
            return None
        if prof.get("name") and profile.name != prof["name"]:
            data.notes.append(f"profile {path} is now '{profile.name}': offered load unknown")
            return None
        return profile
    if prof:
        data.notes.append("profile file not found: offered load unknown")
    return None


def _scenario(data: RunData, header: dict[str, Any]) -> tuple[str | None, float | None]:
    """The scenario's name, and the ``max`` of its first busy-rate probe (the steady-state
    limit recovery is measured against)."""
    sc = data.run.get("scenario") or {}
    name = sc.get("name") or header.get("scenario")
    path = sc.get("path") or header.get("scenario_path")
    if not path:
        return (str(name) if name else None), None
    # only here: the chaos package (fault drivers, HTTP clients) takes ~0.5 s to import
    from loadkit.chaos.scenario import ProbeKind, load_scenario

    try:
        scenario = load_scenario(Path(str(path)))
    except Exception:
        data.notes.append(f"scenario {path} unreadable: busy-rate limit from the baseline")
        return (str(name) if name else None), None
    for probe in scenario.steady_state.probes:
        if probe.kind is ProbeKind.BUSY_RATE and probe.max is not None:
            return scenario.name, float(probe.max)
    return scenario.name, None
