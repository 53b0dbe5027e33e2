"""CLI for a domain's NICs: domiflist, domifaddr, domifstat, domif-setlink, domif-getlink,
attach-interface, detach-interface."""

from __future__ import annotations

import argparse
from dataclasses import asdict

from vmkit.cli.output import emit, emit_json, table
from vmkit.cli.scope_flags import add_scope_flags, scope_flags
from vmkit.engine import ifaces
from vmkit.engine.context import Context
from vmkit.errors import InvalidConfig


def add_arguments(name: str, p: argparse.ArgumentParser) -> None:
    p.add_argument("domain", help="domain name, id or uuid")
    if name in ("attach-interface", "detach-interface"):
        _hotplug_arguments(name, p)
    elif name == "domiflist":
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
    if name in ("attach-interface", "detach-interface"):
        return _run_hotplug(name, args)
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


def _hotplug_arguments(name: str, p: argparse.ArgumentParser) -> None:
    """virsh's options; TYPE and SOURCE also as --type / --source, as virsh takes them."""
    p.add_argument("type", nargs="?", help="network, bridge, user or ethernet")
    p.add_argument("--type", dest="type_opt", metavar="TYPE", help="same as TYPE")
    if name == "attach-interface":
        p.add_argument("source", nargs="?", help="network or bridge (none for user, ethernet)")
        p.add_argument("--source", dest="source_opt", metavar="SOURCE", help="same as SOURCE")
        p.add_argument("--target", help="target device name (the tap on the host)")
        p.add_argument("--mac", help="MAC address (default: a new 52:54:00:xx:xx:xx)")
        p.add_argument("--model", help="model type (virtio, e1000, e1000e, rtl8139, ...)")
        p.add_argument("--script", help="script run with the tap's name once it exists")
        p.add_argument("--print-xml", action="store_true", help="print XML rather than attach")
    else:
        p.add_argument("--mac", help="MAC address (needed when several NICs have TYPE)")
        p.add_argument(
            "--timeout",
            type=float,
            default=30.0,
            help="seconds to wait for the guest to release the device (default 30)",
        )
    add_scope_flags(p)


def _one_of(args: argparse.Namespace, name: str) -> str | None:
    given: str | None = getattr(args, name)
    opt: str | None = getattr(args, f"{name}_opt")
    if given is not None and opt is not None and given != opt:
        raise InvalidConfig(f"two values given for {name}: '{given}' and '{opt}'")
    return given if given is not None else opt


def _run_hotplug(name: str, args: argparse.Namespace) -> int:
    from vmkit.engine import iface_hotplug as hp

    kind = _one_of(args, "type")
    if not kind:
        raise InvalidConfig(f"command '{name}' requires <type> option")
    flags = scope_flags(args)
    if name == "detach-interface":
        select = hp.by_type_and_mac(hp.interface_type(kind), args.mac)
        with Context.open() as ctx:
            nic = hp.detach_interface(ctx, args.domain, select, flags, timeout=args.timeout)
        return _done(args, "Interface detached successfully", nic.mac_address, detached=True)
    spec = hp.IfaceArgs(
        type=kind,
        source=_one_of(args, "source"),
        target=args.target,
        mac=args.mac,
        model=args.model,
        script=args.script,
    )
    if args.print_xml:
        xml = hp.iface_xml(spec)
        emit_json({"xml": xml}) if args.json else emit(xml + "\n")
        return 0
    with Context.open() as ctx:
        nic = hp.attach_interface(ctx, args.domain, hp.iface_from_args(spec), flags)
    return _done(args, "Interface attached successfully", nic.mac_address, attached=True)


def _done(args: argparse.Namespace, message: str, mac: str | None, **facts: object) -> int:
    emit_json({"domain": args.domain, "mac": mac, **facts}) if args.json else emit(message + "\n\n")
    return 0
