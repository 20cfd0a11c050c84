"""Capacity: the highest arrival rate that keeps the busy rate (and latency) within an objective,
found by stepping the load with a profile's journey mix (forecasting, ``loadkit profile
from-traffic``, lives in :mod:`loadkit.profile.traffic`)::

    from loadkit.capacity import CapacityOptions, find_capacity
    result = find_capacity(CapacityOptions(profile=Path("profiles/double11.yaml")))
    print(result.outcome, result.knee_rate, result.capacity_dir)

Modules: ``model`` (objectives, steps, the result and ``capacity.json``), ``plan`` (options,
defaults, the rates, the step profiles), ``judge`` (a step's verdict, the knee), ``causes`` (the
wallet's busy causes from ``/metrics``), ``search`` (the passes), ``report`` (``capacity.html``
with its chart, ``summary.md``, the terminal table), ``cli`` (``loadkit capacity`` and
``loadkit profile from-traffic``).
"""

from loadkit.capacity.model import (
    CapacityResult,
    Measure,
    Outcome,
    StepObjective,
    StepResult,
    Verdict,
    objectives_from_slo,
)
from loadkit.capacity.search import CapacityOptions, CapacitySearch, find_capacity

__all__ = [
    "CapacityOptions",
    "CapacityResult",
    "CapacitySearch",
    "Measure",
    "Outcome",
    "StepObjective",
    "StepResult",
    "Verdict",
    "find_capacity",
    "objectives_from_slo",
]
