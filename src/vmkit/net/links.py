"""Kernel links through pyroute2: bridges, taps, veths, addresses and routes, optionally in a netns.

`Links` is the one adapter to netlink (`IPRoute`, or `IPRoute(netns=NAME)` without creating a
missing namespace). Every name is checked before it reaches the kernel; a NetlinkError becomes
NetlinkFailed(op, errno). `Link`, `Route` and `HostView` are plain data the planners read.
pyroute2 is imported when a `Links` is opened, not with this module (it takes 0.15-0.4 s), so
that commands that never talk netlink do not pay for it.
Must not: decide what to create (that is net.realise), run subprocesses.
"""

from __future__ import annotations

import errno
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from ipaddress import ip_address, ip_interface, ip_network
from types import TracebackType
from typing import Any, TypeVar

from vmkit.errors import NetlinkFailed, NotFound
from vmkit.model.network import IPAddress, IPInterface, IPNetwork, check_ifname, check_mac
from vmkit.net.netns import check_netns_name, netns_exists

_T = TypeVar("_T")
_IFF_UP = 0x1
_IFA_F_NODAD = 0x2
_MAIN_TABLE = 254


@dataclass(frozen=True)
class Link:
    name: str
    index: int
    kind: str | None  # "bridge", "tun", "veth", ... (None for plain devices)
    master: str | None
    mtu: int
    mac: str | None
    up: bool


@dataclass(frozen=True)
class Route:
    dst: IPNetwork
    dev: str | None
    gateway: IPAddress | None = None


@dataclass(frozen=True)
class Neighbour:
    """An ARP / NDP entry (domifaddr --source arp)."""

    dev: str
    ip: IPAddress
    mac: str


@dataclass(frozen=True)
class LinkStats:
    """Counters of a link (domifstat), as the host side sees them."""

    rx_bytes: int
    rx_packets: int
    rx_errors: int
    rx_dropped: int
    tx_bytes: int
    tx_packets: int
    tx_errors: int
    tx_dropped: int


@dataclass(frozen=True)
class HostView:
    """What a planner needs to know about a namespace: its links, routes and addresses."""

    links: Mapping[str, Link] = field(default_factory=dict)
    routes: tuple[Route, ...] = ()
    addresses: tuple[tuple[str, IPInterface], ...] = ()


class Links:
    """Netlink operations in one namespace (the current one when `netns` is None)."""

    def __init__(self, netns: str | None = None) -> None:
        self.netns = netns
        if netns is not None and not netns_exists(netns):  # before pyroute2, which would leak
            raise NotFound("netns", netns, f"namespace not found: no namespace named '{netns}'")
        from pyroute2 import IPRoute  # lazy: see the module docstring

        try:
            self._ipr: Any = IPRoute(netns=netns, flags=0) if netns else IPRoute()
        except FileNotFoundError as e:
            raise NotFound("netns", netns or "", f"namespace not found: '{netns}'") from e

    def close(self) -> None:
        self._ipr.close()

    def __enter__(self) -> Links:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _call(self, op: str, fn: Callable[[], _T]) -> _T:
        from pyroute2.netlink.exceptions import NetlinkError  # loaded already by __init__

        try:
            return fn()
        except NetlinkError as e:
            detail = e.args[1] if len(e.args) > 1 else ""
            where = f" in namespace {self.netns}" if self.netns else ""
            raise NetlinkFailed(f"{op}{where}", e.code, str(detail)) from e

    # --- reading -----------------------------------------------------------------------------

    def links(self) -> list[Link]:
        msgs = self._call("dump links", lambda: list(self._ipr.get_links()))
        names = {m["index"]: m.get("ifname") for m in msgs}
        return [_to_link(m, names) for m in msgs]

    def get(self, name: str) -> Link | None:
        return next((link for link in self.links() if link.name == name), None)

    def index(self, name: str) -> int:
        check_ifname(name)
        found = self._call(f"look up {name}", lambda: self._ipr.link_lookup(ifname=name))
        if not found:
            raise NotFound("interface", name, f"interface not found: no interface named '{name}'")
        return int(found[0])

    def routes(self) -> list[Route]:
        names = {link.index: link.name for link in self.links()}
        out = []
        for family in (2, 10):
            for m in self._call("dump routes", partial(self._dump_routes, family)):
                if m.get("table") != _MAIN_TABLE or m.get("type") != 1:  # main table, unicast
                    continue
                dst = m.get("dst") or ("0.0.0.0" if family == 2 else "::")
                net = ip_network(f"{dst}/{m['dst_len']}", strict=False)
                gw = m.get("gateway")
                out.append(Route(net, names.get(m.get("oif")), ip_address(gw) if gw else None))
        return out

    def _dump_routes(self, family: int) -> list[Any]:
        return list(self._ipr.route("dump", family=family))

    def addresses(self) -> list[tuple[str, IPInterface]]:
        names = {link.index: link.name for link in self.links()}
        msgs = self._call("dump addresses", lambda: list(self._ipr.addr("dump")))
        return [
            (names.get(m["index"], "?"), ip_interface(f"{m.get('address')}/{m['prefixlen']}"))
            for m in msgs
        ]

    def neighbours(self) -> list[Neighbour]:
        names = {link.index: link.name for link in self.links()}
        msgs = self._call("dump neighbours", lambda: list(self._ipr.get_neighbours()))
        return [
            Neighbour(names.get(m["ifindex"], "?"), ip_address(m.get("dst")), m.get("lladdr"))
            for m in msgs
            if m.get("dst") and m.get("lladdr")
        ]

    def stats(self, name: str) -> LinkStats:
        index = self.index(name)
        msgs = self._call(f"get {name}", lambda: list(self._ipr.get_links(index)))
        raw = msgs[0].get("stats64") or msgs[0].get("stats") or {}
        return LinkStats(**{f: int(raw.get(f, 0)) for f in LinkStats.__dataclass_fields__})

    def view(self) -> HostView:
        return HostView(
            links={link.name: link for link in self.links()},
            routes=tuple(self.routes()),
            addresses=tuple(self.addresses()),
        )

    # --- creating and deleting ---------------------------------------------------------------

    def add_bridge(
        self,
        name: str,
        *,
        stp: bool = False,
        delay: int = 0,
        mac: str | None = None,
        mtu: int | None = None,
    ) -> None:
        check_ifname(name, what="bridge name")
        attrs: dict[str, Any] = {"br_stp_state": 1 if stp else 0, "br_forward_delay": delay * 100}
        if mac is not None:
            check_mac(mac)
            attrs["address"] = mac
        self._call(
            f"add bridge {name}", lambda: self._ipr.link("add", ifname=name, kind="bridge", **attrs)
        )
        if mtu is not None:  # the kernel ignores IFLA_MTU when it creates a bridge
            self.set_mtu(name, mtu)

    def add_tap(
        self,
        name: str,
        *,
        uid: int | None = None,
        gid: int | None = None,
    ) -> None:
        """A persistent tap (no packet info, with vnet header) that `uid`/`gid` may open."""
        check_ifname(name, what="tap name")
        attrs: dict[str, Any] = {
            "ifr": {
                "no_pi": 1,
                "one_queue": 0,
                "vnet_hdr": 1,
                "tun_excl": 0,
                "multi_queue": 0,
                "persist": 1,
                "nofilter": 0,
            },
        }
        if uid is not None:
            attrs["uid"] = uid
        if gid is not None:
            attrs["gid"] = gid
        self._call(
            f"add tap {name}",
            lambda: self._ipr.link("add", ifname=name, kind="tuntap", mode="tap", **attrs),
        )

    def add_veth(self, name: str, peer: str, *, peer_netns: str | None = None) -> None:
        check_ifname(name, what="veth name")
        check_ifname(peer, what="veth peer name")
        spec: dict[str, Any] = {"ifname": peer}
        if peer_netns is not None:
            check_netns_name(peer_netns)
            spec["net_ns_fd"] = peer_netns
        self._call(
            f"add veth {name}",
            lambda: self._ipr.link("add", ifname=name, kind="veth", peer=spec),
        )

    def delete(self, name: str) -> None:
        index = self.index(name)
        self._call(f"delete {name}", lambda: self._ipr.link("del", index=index))

    def _set(self, op: str, name: str, **attrs: Any) -> None:
        index = self.index(name)
        self._call(f"{op} {name}", lambda: self._ipr.link("set", index=index, **attrs))

    def set_up(self, name: str) -> None:
        self._set("set up", name, state="up")

    def set_down(self, name: str) -> None:
        self._set("set down", name, state="down")

    def set_master(self, name: str, master: str | None) -> None:
        """Enslave `name` to bridge `master` (None: release it)."""
        self._set("set master of", name, master=self.index(master) if master else 0)

    def set_mtu(self, name: str, mtu: int) -> None:
        self._set("set mtu of", name, mtu=mtu)

    def set_mac(self, name: str, mac: str) -> None:
        check_mac(mac)
        self._set("set address of", name, address=mac)

    def move_to_netns(self, name: str, netns: str) -> None:
        check_netns_name(netns)
        self._set(f"move to namespace {netns}:", name, net_ns_fd=netns)

    def add_address(self, name: str, address: IPInterface) -> None:
        index = self.index(name)
        extra: dict[str, Any] = {}
        if address.version == 6:
            extra["flags"] = _IFA_F_NODAD  # usable at once: dnsmasq binds to it right away
        self._call(
            f"add address {address} to {name}",
            lambda: self._ipr.addr(
                "add",
                index=index,
                address=str(address.ip),
                prefixlen=address.network.prefixlen,
                **extra,
            ),
        )

    def delete_address(self, name: str, address: IPInterface) -> None:
        index = self.index(name)
        self._call(
            f"delete address {address} from {name}",
            lambda: self._ipr.addr(
                "del", index=index, address=str(address.ip), prefixlen=address.network.prefixlen
            ),
        )

    def _route(self, op: str, dst: IPNetwork, gateway: IPAddress | None, dev: str | None) -> None:
        spec: dict[str, Any] = {"dst": str(dst)}
        if gateway is not None:
            spec["gateway"] = str(gateway)
        if dev is not None:
            spec["oif"] = self.index(dev)
        shown = f"{dst}{f' via {gateway}' if gateway else ''}{f' dev {dev}' if dev else ''}"
        self._call(f"{op} route {shown}", lambda: self._ipr.route(op, **spec))

    def add_route(
        self, dst: IPNetwork, *, gateway: IPAddress | None = None, dev: str | None = None
    ) -> None:
        """A route in the main table (0.0.0.0/0 for a default route)."""
        self._route("add", dst, gateway, dev)

    def delete_route(
        self, dst: IPNetwork, *, gateway: IPAddress | None = None, dev: str | None = None
    ) -> None:
        self._route("del", dst, gateway, dev)


def _to_link(msg: Any, names: Mapping[int, str]) -> Link:
    master = msg.get("master")
    return Link(
        name=str(msg.get("ifname")),
        index=int(msg["index"]),
        kind=msg.get_nested("IFLA_LINKINFO", "IFLA_INFO_KIND"),
        master=names.get(master) if master else None,
        mtu=int(msg.get("mtu") or 0),
        mac=msg.get("address"),
        up=bool(msg["flags"] & _IFF_UP),
    )


def is_missing(err: NetlinkFailed) -> bool:
    """The kernel said the object does not exist (ENODEV / ENOENT)."""
    return err.errno in (errno.ENODEV, errno.ENOENT)
