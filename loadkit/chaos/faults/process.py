"""Process faults on wallet instances: crash (SIGKILL), hang (SIGSTOP/SIGCONT), graceful stop, and
a rolling restart of every instance.

Each restore brings the instance back the way ``loadkit stack`` runs it (same port, same
settings) and waits until it answers ``/readyz``, so "reverted" means "serving again"::

    with make_fault(env, "process.crash", "wallet-1"):
        ...  # connection refused on wallet-1; restarted and ready after the block
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Mapping
from typing import Any

import httpx

from loadkit.chaos.faults.base import ChaosEnv as Env
from loadkit.chaos.faults.base import (
    Fault,
    FaultType,
    Param,
    State,
    TargetKind,
    Window,
    param_float,
)
from loadkit.spec.values import parse_duration
from loadkit.stack.process import ManagedProcess, ProcessInfo

#: how long a restarted instance may take to answer /readyz
READY_TIMEOUT = 30.0


def _duration(value: object) -> float:
    return parse_duration(value, allow_zero=True)


GRACE = Param(
    "grace", parse_duration, 10.0, "SIGKILL an instance that has not stopped by then", "10s", "s"
)


def _processes(env: Env, target: str) -> list[dict[str, Any]]:
    found = []
    for name in env.wallet_names(target):
        info = env.wallet(name).info.process
        found.append({"wallet": name, "process": info.to_dict() if info else None})
    return found


def _bring_back(env: Env, names: list[str]) -> str:
    """Start every instance of ``names`` that is not running, resume any left stopped."""
    done = []
    for name in names:
        handle = env.wallet(name)
        proc = handle.process
        if proc is not None and proc.alive():
            if proc.stopped():
                proc.resume()
                done.append(f"{name} resumed")
            continue
        handle.start(timeout=READY_TIMEOUT)
        pid = handle.info.process.pid if handle.info.process else "?"
        done.append(f"{name} restarted (pid {pid})")
    return ", ".join(done) or "already running"


class _WalletProcess(Fault):
    @classmethod
    def targets(cls, env: Env, target: str, params: Mapping[str, object]) -> list[str]:
        found = []
        for name in env.wallet_names(target):
            info = env.wallet(name).info.process
            found.append(f"wallet instance {name} (pid {info.pid if info else 'not running'})")
        return found


class Crash(_WalletProcess):
    """SIGKILL: the instance vanishes mid-request (the OOM killer's way)."""

    def prepare(self) -> State:
        return {"target": self.target, "processes": _processes(self.env, self.target)}

    def apply(self, state: State) -> State | None:
        killed = [p["wallet"] for p in state["processes"] if self.env.wallet(p["wallet"]).kill()]
        return {"killed": killed}

    @classmethod
    def restore(cls, env: Env, state: State) -> str:
        return _bring_back(env, [p["wallet"] for p in state["processes"]])


class Hang(_WalletProcess):
    """SIGSTOP: the instance stops answering with its sockets open; SIGCONT brings it back."""

    def prepare(self) -> State:
        return {"target": self.target, "processes": _processes(self.env, self.target)}

    def apply(self, state: State) -> State | None:
        paused = [p["wallet"] for p in state["processes"] if self.env.wallet(p["wallet"]).pause()]
        deadline = time.monotonic() + 2.0  # SIGSTOP is delivered asynchronously: wait for it
        for name in paused:
            proc = self.env.wallet(name).process
            while proc is not None and not proc.stopped() and time.monotonic() < deadline:
                time.sleep(0.005)
        return {"paused": paused}

    @classmethod
    def restore(cls, env: Env, state: State) -> str:
        resumed = []
        for entry in state["processes"]:
            if entry["process"] is None:
                continue
            # the exact process paused (pid and start time): never SIGCONT a recycled pid
            proc = ManagedProcess.from_info(ProcessInfo.from_dict(entry["process"]))
            if proc.alive() and proc.stopped():
                proc.resume()
                resumed.append(entry["wallet"])
        names = [p["wallet"] for p in state["processes"]]
        back = _bring_back(env, names)  # a paused process killed meanwhile is started again
        _wait_alive(env, names)
        return f"resumed {', '.join(resumed)}" if resumed else back


class Stop(_WalletProcess):
    """Graceful stop (SIGTERM: in-flight requests finish), started again at the end."""

    def prepare(self) -> State:
        return {"target": self.target, "processes": _processes(self.env, self.target)}

    def apply(self, state: State) -> State | None:
        for entry in state["processes"]:
            self.env.wallet(entry["wallet"]).stop(timeout=param_float(self.params, "grace"))
        return None

    @classmethod
    def restore(cls, env: Env, state: State) -> str:
        return _bring_back(env, [p["wallet"] for p in state["processes"]])


class RollingRestart(_WalletProcess):
    """Each instance in turn: graceful stop, start, wait until ready, pause ``interval``. At
    most one instance is down at any moment, as in a careful deployment."""

    def prepare(self) -> State:
        return {"target": self.target, "processes": _processes(self.env, self.target)}

    def apply(self, state: State) -> State | None:
        entries = state["processes"]
        for i, entry in enumerate(entries):
            handle = self.env.wallet(entry["wallet"])
            handle.stop(timeout=param_float(self.params, "grace"))
            handle.start(timeout=READY_TIMEOUT)
            if i + 1 < len(entries):
                time.sleep(param_float(self.params, "interval"))
        return {"restarted": [e["wallet"] for e in entries]}

    @classmethod
    def restore(cls, env: Env, state: State) -> str:
        return _bring_back(env, [p["wallet"] for p in state["processes"]])


def _wait_alive(env: Env, names: list[str], timeout: float = 5.0) -> None:
    """Until each resumed instance answers ``/healthz`` again (not ``/readyz``: its database
    may still be down because of another fault, reverted after this one)."""
    deadline = time.monotonic() + timeout
    for name in names:
        info = env.wallet(name).info
        url = f"{info.url}/healthz"
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(url, timeout=1.0, verify=info.verify).status_code == 200:
                    break
            time.sleep(0.05)


TYPES = (
    FaultType(
        "process.crash",
        "SIGKILL a wallet instance; restarted after 'duration' (or when the run ends)",
        TargetKind.WALLET,
        Window.SUSTAINED,
        Crash,
        slot="process",
    ),
    FaultType(
        "process.hang",
        "SIGSTOP a wallet instance (it hangs, sockets open); SIGCONT after 'duration'",
        TargetKind.WALLET,
        Window.SUSTAINED,
        Hang,
        slot="process",
    ),
    FaultType(
        "process.stop",
        "graceful stop (SIGTERM) of a wallet instance; started again after 'duration'",
        TargetKind.WALLET,
        Window.SUSTAINED,
        Stop,
        params=(GRACE,),
        slot="process",
    ),
    FaultType(
        "process.rolling-restart",
        "restart every wallet instance in turn, one down at a time (a deployment)",
        TargetKind.WALLETS,
        Window.INSTANT,
        RollingRestart,
        params=(
            GRACE,
            Param("interval", _duration, 1.0, "pause between one instance and the next", "1s", "s"),
        ),
        slot="process",
    ),
)
