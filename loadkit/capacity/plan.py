"""The plan of a capacity search: its options, defaults taken from the profile, the rates of each
pass, and the generated step profile a pass runs::

    settings = resolve_settings(options, load_profile(options.profile))
    settings.coarse_rates()                      # [80.0, 160.0, …, 800.0]
    settings.fine_rates(400, 480)                # [400.0, 416.0, …, 464.0]
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from loadkit.capacity.model import Measure, StepObjective, step_phase
from loadkit.errors import ConfigError
from loadkit.profile.model import LoadModel, Profile

#: the default objective: at most 1% of user actions busy (after client retries)
DEFAULT_OBJECTIVE = StepObjective(Measure.BUSY_RATE, 0.01)
#: the fine pass has at most this many steps (its resolution grows to fit)
MAX_FINE_STEPS = 20
MAX_STEPS = 200


@dataclass
class CapacityOptions:
    """What ``loadkit capacity`` was asked. Rates left ``None`` come from the profile: ``max_rate``
    twice its peak, ``start_rate`` a tenth of that, ``step`` a ninth of the span (ten coarse
    steps), ``resolution`` a fifth of ``step``; ``warmup_s`` a quarter of ``hold_s`` (≥ 1 s)."""

    profile: Path
    objectives: tuple[StepObjective, ...] = (DEFAULT_OBJECTIVE,)
    start_rate: float | None = None
    max_rate: float | None = None
    step: float | None = None
    resolution: float | None = None
    hold_s: float = 20.0
    warmup_s: float | None = None
    stop_after: int = 2  # consecutive failing steps that end a pass
    chaos: Path | None = None  # a scenario held through every pass (on each pass's clock)
    target: str | None = None
    stack_dir: Path | None = None
    instances: int = 2
    workers: int = 0
    out: Path = Path("reports")
    slo_name: str | None = None
    allow: tuple[str, ...] = ()  # beyond loopback, as for `loadkit run --allow`
    system: Path | None = None  # a system file, as for `loadkit run --system`
    ca: Path | None = None  # --target's CA bundle, as for `loadkit run --ca`
    command: list[str] = field(default_factory=lambda: list(sys.argv))


@dataclass(frozen=True)
class Settings:
    """The resolved plan of a search."""

    start_rate: float
    max_rate: float
    step: float
    resolution: float
    hold_s: float
    warmup_s: float

    @property
    def measured_s(self) -> float:
        return self.hold_s - self.warmup_s

    def coarse_rates(self) -> list[float]:
        n = math.floor((self.max_rate - self.start_rate) / self.step + 1e-9) + 1
        return [_round(self.start_rate + i * self.step) for i in range(n)]

    def fine_rates(self, low: float, high: float) -> list[float]:
        """From ``low`` (re-checked) up to, not including, ``high``."""
        step = max(self.resolution, (high - low) / MAX_FINE_STEPS)
        n = max(1, math.ceil((high - low) / step - 1e-9))
        return [_round(low + i * step) for i in range(n)]


def _round(rate: float) -> float:
    return float(round(rate, 3))


def peak_rate(profile: Profile) -> float:
    return max((stage.peak for stage in profile.stages), default=0.0)


def resolve_settings(options: CapacityOptions, profile: Profile) -> Settings:
    """Defaults from the profile, and a ``ConfigError`` (exit 2) for impossible settings."""
    if profile.model is not LoadModel.OPEN:
        raise ConfigError(
            f"{options.profile}: capacity steps arrival rates; this profile's stages set "
            "'users' (a closed model). Use a profile with 'rate' stages"
        )
    peak = peak_rate(profile)
    max_rate = options.max_rate or (2 * peak if peak > 0 else 0.0)
    if not max_rate or max_rate <= 0:
        raise ConfigError("--max-rate: the profile has no rate above 0; give --max-rate")
    start = options.start_rate if options.start_rate is not None else max_rate / 10
    if not 0 < start <= max_rate:
        raise ConfigError(
            f"--start-rate: expected a rate above 0 and at most --max-rate ({max_rate:g}/s), "
            f"got {start:g}/s"
        )
    step = options.step if options.step is not None else max((max_rate - start) / 9, 1e-3)
    if step <= 0:
        raise ConfigError(f"--step: expected a rate above 0, got {step:g}/s")
    resolution = options.resolution if options.resolution is not None else step / 5
    if not 0 < resolution <= step:
        raise ConfigError(
            f"--resolution: expected a rate above 0 and at most --step ({step:g}/s), "
            f"got {resolution:g}/s"
        )
    hold = options.hold_s
    warmup = options.warmup_s if options.warmup_s is not None else max(1.0, hold / 4)
    if warmup and warmup < 1.0:
        raise ConfigError(f"--warmup: expected 0 or at least 1s, got {warmup:g}s")
    if hold - warmup < 1.0:
        raise ConfigError(
            f"--hold: each step must be measured for at least 1s after its warm-up "
            f"({warmup:g}s); got --hold {hold:g}s"
        )
    if options.stop_after < 1:
        raise ConfigError(f"--stop-after: expected at least 1, got {options.stop_after}")
    steps = math.floor((max_rate - start) / step + 1e-9) + 1
    if steps > MAX_STEPS:
        raise ConfigError(
            f"--step: {steps} steps from {start:g}/s to {max_rate:g}/s; "
            f"at most {MAX_STEPS} (use a larger --step)"
        )
    return Settings(_round(start), _round(max_rate), step, resolution, hold, warmup)


def ramp_s(profile: Profile, first_rate: float, settings: Settings) -> float:
    """How long a pass ramps up to its first rate: long enough for every virtual user to have
    made its first action (a login, for wallet journeys: a login storm is not the steady state
    being measured), at least the warm-up, at most two holds."""
    needed = 2 * profile.users.accounts / first_rate * 1.1  # a linear ramp sends rate × D / 2
    return float(min(max(math.ceil(needed * 2) / 2, settings.warmup_s, 1.0), 2 * settings.hold_s))


def step_profile_text(
    source: Path, profile: Profile, pass_name: str, rates: list[float], settings: Settings
) -> str:
    """A profile with a ramp, then one step per rate, and the source's journeys, client, users
    and network."""
    raw = yaml.safe_load(source.read_text(encoding="utf-8"))
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: expected a profile (a mapping at the top level)")
    keep = {k: raw[k] for k in ("seed", "users", "journeys", "client", "network") if k in raw}
    stages: list[dict[str, Any]] = [
        {
            "name": "ramp",
            "duration": f"{ramp_s(profile, rates[0], settings):g}s",
            "curve": "linear",
            "rate": f"{rates[0]:g}/s",
        }
    ]
    for i, rate in enumerate(rates, start=1):
        if settings.warmup_s:
            stages.append(
                {
                    "name": f"{step_phase(i)}-warmup",
                    "duration": f"{settings.warmup_s:g}s",
                    "rate": f"{rate:g}/s",
                }
            )
        stages.append(
            {"name": step_phase(i), "duration": f"{settings.measured_s:g}s", "rate": f"{rate:g}/s"}
        )
    body = {
        "name": f"{profile.name}-capacity-{pass_name}",
        "description": f"loadkit capacity, {pass_name} pass: {len(rates)} steps of "
        f"{settings.hold_s:g}s from {rates[0]:g}/s to {rates[-1]:g}/s",
        "stages": stages,
        **keep,
    }
    header = (
        f"# Generated by `loadkit capacity` from {source} ({pass_name} pass): the same journeys,\n"
        "# client, users and network; a ramp to the first rate (every user's first action),\n"
        "# then one constant-rate step per rate tried, each with a warm-up of "
        f"{settings.warmup_s:g}s\n# that is not measured.\n"
    )
    return header + yaml.safe_dump(body, sort_keys=False, allow_unicode=True, width=100)
