"""CLI for virtual networks: net-define, net-create, net-start, net-destroy, net-undefine,
net-list, net-info, net-dumpxml, net-edit, net-autostart, net-start-autostart, net-uuid,
net-name, net-dhcp-leases, net-update, and vmkit's port-forward.

Messages and layouts are virsh's ("Network default started", net-list's table, net-info's block,
net-dhcp-leases' columns); `--json` prints the same facts as JSON. A network that is active but
missing a part (a dnsmasq that died) shows as `degraded` in net-list and says what is wrong in
net-info; `net-start --force` repairs it.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from vmkit.cli.editing import edit_in_editor
from vmkit.cli.output import emit, emit_json, fields, table
from vmkit.engine.context import Context
from vmkit.errors import InvalidConfig

Handler = Callable[[Context, argparse.Namespace], int]

_LIST_FLAGS = (
    ("--all", "list inactive & active networks"),
    ("--inactive", "list inactive networks"),
    ("--persistent", "list persistent networks"),
    ("--transient", "list transient networks"),
    ("--autostart", "list networks with autostart enabled"),
    ("--no-autostart", "list networks with autostart disabled"),
    ("--name", "list network names only"),
    ("--uuid", "list uuids only"),
)


def add_arguments(name: str, p: argparse.ArgumentParser) -> None:
    if name in ("net-define", "net-create"):
        p.add_argument("file", help="network XML file ('-' for stdin)")
        p.add_argument("--validate", action="store_true", help="accepted; vmkit always validates")
    elif name == "net-list":
        for flag, what in _LIST_FLAGS:
            p.add_argument(flag, action="store_true", help=what)
    elif name == "net-start-autostart":
        pass
    elif name == "port-forward":
        _port_forward_arguments(p)
    else:
        p.add_argument("network", help="network name or uuid")
    if name == "net-start":
        p.add_argument(
            "--force",
            action="store_true",
            help="on an active network: bring back what died (dnsmasq, firewall, bridge)",
        )
    elif name == "net-dumpxml":
        p.add_argument("--inactive", action="store_true", help="the definition of the next start")
    elif name == "net-autostart":
        p.add_argument("--disable", action="store_true", help="disable autostarting")
    elif name == "net-dhcp-leases":
        p.add_argument("--mac", help="only the leases of this MAC address")
    elif name == "net-update":
        _update_arguments(p)


def _update_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("update_command", metavar="command", help="add, delete or modify")
    p.add_argument("section", help="ip-dhcp-host or dns-host")
    p.add_argument("xml", help="the <host> element, or a file holding it")
    p.add_argument("--parent-index", type=int, help="accepted for virsh habits (ignored)")
    p.add_argument("--live", action="store_true", help="affect the running network")
    p.add_argument("--config", action="store_true", help="affect the next start")
    p.add_argument("--current", action="store_true", help="affect the current state (the default)")


def _port_forward_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    for action, what in (
        ("add", "forward a host port to a guest"),
        ("remove", "remove a port forward"),
        ("list", "list port forwards (of a network, or to a domain)"),
    ):
        a = sub.add_parser(action, help=what, description=what)
        a.add_argument("--json", action="store_true", default=argparse.SUPPRESS)
        a.add_argument(
            "target", nargs="?" if action == "list" else None, help="network or domain name"
        )
        if action == "list":
            continue
        a.add_argument("--host-port", type=int, required=True, help="port on the host")
        if action == "add":
            a.add_argument("--guest-port", type=int, help="port in the guest (default: the same)")
            a.add_argument("--guest-ip", help="guest address (default: from the domain's NIC)")
        a.add_argument("--proto", choices=("tcp", "udp"), default="tcp")
        a.add_argument("--address", help="only this host address (default: all)")
        a.add_argument("--mac", help="the domain NIC to forward to (default: the first)")


def run(name: str, args: argparse.Namespace) -> int:
    with Context.open() as ctx:
        return _HANDLERS[name](ctx, args)


def _say(args: argparse.Namespace, text: str, data: Any) -> int:
    emit_json(data) if args.json else emit(text + "\n\n")
    return 0


def _read_file(path: str) -> tuple[bytes, str]:
    from vmkit.cli.domain_cmds import read_xml_arg

    return read_xml_arg(path)


def _summary(row: Any) -> dict[str, Any]:
    data: dict[str, Any] = asdict(row)
    data["active"] = row.active
    return data


# ---------------------------------------------------------------------------------------------
# define, create, start, destroy, undefine, autostart, edit


def _define(ctx: Context, args: argparse.Namespace) -> int:
    from vmkit.engine import networks

    data, source = _read_file(args.file)
    net = networks.parse_network_xml(data, source)
    entry = networks.define_network(ctx, net)
    row = networks.info(ctx, entry.uuid)
    return _say(args, f"Network {entry.name} defined from {source}", _summary(row))


def _create(ctx: Context, args: argparse.Namespace) -> int:
    from vmkit.engine import networks

    data, source = _read_file(args.file)
    net = networks.parse_network_xml(data, source, verb="create")
    entry = networks.create_network(ctx, net)
    row = networks.info(ctx, entry.uuid)
    return _say(args, f"Network {entry.name} created from {source}", _summary(row))


def _start(ctx: Context, args: argparse.Namespace) -> int:
    from vmkit.engine import networks

    before = []
    found = networks.find(ctx, args.network)
    if args.force and found is not None and found.active:
        before = networks.info(ctx, args.network).problems
    entry, done = networks.start(ctx, args.network, force=args.force)
    row = networks.info(ctx, entry.uuid)
    data = _summary(row) | {"done": done, "repaired": before}
    if done == "created":
        ip = entry.current.ipv4
        where = f"{ip.interface} " if ip else ""
        text = f"Network {entry.name} defined (NAT, {where}on bridge {row.bridge})\n"
        return _say(args, text + f"Network {entry.name} started", data)
    if done == "repaired":
        what = "; ".join(before) if before else "nothing was missing"
        return _say(args, f"Network {entry.name} started (repaired: {what})", data)
    return _say(args, f"Network {entry.name} started", data)


def _destroy(ctx: Context, args: argparse.Namespace) -> int:
    from vmkit.engine import networks

    entry = networks.destroy(ctx, args.network)
    data = {"name": entry.name, "uuid": entry.uuid, "destroyed": True}
    return _say(args, f"Network {entry.name} destroyed", data)


def _undefine(ctx: Context, args: argparse.Namespace) -> int:
    from vmkit.engine import networks

    entry, gone = networks.undefine(ctx, args.network)
    data = {"name": entry.name, "uuid": entry.uuid, "transient": not gone}
    return _say(args, f"Network {entry.name} has been undefined", data)


def _autostart(ctx: Context, args: argparse.Namespace) -> int:
    from vmkit.engine import networks

    entry = networks.set_autostart(ctx, args.network, not args.disable)
    verb = "unmarked" if args.disable else "marked"
    data = {"name": entry.name, "autostart": entry.definition.autostart}
    return _say(args, f"Network {entry.name} {verb} as autostarted", data)


def _start_autostart(ctx: Context, args: argparse.Namespace) -> int:
    from vmkit.engine import networks

    results = networks.start_autostart(ctx)
    if args.json:
        emit_json([{"name": n, "started": e is None, "error": e} for n, e in results])
    else:
        for name, error in results:
            if error is None:
                emit(f"Network {name} started\n")
            else:
                sys.stderr.write(f"error: failed to start network {name}: {error}\n")
        emit("\n")
    return 0 if all(e is None for _, e in results) else 1


def _edit(ctx: Context, args: argparse.Namespace) -> int:
    from vmkit.engine import networks

    entry = networks.lookup(ctx, args.network)
    new_xml = edit_in_editor(entry.name, entry.definition.xml, prefix="vmkit-net-edit-")
    result = networks.edit_xml(ctx, entry.uuid, new_xml)
    changed = result is not None
    text = f"Network {entry.name} XML configuration {'edited' if changed else 'not changed'}."
    return _say(args, text, {"name": entry.name, "changed": changed})


def _update(ctx: Context, args: argparse.Namespace) -> int:
    from vmkit.engine.net_update import update

    if args.current and (args.live or args.config):
        raise InvalidConfig("--current cannot be combined with --live or --config")
    entry, scope = update(
        ctx,
        args.network,
        args.update_command,
        args.section,
        args.xml,
        live=args.live,
        config=args.config,
    )
    data = {"name": entry.name, "live": scope.live, "config": scope.config}
    return _say(args, f"Updated network {entry.name} {scope.describe()}", data)


# ---------------------------------------------------------------------------------------------
# queries


def _wanted(row: Any, a: argparse.Namespace) -> bool:
    active = row.state != "inactive"
    if a.inactive and not a.all and active:
        return False
    if not (a.all or a.inactive) and not active:
        return False
    if (a.transient and row.persistent) or (a.persistent and not row.persistent):
        return False
    return not ((a.autostart and not row.autostart) or (a.no_autostart and row.autostart))


def _state_word(row: Any) -> str:
    return "degraded" if row.problems else str(row.state)


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def _list(ctx: Context, args: argparse.Namespace) -> int:
    from vmkit.engine import networks

    rows = [r for r in networks.list_networks(ctx) if _wanted(r, args)]
    if args.json:
        emit_json([_summary(r) for r in rows])
    elif args.name or args.uuid:
        emit("".join(f"{r.name if args.name else r.uuid}\n" for r in rows) + "\n")
    else:
        cells = [[r.name, _state_word(r), _yes(r.autostart), _yes(r.persistent)] for r in rows]
        text = table(["Name", "State", "Autostart", "Persistent"], cells) + "\n"
        notes = [f" {r.name}: {'; '.join(r.problems)}: {_fix(r.name)}" for r in rows if r.problems]
        emit(text + ("\n".join(notes) + "\n\n" if notes else ""))
    return 0


def _fix(name: str) -> str:
    return f"run 'vmkit net-start --force {name}'"


def _info(ctx: Context, args: argparse.Namespace) -> int:
    from vmkit.engine import networks

    row = networks.info(ctx, args.network)
    if args.json:
        emit_json(_summary(row))
        return 0
    active = {"active": "yes", "inactive": "no"}.get(row.state, row.state)
    if row.problems:
        active += f" (degraded: {'; '.join(row.problems)}; {_fix(row.name)})"
    pairs: list[tuple[str, object]] = [
        ("Name", row.name),
        ("UUID", row.uuid),
        ("Active", active),
        ("Persistent", _yes(row.persistent)),
        ("Autostart", _yes(row.autostart)),
        ("Bridge", row.bridge or ""),
    ]
    emit(fields(pairs) + "\n")
    return 0


def _dumpxml(ctx: Context, args: argparse.Namespace) -> int:
    from vmkit.engine import networks

    xml = networks.dumpxml(ctx, args.network, inactive=args.inactive)
    emit_json({"xml": xml}) if args.json else emit(xml if xml.endswith("\n") else xml + "\n")
    return 0


def _uuid(ctx: Context, args: argparse.Namespace) -> int:
    from vmkit.engine import networks

    entry = networks.lookup(ctx, args.network)
    return _say(args, entry.uuid, {"name": entry.name, "uuid": entry.uuid})


def _name(ctx: Context, args: argparse.Namespace) -> int:
    from vmkit.engine import networks

    entry = networks.lookup(ctx, args.network)
    return _say(args, entry.name, {"name": entry.name, "uuid": entry.uuid})


def _leases(ctx: Context, args: argparse.Namespace) -> int:
    from vmkit.engine import networks
    from vmkit.model.network import check_mac

    if args.mac:
        check_mac(args.mac)
    rows = networks.dhcp_leases(ctx, args.network, args.mac)
    if args.json:
        emit_json([asdict(r) for r in rows])
        return 0
    headers = ["Expiry Time", "MAC address", "Protocol", "IP address", "Hostname"]
    cells = [
        [
            _when(r.expiry),
            r.mac or "-",
            r.protocol,
            r.address,
            r.hostname or "-",
            r.client_id or "-",
        ]
        for r in rows
    ]
    emit(table([*headers, "Client ID or DUID"], cells) + "\n")
    return 0


def _when(expiry: int) -> str:
    return "never" if expiry == 0 else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(expiry))


# ---------------------------------------------------------------------------------------------
# port-forward


def _port_forward(ctx: Context, args: argparse.Namespace) -> int:
    from ipaddress import IPv4Address

    from vmkit.engine import portfwd
    from vmkit.model.network import Proto

    def v4(text: str | None, flag: str) -> IPv4Address | None:
        if text is None:
            return None
        try:
            return IPv4Address(text)
        except ValueError:
            raise InvalidConfig(f"{flag}: invalid IPv4 address '{text}'", value=text) from None

    if args.action == "list":
        rows = portfwd.list_forwards(ctx, args.target)
        if getattr(args, "json", False):
            emit_json([asdict(r) for r in rows])
            return 0
        headers = ["Network", "Proto", "Host address", "Host port", "Guest address", "Guest port"]
        cells = [
            [r.network, r.proto, r.address or "*", r.host_port, r.guest_ip, r.guest_port]
            for r in rows
        ]
        emit(table(headers, cells) + "\n")
        return 0
    proto, address = Proto(args.proto), v4(args.address, "--address")
    if args.action == "add":
        t, pf = portfwd.add(
            ctx,
            args.target,
            host_port=args.host_port,
            guest_port=args.guest_port,
            proto=proto,
            address=address,
            guest_ip=v4(args.guest_ip, "--guest-ip"),
            mac=args.mac,
        )
        to = f"{pf.guest_ip}:{pf.guest_port}"
        text = f"Port {pf.describe()} forwarded to {to} on network {t.network}"
        if t.leased:
            text += f"\n(address {pf.guest_ip} of MAC {t.mac} pinned with a static DHCP host)"
    else:
        t, pf = portfwd.remove(
            ctx, args.target, host_port=args.host_port, proto=proto, address=address, mac=args.mac
        )
        text = f"Port forward {pf.describe()} removed from network {t.network}"
    data = {
        "network": t.network,
        "domain": t.domain,
        "proto": str(pf.proto),
        "address": None if pf.address is None else str(pf.address),
        "host_port": pf.host_port,
        "guest_ip": str(pf.guest_ip),
        "guest_port": pf.guest_port,
        "pinned": t.leased and args.action == "add",
    }
    args.json = getattr(args, "json", False)
    return _say(args, text, data)


_HANDLERS: dict[str, Handler] = {
    "net-define": _define,
    "net-create": _create,
    "net-start": _start,
    "net-destroy": _destroy,
    "net-undefine": _undefine,
    "net-list": _list,
    "net-info": _info,
    "net-dumpxml": _dumpxml,
    "net-edit": _edit,
    "net-autostart": _autostart,
    "net-start-autostart": _start_autostart,
    "net-uuid": _uuid,
    "net-name": _name,
    "net-dhcp-leases": _leases,
    "net-update": _update,
    "port-forward": _port_forward,
}
