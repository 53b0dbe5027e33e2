"""CLI for host plumbing: `netns add|delete|list|exec`, `veth add|delete`, `router
add|delete|list`, `iface-bridge`, `iface-unbridge`. They act in the namespace vmkit runs in.

virsh has iface-bridge/iface-unbridge (same words: "Created bridge br0 with attached device
eth0"); the rest is vmkit's, with `ip`'s habits (`netns list` prints one name a line).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from typing import Any

from vmkit.cli.output import emit, emit_json, table
from vmkit.engine.context import Context

Handler = Callable[[Context, argparse.Namespace], int]


def _sub(p: argparse.ArgumentParser, actions: dict[str, str]) -> dict[str, argparse.ArgumentParser]:
    """Sub-actions that also take --json after the action."""
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    made = {}
    for action, what in actions.items():
        a = sub.add_parser(action, help=what, description=what)
        a.add_argument("--json", action="store_true", default=argparse.SUPPRESS)
        made[action] = a
    return made


def add_arguments(name: str, p: argparse.ArgumentParser) -> None:
    if name == "netns":
        a = _sub(
            p,
            {
                "add": "create a network namespace",
                "delete": "delete a network namespace",
                "list": "list network namespaces",
                "exec": "run a command in a network namespace",
            },
        )
        for action in ("add", "delete", "exec"):
            a[action].add_argument("name", help="namespace name")
        a["exec"].add_argument("argv", nargs=argparse.REMAINDER, help="-- COMMAND [ARG...]")
    elif name == "veth":
        a = _sub(p, {"add": "create a veth pair (both ends up)", "delete": "delete a veth pair"})
        a["add"].add_argument("name", help="name of this end")
        a["add"].add_argument("peer", help="name of the other end")
        a["add"].add_argument("--peer-netns", help="namespace of the other end")
        a["delete"].add_argument("name", help="either end")
        for sub in a.values():
            sub.add_argument("--netns", help="namespace of this end (default: vmkit's)")
    elif name == "router":
        a = _sub(
            p,
            {
                "add": "make a namespace the router (with SNAT) of a network",
                "delete": "take a router down and give its uplink back",
                "list": "list routers",
            },
        )
        a["add"].add_argument("name", help="router (and namespace) name")
        a["add"].add_argument("--network", required=True, help="the network it routes")
        a["add"].add_argument("--address", required=True, help="its address on the network")
        a["add"].add_argument(
            "--uplink", required=True, help="interface moved into the router, toward the world"
        )
        a["delete"].add_argument("name", help="router name")
    elif name == "iface-bridge":
        p.add_argument("interface", help="existing interface to put behind the bridge")
        p.add_argument("bridge", help="new bridge device name")
        stp = p.add_mutually_exclusive_group()
        stp.add_argument("--no-stp", action="store_true", help="do not enable STP")
        stp.add_argument("--stp", action="store_true", help="enable STP (the default)")
        p.add_argument("--delay", type=int, default=0, help="forward delay in seconds")
        p.add_argument("--no-start", action="store_true", help="accepted for virsh habits")
    elif name == "iface-unbridge":
        p.add_argument("bridge", help="the bridge to remove")
        p.add_argument("--no-start", action="store_true", help="accepted for virsh habits")


def run(name: str, args: argparse.Namespace) -> int:
    args.json = getattr(args, "json", False)
    if name == "netns" and args.action == "exec":
        return _exec(args)
    with Context.open() as ctx:
        return _HANDLERS[name](ctx, args)


def _say(args: argparse.Namespace, text: str, data: Any) -> int:
    emit_json(data) if args.json else emit(text + "\n")
    return 0


# ---------------------------------------------------------------------------------------------
# netns, veth


def _exec(args: argparse.Namespace) -> int:
    from vmkit.engine.netns_ops import exec_argv

    argv = list(args.argv)
    if argv and argv[0] == "--":
        argv = argv[1:]
    full = exec_argv(args.name, argv)
    sys.stdout.flush()
    os.execvp(full[0], full)


def _netns(ctx: Context, args: argparse.Namespace) -> int:
    from vmkit.engine import netns_ops
    from vmkit.engine.router import list_routers

    if args.action == "list":
        names = netns_ops.namespaces()
        emit_json(names) if args.json else emit("".join(f"{n}\n" for n in names))
        return 0
    if args.action == "add":
        netns_ops.add_netns(args.name)
        return _say(args, f"Namespace {args.name} created", {"name": args.name, "created": True})
    routers = [r.name for r in list_routers(ctx)]
    netns_ops.remove_netns(args.name, routers=routers)
    return _say(args, f"Namespace {args.name} deleted", {"name": args.name, "deleted": True})


def _veth(ctx: Context, args: argparse.Namespace) -> int:
    from vmkit.engine import netns_ops

    if args.action == "add":
        netns_ops.add_veth(args.name, args.peer, netns=args.netns, peer_netns=args.peer_netns)
        data = {"name": args.name, "peer": args.peer, "netns": args.netns}
        data["peer_netns"] = args.peer_netns
        return _say(args, f"Veth {args.name} <-> {args.peer} created", data)
    netns_ops.delete_veth(args.name, netns=args.netns)
    return _say(args, f"Veth {args.name} deleted", {"name": args.name, "deleted": True})


# ---------------------------------------------------------------------------------------------
# router


def _router(ctx: Context, args: argparse.Namespace) -> int:
    from vmkit.engine import router

    if args.action == "list":
        found = router.list_routers(ctx)
        if args.json:
            emit_json([r.to_json() for r in found])
            return 0
        cells = [[r.name, r.network, str(r.address), r.uplink] for r in found]
        emit(table(["Name", "Network", "Address", "Uplink"], cells) + "\n")
        return 0
    if args.action == "add":
        r = router.add_router(
            ctx, args.name, network=args.network, address=args.address, uplink=args.uplink
        )
        text = (
            f"Router {r.name} created: {r.subnet} of network {r.network} leaves through "
            f"{r.uplink} (masqueraded); gateway {r.address.ip}"
        )
        return _say(args, text, r.to_json())
    r = router.delete_router(ctx, args.name)
    return _say(args, f"Router {r.name} deleted ({r.uplink} given back)", r.to_json())


# ---------------------------------------------------------------------------------------------
# iface-bridge, iface-unbridge


def _moved(m: Any) -> dict[str, Any]:
    return {
        "interface": m.iface,
        "bridge": m.bridge,
        "addresses": [str(a) for a in m.addresses],
        "routes": [f"{r.dst}{f' via {r.gateway}' if r.gateway else ''}" for r in m.routes],
    }


def _iface_bridge(ctx: Context, args: argparse.Namespace) -> int:
    from vmkit.engine.ifbridge import iface_bridge
    from vmkit.net.links import Links

    with Links() as links:
        m = iface_bridge(links, args.interface, args.bridge, stp=not args.no_stp, delay=args.delay)
    text = f"Created bridge {m.bridge} with attached device {m.iface}"
    if m.addresses:
        text += f"\nMoved {', '.join(str(a) for a in m.addresses)} to {m.bridge}"
    return _say(args, text + "\n", _moved(m))


def _iface_unbridge(ctx: Context, args: argparse.Namespace) -> int:
    from vmkit.engine.ifbridge import iface_unbridge
    from vmkit.engine.networks import network_of_bridge
    from vmkit.errors import Conflict
    from vmkit.net.links import Links

    owner = network_of_bridge(ctx, args.bridge)
    if owner is not None:
        raise Conflict(
            "bridge", args.bridge, f"bridge '{args.bridge}' belongs to network '{owner}'"
        )
    with Links() as links:
        m = iface_unbridge(links, args.bridge)
    text = f"Device {m.iface} un-attached from bridge {m.bridge}\nBridge {m.bridge} deleted"
    return _say(args, text + "\n", _moved(m))


_HANDLERS: dict[str, Handler] = {
    "netns": _netns,
    "veth": _veth,
    "router": _router,
    "iface-bridge": _iface_bridge,
    "iface-unbridge": _iface_unbridge,
}
