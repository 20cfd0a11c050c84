"""A user-defined bridge network on the local engine for container-fault tests: the kind of
network a team's compose project puts its containers on (the reference stack uses host
networking only).

Its subnet is a /28 of the benchmarking range (198.19.200.0-198.19.249.255, away from the /30s
of tests/netns.py), not in use on this machine; ``internal`` so nothing on it is routed
anywhere. The network is removed when the ``with`` block ends (its containers first)::

    with bridge_network(client, "lkt-net") as net:
        client.containers.run(image, argv, network=net.name, detach=True)
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import subprocess
from collections.abc import Iterator
from typing import Any


def free_subnet() -> str:
    """A /28 in the benchmarking range that no address on this machine is in."""
    used = subprocess.run(["ip", "-o", "-4", "addr"], capture_output=True, text=True).stdout
    for i in range(64):
        net = ipaddress.ip_network(f"198.19.{200 + (os.getpid() + i) % 50}.240/28")
        if not any(str(a) in used for a in list(net.hosts())[:2]):
            return str(net)
    raise RuntimeError("no free /28 for the test's bridge network")


@contextlib.contextmanager
def bridge_network(client: Any, name: str) -> Iterator[Any]:
    """An internal bridge network called ``name``; removed afterwards with anything left on it."""
    from docker.types import IPAMConfig, IPAMPool

    network = client.networks.create(
        name,
        driver="bridge",
        internal=True,
        ipam=IPAMConfig(pool_configs=[IPAMPool(subnet=free_subnet())]),
    )
    try:
        yield network
    finally:
        network.reload()
        for container in network.containers:
            container.remove(force=True)
        network.remove()


def address(container: Any, network: Any) -> str:
    """The container's address on ``network`` ('' when it is not attached)."""
    container.reload()
    networks = container.attrs["NetworkSettings"]["Networks"]
    return str(networks.get(network.name, {}).get("IPAddress", ""))
