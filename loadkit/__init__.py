"""loadkit: load and chaos testing for digital-wallet services.

Everything the CLI does is a call from Python; import it from here::

    from loadkit import ReferenceStack, RunOptions, run_profile
    result = run_profile(RunOptions(profile=Path("profiles/smoke.yaml")))

Names are imported on first use, so ``import loadkit`` stays light (a wallet instance or a Locust
worker does not pay for the orchestrator) and never imports gevent.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from loadkit.errors import (
    ComponentFailed,
    ConfigError,
    EnvironmentProblem,
    ExitCode,
    Interrupted,
    LoadkitError,
    SafetyAbort,
)

__version__ = "0.1.0"

_LAZY = {
    "ReferenceStack": "loadkit.stack.reference",
    "StackOptions": "loadkit.stack.reference",
    "Postgres": "loadkit.stack.postgres",
    "ToxiproxyClient": "loadkit.stack.toxiproxy",
    "WalletAdmin": "loadkit.stack.admin",
    "Profile": "loadkit.profile.model",
    "load_profile": "loadkit.profile.model",
    "RunOptions": "loadkit.run.orchestrator",
    "RunResult": "loadkit.run.orchestrator",
    "Runner": "loadkit.run.orchestrator",
    "run_profile": "loadkit.run.orchestrator",
    "Timeline": "loadkit.rundir.timeline",
    "Controller": "loadkit.chaos",
    "Scenario": "loadkit.chaos",
    "load_scenario": "loadkit.chaos",
    "rollback_run": "loadkit.chaos",
    "SpecError": "loadkit.spec",
    "validate_file": "loadkit.run.validate",
    "CapacityOptions": "loadkit.capacity",
    "CapacityResult": "loadkit.capacity",
    "find_capacity": "loadkit.capacity",
    "read_traffic": "loadkit.profile.traffic",
    "write_traffic_profile": "loadkit.profile.traffic",
    "GateResult": "loadkit.gate",
    "Slo": "loadkit.gate",
    "gate_run": "loadkit.gate",
    "load_slo": "loadkit.gate",
    "IntegrityResult": "loadkit.integrity",
    "check_run": "loadkit.integrity",
}

if TYPE_CHECKING:
    from loadkit.capacity import CapacityOptions, CapacityResult, find_capacity
    from loadkit.chaos import Controller, Scenario, load_scenario, rollback_run
    from loadkit.gate import GateResult, Slo, gate_run, load_slo
    from loadkit.integrity import IntegrityResult, check_run
    from loadkit.profile.model import Profile, load_profile
    from loadkit.profile.traffic import read_traffic, write_traffic_profile
    from loadkit.run.orchestrator import Runner, RunOptions, RunResult, run_profile
    from loadkit.run.validate import validate_file
    from loadkit.rundir.timeline import Timeline
    from loadkit.spec import SpecError
    from loadkit.stack.admin import WalletAdmin
    from loadkit.stack.postgres import Postgres
    from loadkit.stack.reference import ReferenceStack, StackOptions
    from loadkit.stack.toxiproxy import ToxiproxyClient


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'loadkit' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "CapacityOptions",
    "CapacityResult",
    "ComponentFailed",
    "ConfigError",
    "Controller",
    "EnvironmentProblem",
    "ExitCode",
    "GateResult",
    "IntegrityResult",
    "Interrupted",
    "LoadkitError",
    "Postgres",
    "Profile",
    "ReferenceStack",
    "RunOptions",
    "RunResult",
    "Runner",
    "SafetyAbort",
    "Scenario",
    "Slo",
    "SpecError",
    "StackOptions",
    "Timeline",
    "ToxiproxyClient",
    "WalletAdmin",
    "__version__",
    "check_run",
    "find_capacity",
    "gate_run",
    "load_profile",
    "load_scenario",
    "load_slo",
    "read_traffic",
    "rollback_run",
    "run_profile",
    "validate_file",
    "write_traffic_profile",
]
