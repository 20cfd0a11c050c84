"""Chaos: fault scenarios on the run clock, a catalog of faults, a controller that always rolls
back, and the safety that keeps faults on the stack's own components — or on a system file's
(its Toxiproxy, containers, PostgreSQL and commands), one controller per system at a time.

From Python, everything ``loadkit chaos`` does is a call::

    from loadkit.chaos import Controller, load_scenario
    controller = Controller(load_scenario("chaos/db-crash.yaml"), stack, run_dir)
    controller.start(); controller.wait(); print(controller.result().status)
"""

from loadkit.chaos.catalog import FAULTS, describe_all, fault_type, make_fault, register
from loadkit.chaos.controller import Controller
from loadkit.chaos.env import StackEnv, SystemEnv, make_env
from loadkit.chaos.faults.base import ChaosEnv, Fault, FaultType, Param, TargetKind, Window
from loadkit.chaos.lock import ControllerBusy, ControllerLock
from loadkit.chaos.results import ChaosResult, ChaosStatus
from loadkit.chaos.rollback import RollbackResult, rollback_run
from loadkit.chaos.safety import Allowlist, TargetRefused, blast_radius
from loadkit.chaos.scenario import Plan, PlannedFault, Scenario, load_scenario, make_plan
from loadkit.rundir.events import Journal, outstanding, read_events

__all__ = [
    "FAULTS",
    "Allowlist",
    "ChaosEnv",
    "ChaosResult",
    "ChaosStatus",
    "Controller",
    "ControllerBusy",
    "ControllerLock",
    "Fault",
    "FaultType",
    "Journal",
    "Param",
    "Plan",
    "PlannedFault",
    "RollbackResult",
    "Scenario",
    "StackEnv",
    "SystemEnv",
    "TargetKind",
    "TargetRefused",
    "Window",
    "blast_radius",
    "describe_all",
    "fault_type",
    "load_scenario",
    "make_env",
    "make_fault",
    "make_plan",
    "outstanding",
    "read_events",
    "register",
    "rollback_run",
]
