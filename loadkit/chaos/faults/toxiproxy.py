"""Network faults through Toxiproxy: the reference stack's server (wallet ↔ database, client ↔
wallet), or a system file's own server(s) and the proxies it lists; upstream or downstream, on a
share of connections (``toxicity``).

Each toxic is named after the run and the fault (``chaos_<tag>_<fault>``) so that a rollback
after a killed controller removes exactly what this run added; ``network.down`` disables the
proxy (every connection dropped, new ones refused) and enables it again::

    with make_fault(env, "network.latency", "client-wallet-1", latency="300ms", jitter="50ms"):
        ...  # users of wallet-1 wait 300 ± 50 ms more for every answer
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum

from loadkit.chaos.faults.base import (
    ChaosEnv,
    Fault,
    FaultType,
    Param,
    State,
    TargetKind,
    Window,
)
from loadkit.spec.values import (
    parse_bandwidth,
    parse_choice,
    parse_duration,
    parse_int,
    parse_percent,
)


class Stream(StrEnum):
    """Which direction a toxic acts on: ``downstream`` is the answer (server → client),
    ``upstream`` the request (client → server)."""

    DOWNSTREAM = "downstream"
    UPSTREAM = "upstream"


def _ms(value: object) -> object:
    return round(parse_duration(value, allow_zero=True) * 1000)


def _us(value: object) -> object:
    return round(parse_duration(value, allow_zero=True) * 1_000_000)


def _stream(value: object) -> object:
    return str(parse_choice(value, Stream, "stream"))


def _count(value: object) -> object:
    return parse_int(value, minimum=1)


def _kbytes(value: object) -> object:
    # Toxiproxy's bandwidth toxic takes whole KB/s; parse_bandwidth gives kilobits per second
    return max(1, round(parse_bandwidth(value) / 8))


STREAM = Param(
    "stream", _stream, "downstream", "downstream (answers) or upstream (requests)", "downstream"
)
TOXICITY = Param("toxicity", parse_percent, 1.0, "share of connections affected", "100%", "%")


def _proxy_targets(env: ChaosEnv, target: str) -> list[str]:
    found = env.proxies().get(target)
    if found is None:
        return [f"proxy {target} (not on the server now)"]
    server, proxy = found
    return [f"proxy {target} ({proxy.listen} -> {proxy.upstream}) on {server.host}:{server.port}"]


def _api(env: ChaosEnv, proxy: str) -> str:
    server = env.toxiproxy_for(proxy)
    return f"http://{server.host}:{server.port}"


class Toxic(Fault):
    """One Toxiproxy toxic on the target proxy for the length of the fault."""

    toxic_type = ""
    #: parameter name in the scenario → Toxiproxy attribute
    attributes: Mapping[str, str] = {}

    @classmethod
    def targets(cls, env: ChaosEnv, target: str, params: Mapping[str, object]) -> list[str]:
        return _proxy_targets(env, target)

    def prepare(self) -> State:
        name = f"chaos_{self.env.tag}_{self.name}"
        api = _api(self.env, self.target)
        return {"target": self.target, "proxy": self.target, "toxic": name, "api": api}

    def apply(self, state: State) -> State | None:
        attrs = {attr: self.params[p] for p, attr in self.attributes.items()}
        self.env.toxiproxy_for(state["proxy"]).add_toxic(
            state["proxy"],
            self.toxic_type,
            stream=str(self.params["stream"]),
            attributes=attrs,
            toxicity=float(str(self.params["toxicity"])),
            name=state["toxic"],
        )
        return None

    @classmethod
    def restore(cls, env: ChaosEnv, state: State) -> str:
        removed = env.toxiproxy_for(state["proxy"]).remove_toxic(state["proxy"], state["toxic"])
        return f"toxic {state['toxic']} removed" if removed else "toxic already gone"


class Down(Fault):
    """The proxy is disabled: existing connections drop, new ones are refused."""

    @classmethod
    def targets(cls, env: ChaosEnv, target: str, params: Mapping[str, object]) -> list[str]:
        return _proxy_targets(env, target)

    def prepare(self) -> State:
        return {"target": self.target, "proxy": self.target, "api": _api(self.env, self.target)}

    def apply(self, state: State) -> State | None:
        self.env.toxiproxy_for(state["proxy"]).set_enabled(state["proxy"], False)
        return None

    @classmethod
    def restore(cls, env: ChaosEnv, state: State) -> str:
        env.toxiproxy_for(state["proxy"]).set_enabled(state["proxy"], True)
        return f"proxy {state['proxy']} enabled"


def _toxic(
    name: str, toxic_type: str, summary: str, params: tuple[Param, ...], attributes: dict[str, str]
) -> FaultType:
    cls = type(
        f"Toxic_{toxic_type}",
        (Toxic,),
        {"toxic_type": toxic_type, "attributes": attributes, "__doc__": summary},
    )
    return FaultType(
        name,
        summary,
        TargetKind.PROXY,
        Window.SUSTAINED,
        cls,
        params=(*params, STREAM, TOXICITY),
        check=_jitter_check if toxic_type == "latency" else None,
    )


def _jitter_check(params: Mapping[str, object]) -> list[tuple[str, str]]:
    latency, jitter = params.get("latency"), params.get("jitter")
    if isinstance(latency, int) and isinstance(jitter, int) and jitter > latency:
        return [("jitter", f"must not exceed 'latency' ({latency}ms)")]
    return []


TYPES = (
    _toxic(
        "network.latency",
        "latency",
        "add latency (± jitter) to every packet",
        (
            Param("latency", _ms, 1000, "added delay", "1s", "ms"),
            Param("jitter", _ms, 0, "random ± on top of the delay", "0ms", "ms"),
        ),
        {"latency": "latency", "jitter": "jitter"},
    ),
    _toxic(
        "network.bandwidth",
        "bandwidth",
        "limit the link's bandwidth",
        (Param("rate", _kbytes, 64, "bandwidth, e.g. 512kbps (whole KB/s)", "512kbps", "KB/s"),),
        {"rate": "rate"},
    ),
    _toxic(
        "network.timeout",
        "timeout",
        "stop all data; close the connection after 'timeout' (0: keep it hanging)",
        (Param("timeout", _ms, 0, "when to close (0: never)", "0s", "ms"),),
        {"timeout": "timeout"},
    ),
    _toxic(
        "network.reset-peer",
        "reset_peer",
        "reset connections (TCP RST) after 'timeout'",
        (Param("timeout", _ms, 0, "when to reset (0: at once)", "0s", "ms"),),
        {"timeout": "timeout"},
    ),
    _toxic(
        "network.slow-close",
        "slow_close",
        "delay closing connections",
        (Param("delay", _ms, 1000, "how long a close waits", "1s", "ms"),),
        {"delay": "delay"},
    ),
    _toxic(
        "network.slicer",
        "slicer",
        "slice data into small pieces with a delay between them",
        (
            Param("average_size", _count, 64, "average bytes per slice", "64"),
            Param("size_variation", lambda v: parse_int(v, minimum=0), 32, "± bytes", "32"),
            Param("delay", _us, 10_000, "pause between slices", "10ms", "us"),
        ),
        {"average_size": "average_size", "size_variation": "size_variation", "delay": "delay"},
    ),
    _toxic(
        "network.limit-data",
        "limit_data",
        "close connections after 'bytes' bytes",
        (Param("bytes", _count, 1024, "bytes let through per connection", "1024"),),
        {"bytes": "bytes"},
    ),
    FaultType(
        "network.down",
        "take the proxy down: connections drop, new ones are refused",
        TargetKind.PROXY,
        Window.SUSTAINED,
        Down,
        slot="proxy-enabled",
    ),
)
