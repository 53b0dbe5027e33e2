"""Addresses a network may use on a host: overlap checks and the subnet of the `default` network.

Pure functions over what a namespace already holds (`HostView` routes and addresses):
`find_overlaps` names every route or address a network's subnets would collide with;
`choose_subnet` picks the first /24 that collides with nothing (never the documentation and
infrastructure ranges below, whatever the routes say); `default_network` builds vmkit's
`default` NAT network around it.
"""

from __future__ import annotations

import random
from collections.abc import Collection, Iterable, Iterator
from ipaddress import IPv4Address, IPv4Network, ip_network

from vmkit.errors import Conflict
from vmkit.model.network import (
    Bridge,
    Dhcp,
    DhcpRange,
    Forward,
    ForwardMode,
    Ip,
    IPNetwork,
    Network,
    pick_bridge_name,
    random_mac,
)
from vmkit.net.links import HostView

# Never chosen: documentation ranges (this lab's uplink, registries) and its DNS network.
FORBIDDEN = tuple(
    IPv4Network(n) for n in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "10.255.255.0/24")
)
_IGNORED = tuple(ip_network(n) for n in ("127.0.0.0/8", "::1/128", "fe80::/10"))


def _ignored(net: IPNetwork) -> bool:
    return net.prefixlen == 0 or any(
        net.version == i.version and net.subnet_of(i)  # type: ignore[arg-type]
        for i in _IGNORED
    )


def used_subnets(view: HostView) -> list[IPNetwork]:
    """Every destination routed and every subnet addressed in the namespace (not default
    routes, loopback or link-local)."""
    nets = [r.dst for r in view.routes] + [iface.network for _, iface in view.addresses]
    return [n for n in nets if not _ignored(n)]


def find_overlaps(net: Network, view: HostView) -> list[str]:
    """What each subnet of `net` would collide with, as sentences; empty when nothing does."""
    found = []
    for ip in net.ips:
        subnet = ip.subnet
        for route in view.routes:
            if not _ignored(route.dst) and _overlap(subnet, route.dst):
                found.append(f"subnet {subnet} overlaps route {route.dst} dev {route.dev or '?'}")
        for dev, iface in view.addresses:
            if not _ignored(iface.network) and _overlap(subnet, iface.network):
                found.append(f"subnet {subnet} overlaps address {iface} of {dev}")
    return list(dict.fromkeys(found))


def _overlap(a: IPNetwork, b: IPNetwork) -> bool:
    return a.version == b.version and a.overlaps(b)


def candidate_subnets() -> Iterator[IPv4Network]:
    """192.168.122.0/24 first (libvirt's habit), then the rest of 192.168/16, then 10/8."""
    for third in [*range(122, 256), *range(0, 122)]:
        yield IPv4Network(f"192.168.{third}.0/24")
    for second in range(256):
        for third in range(256):
            yield IPv4Network(f"10.{second}.{third}.0/24")


def choose_subnet(used: Iterable[IPNetwork]) -> IPv4Network:
    """The first candidate /24 that overlaps nothing in `used` nor the FORBIDDEN ranges."""
    nets = [*FORBIDDEN, *(n for n in used if n.version == 4 and not _ignored(n))]
    spans = [(int(n.network_address), int(n.broadcast_address)) for n in nets]
    for cand in candidate_subnets():
        lo, hi = int(cand.network_address), int(cand.broadcast_address)
        if not any(lo <= end and start <= hi for start, end in spans):
            return cand
    raise Conflict("network", "default", "no free /24 in 192.168.0.0/16 or 10.0.0.0/8")


def default_network(
    used: Iterable[IPNetwork],
    taken_bridges: Collection[str],
    *,
    rng: random.Random | None = None,
    name: str = "default",
) -> Network:
    """vmkit's `default` NAT network on a subnet nothing else uses (`.1` the host, DHCP
    `.2-.254`)."""
    subnet = choose_subnet(used)
    base = int(subnet.network_address)
    return Network(
        name=name,
        forward=Forward(mode=ForwardMode.NAT),
        bridge=Bridge(name=pick_bridge_name(taken_bridges), stp=True, delay=0),
        mac=random_mac(rng),
        ips=(
            Ip(
                address=IPv4Address(base + 1),
                netmask=subnet.netmask,
                dhcp=Dhcp(ranges=(DhcpRange(IPv4Address(base + 2), IPv4Address(base + 254)),)),
            ),
        ),
    )
