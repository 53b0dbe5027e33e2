"""Port forwards into NAT'd guests (`vmkit port-forward add|remove|list`), a vmkit extension.

A forward lives in its network's definition (`<metadata><vmkit:port-forward .../>`), so it
survives restarts of the network and of the guest; on an active network it is applied at once
(the network's nft table is replaced atomically). The target is a network, or a domain: then the
network is the one its NIC is on (the first NIC on a NAT network, or the NIC with `--mac`) and
the guest address is, in this order, `--guest-ip`, the static DHCP host of the NIC's MAC, or its
current lease, which is then pinned with a static DHCP host so that the forward keeps pointing
at the guest after the network restarts. A host port may be forwarded once per host: by one
network, for one address (or all).
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address

from vmkit.engine.context import Context
from vmkit.engine.net_records import all_networks, find, lookup
from vmkit.engine.net_update import Scope, apply_change
from vmkit.errors import Conflict, InvalidConfig, NotFound
from vmkit.model.network import (
    DhcpHost,
    ForwardMode,
    Network,
    PortForward,
    Proto,
    add_dhcp_host,
    add_port_forward,
    remove_port_forward,
)


@dataclass(frozen=True)
class Target:
    """Where a forward goes: a network, and (for a domain target) the guest on it."""

    network: str
    domain: str | None = None
    mac: str | None = None
    guest_ip: IPv4Address | None = None
    leased: bool = False  # guest_ip comes from a lease (pinned when a forward is added)


@dataclass(frozen=True)
class ForwardRow:
    network: str
    proto: str
    address: str | None
    host_port: int
    guest_ip: str
    guest_port: int


# ---------------------------------------------------------------------------------------------
# resolving a target


def resolve(
    ctx: Context, target: str, *, mac: str | None = None, guest_ip: IPv4Address | None = None
) -> Target:
    """A network named `target`, else the domain `target` and its NIC's network and address."""
    if find(ctx, target) is not None:
        if mac is not None:
            raise InvalidConfig("--mac is for a domain target, not a network", value=mac)
        return Target(lookup(ctx, target).name, guest_ip=guest_ip)
    network, dom_name, nic_mac = _domain_nic(ctx, target, mac)
    if guest_ip is not None:
        return Target(network, dom_name, nic_mac, guest_ip)
    net = lookup(ctx, network).current
    static = _static_ip(net, nic_mac)
    if static is not None:
        return Target(network, dom_name, nic_mac, static)
    from vmkit.engine.networks import leased_ip

    leased = leased_ip(ctx, network, nic_mac)
    return Target(network, dom_name, nic_mac, leased, leased=leased is not None)


def _domain_nic(ctx: Context, name: str, mac: str | None) -> tuple[str, str, str]:
    """(network, domain name, MAC) of the domain's NIC on a network."""
    from vmkit.engine.domains import lookup as lookup_domain
    from vmkit.model.devices import InterfaceType
    from vmkit.xml.domain import parse_domain

    try:
        entry = lookup_domain(ctx, name)
    except NotFound:
        raise NotFound(
            "network", name, f"no network or domain named '{name}' (port-forward needs one)"
        ) from None
    rt = entry.runtime
    dom = parse_domain(rt.live_xml if rt is not None and rt.live_xml else entry.definition.xml)
    nics = [
        n
        for n in dom.devices.interfaces
        if n.type == InterfaceType.NETWORK and n.source_network and n.mac_address
    ]
    if mac is not None:
        nics = [n for n in nics if (n.mac_address or "").lower() == mac.lower()]
    if not nics:
        which = f" with MAC {mac}" if mac else ""
        raise NotFound(
            "interface", name, f"domain '{entry.name}' has no interface{which} on a network"
        )
    nat = [n for n in nics if _is_nat(ctx, n.source_network or "")]
    nic = (nat or nics)[0]
    return nic.source_network or "", entry.name, (nic.mac_address or "").lower()


def _is_nat(ctx: Context, network: str) -> bool:
    found = find(ctx, network)
    return found is not None and found.current.mode is ForwardMode.NAT


def _static_ip(net: Network, mac: str) -> IPv4Address | None:
    for ip in net.ips:
        for host in ip.dhcp.hosts if ip.dhcp else ():
            if host.mac == mac and isinstance(host.ip, IPv4Address):
                return host.ip
    return None


def _scope(ctx: Context, network: str) -> Scope:
    entry = lookup(ctx, network)
    return Scope(live=entry.active, config=entry.definition.persistent)


# ---------------------------------------------------------------------------------------------
# add, remove, list


def add(
    ctx: Context,
    target: str,
    *,
    host_port: int,
    guest_port: int | None = None,
    proto: Proto = Proto.TCP,
    address: IPv4Address | None = None,
    guest_ip: IPv4Address | None = None,
    mac: str | None = None,
) -> tuple[Target, PortForward]:
    """Forward `address`:`host_port` (all addresses when None) to the guest; Conflict if that
    port is forwarded already, on this network or another."""
    t = resolve(ctx, target, mac=mac, guest_ip=guest_ip)
    if t.guest_ip is None:
        raise (
            _no_address(t)
            if t.domain
            else InvalidConfig(f"give --guest-ip: the target '{target}' is a network", value=target)
        )
    pf = PortForward(proto, host_port, t.guest_ip, guest_port or host_port, address)
    _check_other_networks(ctx, t.network, pf)
    pin = t.leased and t.mac is not None

    def edit(net: Network) -> Network:
        if pin and t.mac is not None and t.guest_ip is not None and _static_ip(net, t.mac) is None:
            net = add_dhcp_host(net, DhcpHost(ip=t.guest_ip, mac=t.mac))
        return add_port_forward(net, pf)

    apply_change(ctx, t.network, edit, live=False, config=False, scope=_scope(ctx, t.network))
    return t, pf


def _no_address(t: Target) -> NotFound:
    return NotFound(
        "address",
        t.domain or "",
        f"cannot tell the address of domain '{t.domain}' on network '{t.network}': MAC {t.mac} "
        "has no static DHCP host and no current lease; give --guest-ip, or pin one with "
        f"\"vmkit net-update {t.network} add ip-dhcp-host \\\"<host mac='{t.mac}' "
        "ip='ADDRESS'/>\\\" --live --config\"",
    )


def _check_other_networks(ctx: Context, network: str, pf: PortForward) -> None:
    for entry in all_networks(ctx):
        if entry.name == network:
            continue
        for net in (entry.net, entry.live):
            for other in net.port_forwards if net else ():
                same = other.proto == pf.proto and other.host_port == pf.host_port
                if same and (
                    other.address is None or pf.address is None or other.address == pf.address
                ):
                    raise Conflict(
                        "port forward",
                        pf.describe(),
                        f"port {pf.describe()} is already forwarded by network '{entry.name}' "
                        f"(to {other.guest_ip}:{other.guest_port})",
                    )


def remove(
    ctx: Context,
    target: str,
    *,
    host_port: int,
    proto: Proto = Proto.TCP,
    address: IPv4Address | None = None,
    mac: str | None = None,
) -> tuple[Target, PortForward]:
    """Remove the forward of `proto`/`address`:`host_port`; for a domain target, only one that
    points at that domain."""
    t = resolve(ctx, target, mac=mac)
    net = lookup(ctx, t.network).current
    found = next(
        (
            pf
            for pf in net.port_forwards
            if pf.proto == proto and pf.host_port == host_port and pf.address == address
        ),
        None,
    )
    if found is None:
        shown = PortForward(proto, host_port, IPv4Address(0), 1, address).describe()
        raise NotFound("port forward", shown, f"no port forward {shown} on network '{t.network}'")
    if t.domain and t.guest_ip is not None and found.guest_ip != t.guest_ip:
        raise Conflict(
            "port forward",
            found.describe(),
            f"port {found.describe()} of network '{t.network}' forwards to {found.guest_ip}, "
            f"not to domain '{t.domain}' ({t.guest_ip})",
        )

    def edit(n: Network) -> Network:
        return remove_port_forward(n, proto, host_port, address)

    apply_change(ctx, t.network, edit, live=False, config=False, scope=_scope(ctx, t.network))
    return t, found


def list_forwards(ctx: Context, target: str | None = None) -> list[ForwardRow]:
    """Forwards of every network, of one network, or pointing at one domain."""
    if target is None:
        entries = all_networks(ctx)
        t = None
    else:
        t = resolve(ctx, target)
        entries = [lookup(ctx, t.network)]
    rows = []
    for entry in entries:
        for pf in entry.current.port_forwards:
            if t is not None and t.domain and pf.guest_ip != t.guest_ip:
                continue
            rows.append(
                ForwardRow(
                    entry.name,
                    str(pf.proto),
                    None if pf.address is None else str(pf.address),
                    pf.host_port,
                    str(pf.guest_ip),
                    pf.guest_port,
                )
            )
    return sorted(rows, key=lambda r: (r.network, r.proto, r.host_port))
