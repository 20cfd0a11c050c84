"""The fault catalog: every fault type, keyed by its name (``network.latency``), from one backend
module each (process, postgres and sql, toxiproxy, wallet, docker, command).

Scenario files, ``loadkit chaos list`` and Python callers all go through it::

    kind = fault_type("network.latency")             # a FaultType, or ConfigError
    with make_fault(env, "process.hang", "wallet-2"):  # a live fault that always reverts
        ...
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from loadkit.chaos.faults import command, docker, postgres, process, sql, toxiproxy, wallet
from loadkit.chaos.faults.base import REQUIRED, ChaosEnv, Described, Fault, FaultType
from loadkit.errors import ConfigError
from loadkit.spec.errors import Invalid
from loadkit.spec.values import did_you_mean

#: fault type name → its definition; backends add theirs with :func:`register`
FAULTS: dict[str, FaultType] = {}


def register(types: Iterable[FaultType]) -> None:
    """Add fault types to the catalog (a later backend, e.g. Docker containers, calls this)."""
    for kind in types:
        if kind.name in FAULTS:
            raise ValueError(f"fault type {kind.name!r} is registered twice")
        kind.fault.kind = kind
        FAULTS[kind.name] = kind


for _backend in (process, postgres, sql, toxiproxy, wallet, docker, command):
    register(_backend.TYPES)


def fault_type(name: str) -> FaultType:
    """The catalog entry ``name``; :class:`ConfigError` with a close match otherwise."""
    try:
        return FAULTS[name]
    except KeyError:
        hint = did_you_mean(name, FAULTS)
        raise ConfigError(f"unknown fault type {name!r}{hint} (see `loadkit chaos list`)") from None


def resolve_params(kind: FaultType, given: Mapping[str, object]) -> dict[str, object]:
    """Parse ``given`` (YAML-like values such as ``"200ms"``) with the type's parameters and add
    the defaults; :class:`ConfigError` naming the first bad one."""
    params: dict[str, object] = {}
    for key in given:
        if kind.param(key) is None:
            accepted = ", ".join(p.name for p in kind.params) or "none"
            raise ConfigError(f"{kind.name}: unknown parameter {key!r} (accepted: {accepted})")
    for param in kind.params:
        if param.name in given:
            try:
                params[param.name] = param.parse(given[param.name])
            except Invalid as exc:
                raise ConfigError(f"{kind.name}: {param.name}: {exc.message}") from None
        elif param.required:
            raise ConfigError(f"{kind.name}: parameter {param.name!r} is required")
        else:
            params[param.name] = param.default
    for key, message in kind.check(params) if kind.check else ():
        raise ConfigError(f"{kind.name}: {key + ': ' if key else ''}{message}")
    return params


def make_fault(
    env: ChaosEnv,
    type_name: str,
    target: str | None = None,
    *,
    name: str = "adhoc",
    **given: object,
) -> Fault:
    """A live fault ready to be used as a context manager (parameters as a scenario writes them).

    ``with make_fault(env, "wallet.policy", policy="peak"): ...``"""
    kind = fault_type(type_name)
    chosen = target or kind.target_default
    if chosen is None:
        raise ConfigError(f"{type_name}: a target is required")
    return kind.fault(env, chosen, resolve_params(kind, given), name)


def describe_all() -> list[Described]:
    """Every fault type with its parameters and defaults, in catalog order."""
    rows = []
    for kind in FAULTS.values():
        default_target = kind.target_default
        target = kind.target.value + (f" (default: {default_target})" if default_target else "")
        rows.append(
            Described(
                type=kind.name,
                backend=kind.backend,
                target=target,
                window=kind.window.value,
                summary=kind.summary,
                params=[
                    {
                        "name": p.name,
                        "default": "(required)" if p.default is REQUIRED else p.shown,
                        "help": p.help,
                    }
                    for p in kind.params
                ],
            )
        )
    return rows
