"""Virtual networks for the CLI, the API and the domain side: queries (net-list, net-info,
net-dumpxml, net-dhcp-leases) and what a domain NIC needs (`attach_point`, `lease_addresses`,
`network_of_bridge`). The operations that change networks live in net_lifecycle (define, start,
destroy, ...), net_update (net-update) and portfwd (port forwards); they are re-exported here.

Queries reconcile what they read: a network whose start was killed half way is taken back (when
no other command holds its lock), and an active network reports what is missing from it (a
dnsmasq that died, a deleted bridge or nft table) so that net-info and net-list can say so;
`net-start --force`, `ensure_network_active` and a domain start repair it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from ipaddress import IPv4Address, ip_interface

from vmkit.engine.context import Context
from vmkit.engine.net_lifecycle import (
    DEFAULT,
    create_network,
    define_network,
    destroy,
    edit_xml,
    ensure_default_network,
    ensure_network_active,
    parse_network_xml,
    problems_of,
    set_autostart,
    settle,
    start,
    start_autostart,
    undefine,
)
from vmkit.engine.net_records import NetworkEntry, all_networks, find, lookup, not_found
from vmkit.errors import Conflict, NotFound
from vmkit.model.network import ForwardMode, Network
from vmkit.net.dnsmasq import DhcpLease, read_leases
from vmkit.state.records import NETWORK
from vmkit.xml.network import render_network

__all__ = [
    "DEFAULT",
    "DhcpLeaseRow",
    "NetworkEntry",
    "NetworkRow",
    "NicAttachment",
    "attach_point",
    "create_network",
    "define_network",
    "destroy",
    "dhcp_leases",
    "dumpxml",
    "edit_xml",
    "ensure_default_network",
    "ensure_network_active",
    "find",
    "info",
    "lease_addresses",
    "list_networks",
    "lookup",
    "network_of_bridge",
    "parse_network_xml",
    "set_autostart",
    "start",
    "start_autostart",
    "undefine",
]


# ---------------------------------------------------------------------------------------------
# what a domain NIC needs


@dataclass(frozen=True)
class NicAttachment:
    """Where a tap of a NIC on a network goes: the bridge, and the MTU the network asks for."""

    bridge: str
    mtu: int | None


def attach_point(ctx: Context, network_name: str) -> NicAttachment:
    """The bridge of the active network `network_name` (`default` is made and started on first
    use; a dead dnsmasq or firewall is brought back first). NotFound when there is no such
    network, WrongState naming it when it is not active."""
    if network_name == DEFAULT and find(ctx, DEFAULT) is None:
        ensure_default_network(ctx)
    if find(ctx, network_name) is None:
        raise NotFound(
            "network",
            network_name,
            f"network '{network_name}' not found: no network with matching name",
        )
    entry = ensure_network_active(ctx, network_name)
    net = entry.current
    if not net.bridge_name:  # with_defaults gives every network a bridge name
        raise NotFound("bridge", "", f"network '{network_name}' has no bridge")
    return NicAttachment(net.bridge_name, net.mtu)


def lease_addresses(ctx: Context, network_name: str, mac: str) -> list[str]:
    """The IPv4 addresses (as 'address/prefix', e.g. '192.168.122.57/24') that the network's
    dnsmasq currently leases to `mac`, in lease-file order; [] when the network is missing or
    inactive, or the MAC has no lease."""
    entry = find(ctx, network_name)
    if entry is None or not entry.active:
        return []
    return [row.address for row in _lease_rows(entry) if row.mac == mac.lower()]


def leased_ip(ctx: Context, network_name: str, mac: str) -> IPv4Address | None:
    """The address `mac` holds a lease for on the network (the last one), or None."""
    found = lease_addresses(ctx, network_name, mac)
    return IPv4Address(found[-1].split("/")[0]) if found else None


def network_of_bridge(ctx: Context, bridge: str) -> str | None:
    """The name of the active network whose bridge is `bridge` (None: no vmkit network)."""
    for entry in all_networks(ctx):
        if entry.active and entry.current.bridge_name == bridge:
            return entry.name
    return None


# ---------------------------------------------------------------------------------------------
# net-list, net-info, net-dumpxml


@dataclass(frozen=True)
class NetworkRow:
    """One line of net-list, and what net-info shows."""

    name: str
    uuid: str
    state: str  # active | inactive | starting (another command is starting it)
    autostart: bool
    persistent: bool
    bridge: str | None
    mode: str  # nat, route, open, bridge, isolated
    problems: list[str] = field(default_factory=list)  # what is missing from an active network

    @property
    def active(self) -> bool:
        return self.state == "active"


def _reconciled(ctx: Context, entry: NetworkEntry) -> NetworkEntry | None:
    """Take back an interrupted start unless another command is at work on the network
    (None: the network was transient and is gone)."""
    if not entry.starting:
        return entry
    try:
        with ctx.lock(NETWORK, entry.name, timeout=0):
            return settle(ctx, lookup(ctx, entry.name))
    except NotFound:
        return None
    except Conflict:
        return entry  # busy: a start is in progress


def _row(ctx: Context, entry: NetworkEntry) -> NetworkRow:
    net = entry.current
    state = "starting" if entry.starting else "active" if entry.active else "inactive"
    return NetworkRow(
        name=entry.name,
        uuid=entry.uuid,
        state=state,
        autostart=entry.definition.autostart,
        persistent=entry.definition.persistent,
        bridge=net.bridge_name,
        mode=mode_of(net),
        problems=problems_of(ctx, entry),
    )


def mode_of(net: Network) -> str:
    if net.mode is not None:
        return str(net.mode)
    return "host-only" if net.ips else "isolated"


def list_networks(ctx: Context) -> list[NetworkRow]:
    rows = []
    for entry in all_networks(ctx):
        fresh = _reconciled(ctx, entry)
        if fresh is not None:
            rows.append(_row(ctx, fresh))
    return rows


def info(ctx: Context, key: str) -> NetworkRow:
    entry = _reconciled(ctx, lookup(ctx, key))
    if entry is None:
        raise not_found(key)
    return _row(ctx, entry)


def dumpxml(ctx: Context, key: str, *, inactive: bool = False) -> str:
    """The definition the network runs with, or (`inactive`, or when it is not active) the one
    it will start with next."""
    entry = lookup(ctx, key)
    if inactive or not entry.active or entry.live is None:
        return entry.definition.xml
    return render_network(entry.live)


# ---------------------------------------------------------------------------------------------
# net-dhcp-leases


@dataclass(frozen=True)
class DhcpLeaseRow:
    """One line of net-dhcp-leases."""

    expiry: int  # seconds since the epoch, 0 for a lease that never expires
    mac: str | None
    protocol: str  # ipv4 | ipv6
    address: str  # address/prefix
    hostname: str | None
    client_id: str | None


def _lease_rows(entry: NetworkEntry, now: float | None = None) -> list[DhcpLeaseRow]:
    if entry.runtime is None:
        return []
    leases = read_leases(entry.runtime.dnsmasq_files.leases)
    when = time.time() if now is None else now
    return [
        _lease_row(entry.current, lease)
        for lease in leases
        if lease.expiry == 0 or lease.expiry > when
    ]


def _lease_row(net: Network, lease: DhcpLease) -> DhcpLeaseRow:
    prefix = next(
        (
            ip.prefix_length
            for ip in net.ips
            if ip.address.version == lease.ip.version and lease.ip in ip.subnet
        ),
        32 if lease.ip.version == 4 else 128,
    )
    return DhcpLeaseRow(
        expiry=lease.expiry,
        mac=lease.mac,
        protocol=f"ipv{lease.ip.version}",
        address=f"{lease.ip}/{prefix}",
        hostname=lease.hostname,
        client_id=lease.client_id,
    )


def dhcp_leases(ctx: Context, key: str, mac: str | None = None) -> list[DhcpLeaseRow]:
    """net-dhcp-leases: the current leases of an active network (none when inactive)."""
    entry = lookup(ctx, key)
    if entry.current.mode is ForwardMode.BRIDGE:
        return []
    rows = _lease_rows(entry) if entry.active else []
    if mac is not None:
        rows = [r for r in rows if r.mac == mac.lower()]
    return sorted(rows, key=lambda r: (r.protocol, ip_interface(r.address)))
