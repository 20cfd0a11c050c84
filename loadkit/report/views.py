"""What every renderer says the same way: the banners of a run that did not end as planned or
did not verify TLS, how each instance fared during a fault, the top causes of a phase, and the
breakdowns' labels. The terminal, Markdown, HTML, JUnit and JSON reports lay these out their own
way::

    banner = status_banner(m)      # None for a completed, valid run
    banner.title, banner.text      # "Run ABORTED at 1:12 of 2:30", "stopped by --slo-abort: …"
    tls_banner(m)                  # "TLS NOT VERIFIED" when a certificate was not checked
    banners(m)                     # both, in the order reports show them
    fault_instances_text(m.faults[0])   # "wallet-1 (hit) 62.0% busy · wallet-2 0.4%"
"""

from __future__ import annotations

from dataclasses import dataclass

from loadkit.report.model import FaultMetrics, RunMetrics
from loadkit.report.verdict import clock, pct

#: how a breakdown's dimension is named in reports
DIMENSION_TITLES = {
    "instance": "target instance",
    "network": "network class",
    "journey": "journey",
}
_WHY = {
    "aborted": "stopped by an abort condition before the profile's end",
    "interrupted": "stopped by Ctrl-C or SIGTERM before the profile's end",
    "failed": "the load generator failed",
    "running": "run.json still says 'running': the run was killed, or it still goes",
}


@dataclass(frozen=True)
class Banner:
    """A line every report puts first: ``kind`` is ``bad`` (the run did not end as planned,
    or is invalid) or ``note`` (it was stopped early on purpose)."""

    kind: str
    title: str
    text: str

    def line(self) -> str:
        return f"{self.title}: {self.text}"


def data_end(m: RunMetrics) -> float:
    """Run-clock second where the recorded data ends."""
    return float(max((p.t + p.width_s for p in m.series), default=0))


def status_banner(m: RunMetrics) -> Banner | None:
    """Why the numbers of this run are not those of a complete, valid run (``None`` when they
    are): an aborted, interrupted, failed or killed run reports what it recorded, marked."""
    status = m.status
    end = m.stopped_s if m.stopped_s is not None else data_end(m)
    planned = f" of {clock(m.duration_s)}" if m.duration_s else ""
    if m.ended_early:
        title = f"Run {status.upper()}"
        if status != "running" and end:
            title += f" at {clock(end)}{planned}"
        why = m.reason or _WHY.get(status, "")
        text = (
            f"{why}. The report covers what was recorded up to the stop; phases after it have "
            "no data, and the gate cannot pass this run."
        )
        return Banner("bad", title, text.lstrip(". "))
    if not m.total.valid:
        return Banner(
            "bad",
            "Run INVALID",
            f"{pct(m.total.unsent_share, 2)} of arrivals were never sent (over 1%): the load "
            "generator could not keep the schedule, so the busy rates understate what users "
            "would have seen.",
        )
    if status == "invalid":
        return Banner("bad", "Run INVALID", m.reason or "the run is marked invalid")
    if m.reason and m.reason.startswith("stopped early"):
        return Banner("note", "Run stopped early", f"{m.reason} (on purpose).")
    return None


def tls_banner(m: RunMetrics) -> Banner | None:
    """The warning of a run that did not check some certificates (``verify: false`` on its
    target or a service): its answers may have come from anyone in the middle (``None`` when
    every https URL was verified, or there was none)."""
    if not m.insecure_urls:
        return None
    return Banner(
        "bad",
        "TLS NOT VERIFIED",
        f"the certificates of {', '.join(m.insecure_urls)} were not checked (verify: false): "
        "a man in the middle would have gone unnoticed, so these answers prove nothing about "
        "the service.",
    )


def banners(m: RunMetrics) -> list[Banner]:
    """Every banner a report puts first: how the run ended (:func:`status_banner`), then
    unverified TLS (:func:`tls_banner`)."""
    return [b for b in (status_banner(m), tls_banner(m)) if b is not None]


def fault_instances_text(f: FaultMetrics) -> str:
    """``wallet-1 (hit) 62.0% busy · wallet-2 0.4% busy``: each instance during the fault."""
    parts = []
    for i in f.instances:
        rate = i.action.busy_rate
        mark = " (hit)" if i.hit else ""
        value = "no answers" if rate is None else f"{pct(rate, 1)} busy"
        parts.append(f"{i.instance}{mark} {value}")
    return " · ".join(parts)


def top_causes(causes: dict[str, int], n: int = 3) -> str:
    """``db_pool_timeout 120, overloaded 4`` (the ``n`` largest); ``-`` when none."""
    ranked = sorted(causes.items(), key=lambda kv: (-kv[1], kv[0]))[:n]
    return ", ".join(f"{c} {k:,}" for c, k in ranked) or "-"


def scope_title(m: RunMetrics) -> str | None:
    """``journey p2p_transfer, instance wallet-1`` for sliced metrics; ``None`` for the run."""
    if not m.scope:
        return None
    words = {"network": "network class"}
    return ", ".join(f"{words.get(k, k)} {v}" for k, v in m.scope.items())
