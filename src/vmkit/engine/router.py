"""`vmkit router add|delete|list`: a network namespace acting as the router, with SNAT, of a
virtual network: what the seed builds by hand (a bridge, a veth into a namespace, a default
route through it, masquerade inside it).

    router add NAME --network NET --address A[/P] --uplink DEV

- namespace NAME; a veth `vr-NAME` on NET's bridge <-> `lan0` in NAME with address A (in NET's
  IPv4 subnet, outside its DHCP ranges);
- the uplink DEV moves into NAME, taking its addresses and its routes (the default route) with
  it: the router owns that link from now on;
- inside NAME: IPv4 forwarding on, and `table ip vmkit_router` masquerading NET's subnet out of
  DEV;
- the default route for the network: guests of an isolated or host-only network use A as their
  gateway; for a network the host forwards (nat, route, open), a policy rule in the namespace
  vmkit runs in sends what the guests send through the host to A (`ip rule from SUBNET iif BR
  lookup T`, `default via A dev BR table T`).

Every step has its undo (rolled back if a later one fails); `router delete` takes all of it back
and gives DEV back, with its addresses and routes. Routers are recorded as JSON files under
`<data_dir>/routers/`.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import partial
from ipaddress import IPv4Interface, IPv4Network, ip_address, ip_interface, ip_network
from pathlib import Path
from typing import Any

from vmkit.engine.context import Context
from vmkit.engine.ifbridge import addresses_of, routes_of
from vmkit.engine.netns_ops import require_shared_mounts
from vmkit.engine.rollback import Rollback
from vmkit.errors import Conflict, InvalidConfig, NetworkError, NotFound, VmkitError
from vmkit.model.network import ForwardMode, IPInterface, Network, check_ifname
from vmkit.net.links import Links, Route
from vmkit.net.netns import (
    check_netns_name,
    create_netns,
    delete_netns,
    exec_in_netns,
    netns_exists,
)
from vmkit.net.nft import Nft
from vmkit.net.sysctl import IPV4_FORWARD, write_sysctl

LOCK = "router"
LAN = "lan0"
TABLES = range(5100, 6100)  # routing tables (and rule priorities) of the policy routes


@dataclass(frozen=True)
class Router:
    name: str
    network: str
    bridge: str
    subnet: IPv4Network
    address: IPv4Interface
    uplink: str
    lan: str  # the host end of the veth, on the network's bridge
    uplink_addresses: tuple[IPInterface, ...] = ()
    uplink_routes: tuple[Route, ...] = ()
    table: int | None = None  # policy routing table, for networks the host forwards

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "network": self.network,
            "bridge": self.bridge,
            "subnet": str(self.subnet),
            "address": str(self.address),
            "uplink": self.uplink,
            "lan": self.lan,
            "uplink_addresses": [str(a) for a in self.uplink_addresses],
            "uplink_routes": [
                {"dst": str(r.dst), "gateway": None if r.gateway is None else str(r.gateway)}
                for r in self.uplink_routes
            ],
            "table": self.table,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Router:
        return cls(
            name=d["name"],
            network=d["network"],
            bridge=d["bridge"],
            subnet=IPv4Network(d["subnet"]),
            address=IPv4Interface(d["address"]),
            uplink=d["uplink"],
            lan=d["lan"],
            uplink_addresses=tuple(ip_interface(a) for a in d.get("uplink_addresses", ())),
            uplink_routes=tuple(
                Route(
                    ip_network(r["dst"]),
                    d["uplink"],
                    ip_address(r["gateway"]) if r.get("gateway") else None,
                )
                for r in d.get("uplink_routes", ())
            ),
            table=d.get("table"),
        )


# ---------------------------------------------------------------------------------------------
# records


def _dir(ctx: Context) -> Path:
    return ctx.paths.data_dir / "routers"


def _path(ctx: Context, name: str) -> Path:
    check_netns_name(name)
    return _dir(ctx) / f"{name}.json"


def list_routers(ctx: Context) -> list[Router]:
    found = []
    for path in sorted(_dir(ctx).glob("*.json")) if _dir(ctx).is_dir() else []:
        found.append(Router.from_json(json.loads(path.read_text())))
    return found


def get_router(ctx: Context, name: str) -> Router:
    path = _path(ctx, name)
    if not path.exists():
        raise NotFound("router", name, f"router not found: no router named '{name}'")
    return Router.from_json(json.loads(path.read_text()))


def _save(ctx: Context, router: Router) -> None:
    path = _path(ctx, router.name)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(router.to_json(), indent=1))
    tmp.replace(path)


# ---------------------------------------------------------------------------------------------
# add


def _plan(ctx: Context, name: str, network: str, address: str, uplink: str) -> Router:
    """Check everything before anything is made; the Router that `add_router` will make."""
    from vmkit.engine.networks import ensure_network_active

    check_netns_name(name)
    check_ifname(uplink, what="uplink")
    if _path(ctx, name).exists():
        raise Conflict("router", name, f"router '{name}' already exists")
    if netns_exists(name):
        raise Conflict("netns", name, f"namespace '{name}' already exists")
    net = ensure_network_active(ctx, network).current
    ip = net.ipv4
    if ip is None or not net.bridge_name or net.mode is ForwardMode.BRIDGE:
        raise InvalidConfig(f"network '{net.name}' has no IPv4 subnet of its own to route")
    lan_addr = _lan_address(net, address)
    lan = f"vr-{name}"[:15]
    with Links() as links:
        view = links.view()
    if lan in view.links:
        raise Conflict("interface", lan, f"interface '{lan}' already exists; choose another name")
    link = view.links.get(uplink)
    if link is None:
        raise NotFound("interface", uplink, f"uplink '{uplink}' does not exist")
    if link.master is not None or uplink in (net.bridge_name, "lo") or link.kind == "bridge":
        raise InvalidConfig(f"interface '{uplink}' cannot be an uplink (a bridge or a bridge port)")
    forwards = net.mode in (ForwardMode.NAT, ForwardMode.ROUTE, ForwardMode.OPEN)
    return Router(
        name=name,
        network=net.name,
        bridge=net.bridge_name,
        subnet=IPv4Network(ip.subnet),
        address=lan_addr,
        uplink=uplink,
        lan=lan,
        uplink_addresses=addresses_of(view, uplink),
        uplink_routes=routes_of(view, uplink),
        table=_free_table(ctx) if forwards else None,
    )


def _lan_address(net: Network, text: str) -> IPv4Interface:
    ip = net.ipv4
    assert ip is not None
    try:
        addr = IPv4Interface(text if "/" in text else f"{text}/{ip.prefix_length}")
    except ValueError:
        raise InvalidConfig(f"invalid router address '{text}'", value=text) from None
    subnet = IPv4Network(ip.subnet)
    ranges = ip.dhcp.ranges if ip.dhcp else ()
    bad = None
    if addr.network != subnet:
        bad = f"is not in subnet {subnet} of network '{net.name}'"
    elif addr.ip in (subnet.network_address, subnet.broadcast_address, ip.address):
        bad = "is the network's own, network or broadcast address"
    elif any(int(r.start) <= int(addr.ip) <= int(r.end) for r in ranges):
        bad = "is inside the network's DHCP range"
    if bad:
        raise InvalidConfig(f"router address {addr} {bad}", value=text)
    return addr


def _free_table(ctx: Context) -> int:
    used = {r.table for r in list_routers(ctx)}
    return next(t for t in TABLES if t not in used)


def add_router(ctx: Context, name: str, *, network: str, address: str, uplink: str) -> Router:
    require_shared_mounts(f"create router namespace '{name}'")
    with ctx.lock(LOCK, name):
        r = _plan(ctx, name, network, address, uplink)
        with Rollback() as rb:
            create_netns(name)
            rb.push(f"delete namespace {name}", partial(delete_netns, name))
            _build_lan(r, rb)
            _move_uplink(r, rb)
            write_sysctl(IPV4_FORWARD, "1", name)  # the namespace's own; it goes with it
            Nft(name).run(masquerade_script(r))
            if r.table is not None:
                _policy("add", r)
                rb.push("policy route", partial(_policy, "del", r, quiet=True))
            _save(ctx, r)
        return r


def _build_lan(r: Router, rb: Rollback) -> None:
    with Links(r.name) as inner:
        inner.set_up("lo")
    with Links() as links:
        links.add_veth(r.lan, LAN, peer_netns=r.name)
        rb.push(f"delete veth {r.lan}", partial(_delete_link, None, r.lan))
        links.set_master(r.lan, r.bridge)
        links.set_up(r.lan)
    with Links(r.name) as inner:
        inner.add_address(LAN, r.address)
        inner.set_up(LAN)


def _move_uplink(r: Router, rb: Rollback) -> None:
    with Links() as links:
        links.move_to_netns(r.uplink, r.name)
    rb.push(f"give {r.uplink} back", partial(_return_uplink, r))
    with Links(r.name) as inner:
        for a in r.uplink_addresses:
            inner.add_address(r.uplink, a)
        inner.set_up(r.uplink)
        for route in r.uplink_routes:
            inner.add_route(route.dst, gateway=route.gateway, dev=r.uplink)


def masquerade_script(r: Router) -> str:
    """The router's NAT: the network's subnet leaves through the uplink with its address."""
    check_ifname(r.uplink)
    return (
        "table ip vmkit_router\ndelete table ip vmkit_router\n"
        "table ip vmkit_router {\n"
        "\tchain postrouting {\n"
        "\t\ttype nat hook postrouting priority srcnat; policy accept;\n"
        f'\t\tip saddr {r.subnet} oifname "{r.uplink}" masquerade\n'
        "\t}\n}\n"
    )


def _policy(op: str, r: Router, *, quiet: bool = False) -> None:
    """The network's default route through the router, in the namespace vmkit runs in."""
    assert r.table is not None
    check_ifname(r.bridge)
    table, via = str(r.table), str(r.address.ip)
    commands = [
        ["ip", "-4", "rule", op, "from", str(r.subnet), "iif", r.bridge, "lookup", table,
         "pref", table],
        ["ip", "-4", "route", op, "default", "via", via, "dev", r.bridge, "table", table],
    ]  # fmt: skip
    if op == "del":
        commands.reverse()
    for argv in commands:
        proc = exec_in_netns(None, argv)
        if proc.returncode != 0 and not quiet:
            raise NetworkError(f"{' '.join(argv)} failed: {proc.stderr.strip()}")


def _delete_link(netns: str | None, name: str) -> None:
    with Links(netns) as links:
        if links.get(name) is not None:
            links.delete(name)


def _return_uplink(r: Router) -> None:
    """Move the uplink back into the namespace vmkit runs in, with its addresses and routes."""
    if netns_exists(r.name):
        with Links(r.name) as inner:
            present = inner.get(r.uplink) is not None
        if present:
            argv = ["ip", "link", "set", "dev", r.uplink, "netns", str(os.getpid())]
            proc = exec_in_netns(r.name, argv)
            if proc.returncode != 0:
                raise NetworkError(f"cannot move {r.uplink} back: {proc.stderr.strip()}")
    with Links() as links:
        if links.get(r.uplink) is None:
            raise NotFound("interface", r.uplink, f"uplink '{r.uplink}' is gone")
        have = {a for d, a in links.addresses() if d == r.uplink}
        for a in r.uplink_addresses:
            if a not in have:
                links.add_address(r.uplink, a)
        links.set_up(r.uplink)
        present_routes = {(x.dst, x.gateway) for x in links.routes() if x.dev == r.uplink}
        for route in r.uplink_routes:
            if (route.dst, route.gateway) not in present_routes:
                links.add_route(route.dst, gateway=route.gateway, dev=r.uplink)


# ---------------------------------------------------------------------------------------------
# delete


def delete_router(ctx: Context, name: str) -> Router:
    """Take the router down: policy route, uplink back (with addresses and routes), veth,
    namespace, record. Every step is tried; the first failure is raised after."""
    with ctx.lock(LOCK, name):
        r = get_router(ctx, name)
        errors: list[VmkitError | OSError] = []
        steps = [
            partial(_policy, "del", r, quiet=True) if r.table is not None else None,
            partial(_return_uplink, r),
            partial(_delete_link, None, r.lan),
            partial(delete_netns, name) if netns_exists(name) else None,
        ]
        for step in steps:
            if step is None:
                continue
            try:
                step()
            except (VmkitError, OSError) as e:
                errors.append(e)
        if errors:
            for extra in errors[1:]:
                errors[0].add_note(f"also failed: {extra}")
            raise errors[0]
        _path(ctx, name).unlink(missing_ok=True)
        return r
