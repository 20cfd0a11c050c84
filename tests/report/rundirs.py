"""Hand-built run directories with known counts, for testing reports against numbers computed
independently (docs/run-directory.md formats)::

    rd = RunDirBuilder(tmp_path / "run", profile=PROFILE_YAML)
    rd.second(12, "peak", ok=927, busy={"throttled": 73}, lat_ms=[20, 30])
    rd.fault("f01", "db-down", start=30, end=40)
    rd.write()
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hdrh.histogram import HdrHistogram


def hist(values_ms: list[float], counts: list[int] | None = None) -> str:
    """An encoded HDR histogram (loadkit's settings) of ``values_ms`` (each ``counts[i]`` times)."""
    h = HdrHistogram(1, 600_000_000, 2)
    for i, v in enumerate(values_ms):
        h.record_value(int(v * 1000), counts[i] if counts else 1)
    encoded: bytes = h.encode()
    return encoded.decode()


@dataclass
class RunDirBuilder:
    path: Path
    profile: str | None = None  # YAML text, written as profile.yaml and named in run.json
    name: str = "hand-built"
    status: str = "completed"
    time_scale: float = 1.0
    scenario: str | None = None  # YAML text
    lines: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    integrity: dict[str, Any] | None = None
    target: dict[str, Any] | None = None  # run.json's "target"

    def line(
        self,
        t: int,
        phase: str,
        *,
        level: str = "action",
        journey: str = "pay",
        endpoint: str | None = None,
        ok: int = 0,
        rejected: int = 0,
        busy: dict[str, int] | None = None,
        unsent: int = 0,
        lat_ms: list[float] | None = None,
        svc_ms: list[float] | None = None,
        instance: str | None = None,
        network: str | None = None,
    ) -> None:
        busy = busy or {}
        line: dict[str, Any] = {
            "t": t,
            "phase": phase,
            "journey": journey,
            "endpoint": endpoint or ("*" if level == "action" else "POST /v1/payments"),
            "level": level,
        }
        if instance:
            line["instance"] = instance
        if network:
            line["network"] = network
        line |= {
            "n": {"ok": ok, "rejected": rejected, "busy": sum(busy.values()), "unsent": unsent},
            "busy": busy,
        }
        if lat_ms:
            line["lat"] = hist(lat_ms)
            line["svc"] = hist(svc_ms or [v / 2 for v in lat_ms])
        self.lines.append(line)

    def second(self, t: int, phase: str, **kw: Any) -> None:
        """The same counts at both levels (one request per action)."""
        self.line(t, phase, level="action", **kw)
        self.line(t, phase, level="request", **kw)

    def fault(
        self,
        fid: str,
        name: str,
        start: float,
        end: float | None,
        *,
        error: str | None = None,
        target: str = "db",
        type: str = "x.y",
    ) -> None:
        common = {"id": fid, "fault": name}
        self.events.append(
            {"event": "inject.begin", "t": start, "type": type, "target": target, **common}
        )
        result = {"result": "error", "error": error} if error else {"result": "ok"}
        self.events.append({"event": "inject.end", "t": start + 0.01, **common, **result})
        if end is not None:
            self.events.append({"event": "revert.begin", "t": end - 0.01, **common})
            self.events.append({"event": "revert.end", "t": end, "result": "ok", **common})

    def write(self, *, clock: bool = True, torn_tail: bool = False) -> Path:
        self.path.mkdir(parents=True, exist_ok=True)
        run: dict[str, Any] = {
            "schema": "loadkit.run/v1",
            "run_id": self.path.name,
            "status": self.status,
            "profile": {"name": self.name, "time_scale": self.time_scale},
            "started_at_iso": "2026-11-28T19:30:00.000Z",
            "ended_at_iso": "2026-11-28T19:31:00.000Z",
            "scenario": None,
        }
        if self.target is not None:
            run["target"] = self.target
        if self.profile is not None:
            (self.path / "profile.yaml").write_text(self.profile)
        if self.scenario is not None:
            (self.path / "scenario.yaml").write_text(self.scenario)
            run["scenario"] = {"name": "sc", "path": str(self.path / "scenario.yaml")}
        (self.path / "run.json").write_text(json.dumps(run))
        if clock:
            (self.path / "clock.json").write_text(json.dumps({"t0": 1.0, "duration_s": 0}))
        body = [json.dumps({"schema": "loadkit.timeline/v1", "latency_unit": "us"})]
        body += [json.dumps(x) for x in self.lines]
        text = "\n".join(body) + "\n"
        if torn_tail:
            text += json.dumps(self.lines[0])[:25]
        (self.path / "timeline.jsonl").write_text(text)
        if self.events:
            header = {"schema": "loadkit.events/v1", "t0": 1.0}
            events = [header, *({"seq": i + 1, **e} for i, e in enumerate(self.events))]
            (self.path / "events.jsonl").write_text("\n".join(json.dumps(e) for e in events) + "\n")
        if self.integrity is not None:
            (self.path / "integrity.json").write_text(json.dumps(self.integrity))
        return self.path
