"""CLI for a domain's NICs: domiflist, domifaddr, domifstat, domif-setlink, domif-getlink."""

from __future__ import annotations

import argparse
from dataclasses import asdict

from vmkit.cli.output import emit, emit_json, table
from vmkit.engine import ifaces
from vmkit.engine.context import Context


def add_arguments(name: str, p: argparse.ArgumentParser) -> None:
    p.add_argument("domain", help="domain name, id or uuid")
    if name == "domiflist":
        p.add_argument("--inactive", action="store_true", help="get inactive rather than running")
    elif name == "domifaddr":
        p.add_argument("interface", nargs="?", help="network interface name")
        p.add_argument("--full", action="store_true", help="always display names and MACs")
        p.add_argument("--source", choices=["lease", "arp"], default="lease")
    elif name == "domifstat":
        p.add_argument("interface", help="interface device (tap name or MAC)")
    elif name == "domif-setlink":
        p.add_argument("interface", help="interface device (tap name or MAC)")
        p.add_argument("state", choices=["up", "down"], help="new state of the device")
        p.add_argument("--config", action="store_true", help="affect next boot")
    elif name == "domif-getlink":
        p.add_argument("interface", help="interface device (tap name or MAC)")
        p.add_argument("--config", action="store_true", help="get persistent state")


def run(name: str, args: argparse.Namespace) -> int:
    with Context.open() as ctx:
        if name == "domiflist":
            rows = ifaces.list_ifaces(ctx, args.domain, inactive=args.inactive)
            if args.json:
                emit_json([asdict(r) for r in rows])
            else:
                cells = [[r.interface, r.type, r.source, r.model, r.mac] for r in rows]
                emit(table(["Interface", "Type", "Source", "Model", "MAC"], cells) + "\n")
        elif name == "domifaddr":
            addrs = ifaces.list_addresses(ctx, args.domain, source=args.source)
            if args.interface:
                addrs = [a for a in addrs if args.interface in (a.name, a.mac)]
            if args.json:
                emit_json([asdict(a) for a in addrs])
            else:
                emit(_format_addrs(addrs, full=args.full))
        elif name == "domifstat":
            stats = ifaces.iface_stats(ctx, args.domain, args.interface)
            if args.json:
                emit_json(dict(stats))
            else:
                emit("".join(f"{args.interface} {k} {v}\n" for k, v in stats) + "\n")
        elif name == "domif-getlink":
            iface, state = ifaces.get_link(ctx, args.domain, args.interface, config=args.config)
            emit_json({"interface": iface, "state": state}) if args.json else emit(
                f"{iface} {state}\n\n"
            )
        else:
            ifaces.set_link(ctx, args.domain, args.interface, args.state, config=args.config)
            emit_json({"interface": args.interface, "state": args.state}) if args.json else emit(
                "Device updated successfully\n\n"
            )
    return 0


def _format_addrs(addrs: list[ifaces.IfaceAddr], *, full: bool) -> str:
    """virsh's fixed-width domifaddr layout (name and MAC only on an interface's first line)."""
    out = [f" {'Name':<10} {'MAC address':<17}    {'Protocol':<12} Address", "-" * 79]
    last = None
    for a in addrs:
        first = full or a.name != last
        name, mac = (a.name, a.mac) if first else ("-", "-")
        out.append(f" {name:<10} {mac:<17}    {a.protocol:<12} {a.address}")
        last = a.name
    return "\n".join(out) + "\n\n"
