"""Wallet faults through the reference wallet's admin API: a maintenance window, the peak
security (risk) policy, and a change of rate limits.

Admin state lives in each instance's memory, so each fault records every instance's state before
it changes it (and the instance's pid): the restore puts exactly that back, and leaves alone an
instance restarted since (a new process already runs with its defaults)::

    with make_fault(env, "wallet.maintenance", "wallets", retry_after="30s"):
        ...  # every request answers 503 with cause 'maintenance'
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from loadkit.chaos.faults.base import (
    ALL_WALLETS,
    ChaosEnv,
    Fault,
    FaultType,
    Param,
    State,
    TargetKind,
    Window,
    param_float,
)
from loadkit.errors import EnvironmentProblem
from loadkit.spec.errors import Invalid
from loadkit.spec.values import (
    describe,
    parse_choice,
    parse_duration,
    parse_int,
    parse_number,
    parse_rate,
    parse_text,
)
from loadkit.wallet.contract import PolicyName

LIMIT_PARAMS = ("max_inflight", "rate_limit", "rate_burst", "per_user_rate", "per_user_burst")


class _AdminFault(Fault):
    """Records every targeted instance's admin state before changing it."""

    @classmethod
    def targets(cls, env: ChaosEnv, target: str, params: Mapping[str, object]) -> list[str]:
        return [f"wallet instance {n} (admin API)" for n in env.wallet_names(target)]

    def prepare(self) -> State:
        before = {}
        for name in self.env.wallet_names(self.target):
            admin = self.env.admin(name)
            # the instance's state before this run touched it (not after an earlier fault whose
            # revert failed): keyed by its pid, since a restarted instance starts from defaults
            current = admin.state()[0]
            key = f"wallet-admin:{name}:{current.get('pid')}"
            before[name] = self.env.baseline(key, lambda: current)  # noqa: B023 (read at once)
        return {"target": self.target, "before": before}

    def apply(self, state: State) -> State | None:
        for name in state["before"]:
            self.change(name)
        return None

    def change(self, name: str) -> None:
        raise NotImplementedError

    @classmethod
    def restore(cls, env: ChaosEnv, state: State) -> str:
        done, fresh = [], []
        for name, before in state["before"].items():
            handle = env.wallet(name)
            proc = handle.process
            if proc is None or not proc.alive() or proc.pid != before.get("pid"):
                fresh.append(name)  # restarted (or down): its state is the default again
                continue
            cls.put_back(env, name, before)
            done.append(name)
        text = f"restored on {', '.join(done)}" if done else "nothing to restore"
        return text + (f" ({', '.join(fresh)} restarted since)" if fresh else "")

    @classmethod
    def put_back(cls, env: ChaosEnv, name: str, before: Mapping[str, Any]) -> None:
        raise NotImplementedError


class Maintenance(_AdminFault):
    """Maintenance mode: every business request answers 503 ``maintenance`` + ``Retry-After``."""

    def change(self, name: str) -> None:
        retry_after = round(param_float(self.params, "retry_after"))
        message = self.params.get("message")
        self.env.admin(name).maintenance(
            True, retry_after=retry_after, message=str(message) if message else None
        )

    @classmethod
    def put_back(cls, env: ChaosEnv, name: str, before: Mapping[str, Any]) -> None:
        m = before["maintenance"]
        env.admin(name).maintenance(
            bool(m["enabled"]), retry_after=int(m["retry_after"]), message=m.get("message")
        )


class Policy(_AdminFault):
    """Switch the risk policy (``peak``: OTP for smaller amounts, stricter per-user limits)."""

    def change(self, name: str) -> None:
        self.env.admin(name).policy(str(self.params["policy"]))

    @classmethod
    def put_back(cls, env: ChaosEnv, name: str, before: Mapping[str, Any]) -> None:
        env.admin(name).policy(str(before["policy"]))


class Limits(_AdminFault):
    """Change admission limits: instance rate limit, per-user rate limit, in-flight limit."""

    def change(self, name: str) -> None:
        given = {k: v for k, v in self.params.items() if k in LIMIT_PARAMS and v is not None}
        if given.get("rate_limit") == "off":
            given["rate_limit"] = None
        self.env.admin(name).limits(**given)

    @classmethod
    def put_back(cls, env: ChaosEnv, name: str, before: Mapping[str, Any]) -> None:
        old = before["limits"]
        body: dict[str, Any] = {
            "max_inflight": old["max_inflight"],
            "rate_limit": old["rate_limit"],
            "rate_burst": old["rate_burst"],
        }
        if old.get("per_user_overridden"):
            body.update(per_user_rate=old["per_user_rate"], per_user_burst=old["per_user_burst"])
        else:
            body["per_user_rate"] = None  # back to the policy's own per-user limit
        try:
            env.admin(name).limits(**body)
        except EnvironmentProblem as exc:
            raise EnvironmentProblem(f"{name}: could not restore limits: {exc.message}") from exc


def _policy(value: object) -> object:
    return str(parse_choice(value, PolicyName, "policy"))


def _rate_or_off(value: object) -> object:
    return "off" if value == "off" else parse_rate(value)


def _limits_check(params: Mapping[str, object]) -> list[tuple[str, str]]:
    if all(params.get(k) is None for k in LIMIT_PARAMS):
        return [("", f"give at least one of: {', '.join(LIMIT_PARAMS)}")]
    return []


def _message(value: object) -> object:
    text = parse_text(value)
    if len(text) > 500:
        raise Invalid(f"expected at most 500 characters, got {len(text)}")
    return text


def _retry_after(value: object) -> object:
    seconds = parse_duration(value, allow_zero=True)
    if seconds > 86_400:
        raise Invalid(f"expected at most 1d, got {describe(value)}")
    return seconds


TYPES = (
    FaultType(
        "wallet.maintenance",
        "maintenance mode: 503 with cause 'maintenance' and Retry-After",
        TargetKind.WALLET,
        Window.SUSTAINED,
        Maintenance,
        params=(
            Param("retry_after", _retry_after, 30.0, "the Retry-After users are told", "30s", "s"),
            Param("message", _message, None, "the message in the answer", "(the wallet's)"),
        ),
        slot="maintenance",
        default_target=ALL_WALLETS,
    ),
    FaultType(
        "wallet.policy",
        "switch the risk policy (peak: OTP above 2,000 CNY, 5 requests/s per user)",
        TargetKind.WALLET,
        Window.SUSTAINED,
        Policy,
        params=(Param("policy", _policy, "peak", "normal or peak", "peak"),),
        slot="policy",
        default_target=ALL_WALLETS,
    ),
    FaultType(
        "wallet.limits",
        "change rate limits: instance-wide, per user, in flight",
        TargetKind.WALLET,
        Window.SUSTAINED,
        Limits,
        params=(
            Param(
                "rate_limit", _rate_or_off, None, "instance-wide requests/s, or 'off'", "-", "/s"
            ),
            Param("rate_burst", lambda v: parse_number(v, above=0), None, "its burst", "-"),
            Param("per_user_rate", parse_rate, None, "requests/s per user", "-", "/s"),
            Param("per_user_burst", lambda v: parse_int(v, minimum=1), None, "its burst", "-"),
            Param("max_inflight", lambda v: parse_int(v, minimum=1), None, "in-flight cap", "-"),
        ),
        slot="limits",
        check=_limits_check,
        default_target=ALL_WALLETS,
    ),
)
