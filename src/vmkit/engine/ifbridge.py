"""`vmkit iface-bridge IFACE BRIDGE` / `iface-unbridge BRIDGE`, as virsh's: put a host interface
behind a new bridge (so that guests can share the host's LAN) and take it out again.

iface-bridge makes the bridge with the interface's MAC and MTU (the LAN and the DHCP server see
the same host), enslaves the interface, and moves its addresses and the routes through it onto
the bridge; iface-unbridge does the reverse and deletes the bridge. Every step has its undo: if
any step fails, the ones done are undone in reverse and the interface is as it was. Routes the
kernel makes for an address (the subnet's prefix route) come and go with the address; the others
(gateways, static routes) are deleted before and added back after the addresses move. IPv6
link-local addresses belong to each link and are not moved. Acts in the namespace vmkit runs in.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Protocol

from vmkit.engine.rollback import Rollback
from vmkit.errors import Conflict, InvalidConfig, NotFound
from vmkit.model.network import IPAddress, IPInterface, IPNetwork, check_ifname
from vmkit.net.links import HostView, Link, Route


class LinkOps(Protocol):
    """What iface-bridge needs from netlink (net.links.Links provides it)."""

    def view(self) -> HostView: ...
    def add_bridge(
        self, name: str, *, stp: bool = ..., delay: int = ..., mac: str | None = ...,
        mtu: int | None = ...,
    ) -> None: ...  # fmt: skip
    def delete(self, name: str) -> None: ...
    def set_up(self, name: str) -> None: ...
    def set_master(self, name: str, master: str | None) -> None: ...
    def add_address(self, name: str, address: IPInterface) -> None: ...
    def delete_address(self, name: str, address: IPInterface) -> None: ...
    def add_route(
        self, dst: IPNetwork, *, gateway: IPAddress | None = ..., dev: str | None = ...
    ) -> None: ...
    def delete_route(
        self, dst: IPNetwork, *, gateway: IPAddress | None = ..., dev: str | None = ...
    ) -> None: ...


@dataclass(frozen=True)
class Moved:
    """What moved from one link to another."""

    iface: str
    bridge: str
    addresses: tuple[IPInterface, ...]
    routes: tuple[Route, ...]


def addresses_of(view: HostView, dev: str) -> tuple[IPInterface, ...]:
    """The addresses of `dev` that move with it (not IPv6 link-local ones)."""
    return tuple(a for d, a in view.addresses if d == dev and not a.ip.is_link_local)


def routes_of(view: HostView, dev: str) -> tuple[Route, ...]:
    """The routes through `dev` that are not the kernel's prefix routes of its addresses."""
    prefixes = {a.network for d, a in view.addresses if d == dev}
    return tuple(
        r
        for r in view.routes
        if r.dev == dev
        and not (r.gateway is None and r.dst in prefixes)
        and not r.dst.is_link_local
        and not r.dst.is_multicast
    )


def _move(links: LinkOps, rb: Rollback, src: str, dst: str, view: HostView) -> Moved:
    """Move addresses and routes of `src` onto `dst`, each step with its undo."""
    addrs, routes = addresses_of(view, src), routes_of(view, src)
    for r in routes:
        links.delete_route(r.dst, gateway=r.gateway, dev=src)
        rb.push(f"route {r.dst} back to {src}", partial(_route, links.add_route, r, src))
    for a in addrs:
        links.delete_address(src, a)
        rb.push(f"address {a} back to {src}", partial(links.add_address, src, a))
        links.add_address(dst, a)
        rb.push(f"address {a} off {dst}", partial(links.delete_address, dst, a))
    for r in routes:
        links.add_route(r.dst, gateway=r.gateway, dev=dst)
        rb.push(f"route {r.dst} off {dst}", partial(_route, links.delete_route, r, dst))
    return Moved(src, dst, addrs, routes)


def _route(fn: Callable[..., None], r: Route, dev: str) -> None:
    fn(r.dst, gateway=r.gateway, dev=dev)


def _need_link(view: HostView, name: str) -> Link:
    link = view.links.get(name)
    if link is None:
        raise NotFound("interface", name, f"interface not found: no interface named '{name}'")
    return link


def iface_bridge(
    links: LinkOps, iface: str, bridge: str, *, stp: bool = True, delay: int = 0
) -> Moved:
    """Create `bridge`, enslave `iface`, move its addresses and routes; all or nothing."""
    check_ifname(iface)
    check_ifname(bridge, what="bridge name")
    if delay < 0:
        raise InvalidConfig(f"bridge delay {delay} is negative", value=delay)
    view = links.view()
    link = _need_link(view, iface)
    if link.kind == "bridge":
        raise InvalidConfig(f"interface '{iface}' is a bridge already", value=iface)
    if link.master is not None:
        raise Conflict(
            "interface", iface, f"interface '{iface}' is already in bridge '{link.master}'"
        )
    if bridge in view.links:
        raise Conflict("interface", bridge, f"interface '{bridge}' already exists")
    with Rollback() as rb:
        links.add_bridge(bridge, stp=stp, delay=delay, mac=link.mac, mtu=link.mtu or None)
        rb.push(f"delete bridge {bridge}", lambda: links.delete(bridge))
        links.set_up(bridge)
        links.set_master(iface, bridge)
        rb.push(f"release {iface}", lambda: links.set_master(iface, None))
        moved = _move(links, rb, iface, bridge, view)
        links.set_up(iface)
    return moved


def iface_unbridge(links: LinkOps, bridge: str) -> Moved:
    """Move the addresses and routes of `bridge` back to its one interface, release it and
    delete the bridge; all or nothing."""
    check_ifname(bridge, what="bridge name")
    view = links.view()
    link = _need_link(view, bridge)
    if link.kind != "bridge":
        raise InvalidConfig(f"interface '{bridge}' is not a bridge", value=bridge)
    ports = sorted(name for name, lk in view.links.items() if lk.master == bridge)
    if len(ports) != 1:
        have = ", ".join(ports) or "none"
        raise Conflict(
            "bridge",
            bridge,
            f"bridge '{bridge}' must have exactly one interface to unbridge (it has: {have})",
        )
    iface = ports[0]
    with Rollback() as rb:
        moved = _move(links, rb, bridge, iface, view)
        links.set_master(iface, None)
        rb.push(f"enslave {iface} again", lambda: links.set_master(iface, bridge))
        links.set_up(iface)
        links.delete(bridge)
    return Moved(iface, bridge, moved.addresses, moved.routes)
