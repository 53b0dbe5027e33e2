"""Virtual networks as libvirt's network XML (formatnetwork) describes them, plus pure validation.

A `Network` is plain frozen data; fields use libvirt's names with the XPath in a trailing comment.
`validate_network` checks one definition on its own (subnets, DHCP ranges and hosts, names, ports)
and raises InvalidConfig naming the XPath and the value; `check_network_conflicts` compares it with
the other defined networks (bridge names, subnets) and raises Conflict. The `add_*`/`delete_*`
helpers are the pure half of `net-update` and `port-forward add|remove`.

Port forwards are a vmkit extension kept in `<metadata>` under the vmkit namespace (`NS_VMKIT`), so
that the XML still validates against libvirt's schema; so is `<vmkit:isolated/>`, which makes a
network without <forward> isolated even though it has an <ip> (DHCP/DNS from the host, nothing
else between guests and host). This module does no I/O.
"""

from __future__ import annotations

import random
import re
import uuid as uuid_mod
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, replace
from enum import StrEnum
from ipaddress import (
    IPv4Address,
    IPv4Interface,
    IPv4Network,
    IPv6Address,
    IPv6Interface,
    IPv6Network,
    ip_address,
)

from vmkit.errors import Conflict, InvalidConfig, NotFound

IPAddress = IPv4Address | IPv6Address
IPNetwork = IPv4Network | IPv6Network
IPInterface = IPv4Interface | IPv6Interface

NS_VMKIT = "https://vmkit.dev/xml/network/1"

IFNAME_MAX = 15
_IFNAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,15}$")
_NET_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_MAC_RE = re.compile(r"^[0-9a-fA-F][02468aAcCeE](:[0-9a-fA-F]{2}){5}$")
_DNS_LABEL_RE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")
_SRV_WORD_RE = re.compile(r"^[A-Za-z0-9_-]{1,63}$")
_DUID_RE = re.compile(r"^[0-9a-fA-F]{1,2}(:[0-9a-fA-F]{1,2}){5,}$")
_TXT_RE = re.compile(r"^[ !#-\[\]-~]*$")  # printable ASCII without '"' and '\'


class ForwardMode(StrEnum):
    """./forward/@mode; no <forward> at all means an isolated (or host-only) network."""

    NAT = "nat"
    ROUTE = "route"
    OPEN = "open"
    BRIDGE = "bridge"


class Proto(StrEnum):
    TCP = "tcp"
    UDP = "udp"


class LeaseUnit(StrEnum):
    SECONDS = "seconds"
    MINUTES = "minutes"
    HOURS = "hours"


@dataclass(frozen=True)
class PortRange:
    start: int  # ./forward/nat/port/@start
    end: int  # ./forward/nat/port/@end


@dataclass(frozen=True)
class AddressRange:
    start: IPv4Address  # ./forward/nat/address/@start
    end: IPv4Address  # ./forward/nat/address/@end


@dataclass(frozen=True)
class Forward:
    mode: ForwardMode = ForwardMode.NAT  # ./forward/@mode (libvirt's default is nat)
    dev: str | None = None  # ./forward/@dev
    interfaces: tuple[str, ...] = ()  # ./forward/interface/@dev
    nat_addresses: AddressRange | None = None  # ./forward/nat/address
    nat_ports: PortRange | None = None  # ./forward/nat/port
    nat_ipv6: bool | None = None  # ./forward/nat/@ipv6

    @property
    def uplink(self) -> str | None:
        """The one device traffic must leave through, if the definition names one."""
        return self.dev or (self.interfaces[0] if self.interfaces else None)


@dataclass(frozen=True)
class Bridge:
    name: str | None = None  # ./bridge/@name
    stp: bool | None = None  # ./bridge/@stp (libvirt's default: on)
    delay: int | None = None  # ./bridge/@delay (seconds)


@dataclass(frozen=True)
class Lease:
    expiry: int  # ./ip/dhcp/range/lease/@expiry (0: never expires)
    unit: LeaseUnit | None = None  # ./ip/dhcp/range/lease/@unit (default minutes)

    @property
    def seconds(self) -> int:
        factors = {LeaseUnit.SECONDS: 1, LeaseUnit.MINUTES: 60, LeaseUnit.HOURS: 3600}
        return self.expiry * factors[self.unit or LeaseUnit.MINUTES]


@dataclass(frozen=True)
class DhcpRange:
    start: IPAddress  # ./ip/dhcp/range/@start
    end: IPAddress  # ./ip/dhcp/range/@end
    lease: Lease | None = None  # ./ip/dhcp/range/lease


@dataclass(frozen=True)
class DhcpHost:
    ip: IPAddress  # ./ip/dhcp/host/@ip
    mac: str | None = None  # ./ip/dhcp/host/@mac (lower case)
    id: str | None = None  # ./ip/dhcp/host/@id (IPv6 DUID)
    name: str | None = None  # ./ip/dhcp/host/@name
    lease: Lease | None = None  # ./ip/dhcp/host/lease


@dataclass(frozen=True)
class Dhcp:
    ranges: tuple[DhcpRange, ...] = ()  # ./ip/dhcp/range
    hosts: tuple[DhcpHost, ...] = ()  # ./ip/dhcp/host


@dataclass(frozen=True)
class Ip:
    address: IPAddress  # ./ip/@address
    prefix: int | None = None  # ./ip/@prefix
    netmask: IPv4Address | None = None  # ./ip/@netmask
    family: str | None = None  # ./ip/@family ('ipv4' | 'ipv6')
    dhcp: Dhcp | None = None  # ./ip/dhcp

    @property
    def prefix_length(self) -> int:
        """The prefix as written, or from the netmask, or libvirt's default (classful / 64)."""
        if self.prefix is not None:
            return self.prefix
        if self.netmask is not None:
            return IPv4Network(f"0.0.0.0/{self.netmask}").prefixlen
        if self.address.version == 6:
            return 64
        first = int(self.address) >> 24
        return 8 if first < 128 else 16 if first < 192 else 24

    @property
    def interface(self) -> IPInterface:
        if isinstance(self.address, IPv4Address):
            return IPv4Interface((self.address, self.prefix_length))
        return IPv6Interface((self.address, self.prefix_length))

    @property
    def subnet(self) -> IPNetwork:
        return self.interface.network


@dataclass(frozen=True)
class DnsHost:
    ip: IPAddress  # ./dns/host/@ip
    hostnames: tuple[str, ...]  # ./dns/host/hostname


@dataclass(frozen=True)
class DnsForwarder:
    addr: IPAddress | None = None  # ./dns/forwarder/@addr
    domain: str | None = None  # ./dns/forwarder/@domain


@dataclass(frozen=True)
class DnsTxt:
    name: str  # ./dns/txt/@name
    value: str  # ./dns/txt/@value


@dataclass(frozen=True)
class DnsSrv:
    service: str  # ./dns/srv/@service
    protocol: str  # ./dns/srv/@protocol
    domain: str | None = None  # ./dns/srv/@domain
    target: str | None = None  # ./dns/srv/@target
    port: int | None = None  # ./dns/srv/@port
    priority: int | None = None  # ./dns/srv/@priority
    weight: int | None = None  # ./dns/srv/@weight


@dataclass(frozen=True)
class Dns:
    enable: bool | None = None  # ./dns/@enable
    forward_plain_names: bool | None = None  # ./dns/@forwardPlainNames
    forwarders: tuple[DnsForwarder, ...] = ()  # ./dns/forwarder
    txts: tuple[DnsTxt, ...] = ()  # ./dns/txt
    srvs: tuple[DnsSrv, ...] = ()  # ./dns/srv
    hosts: tuple[DnsHost, ...] = ()  # ./dns/host


@dataclass(frozen=True)
class DnsDomain:
    name: str  # ./domain/@name
    local_only: bool | None = None  # ./domain/@localOnly


@dataclass(frozen=True)
class PortForward:
    """A DNAT from the host into a NAT'd guest (vmkit extension, ./metadata/vmkit:port-forward)."""

    proto: Proto  # ./metadata/vmkit:port-forward/@proto
    host_port: int  # ./metadata/vmkit:port-forward/@host-port
    guest_ip: IPv4Address  # ./metadata/vmkit:port-forward/@guest-ip
    guest_port: int  # ./metadata/vmkit:port-forward/@guest-port
    address: IPv4Address | None = None  # ./metadata/vmkit:port-forward/@address (host side)

    def describe(self) -> str:
        where = f"{self.address}:" if self.address else ""
        return f"{self.proto}/{where}{self.host_port}"


@dataclass(frozen=True)
class Network:
    name: str  # ./name
    uuid: uuid_mod.UUID | None = None  # ./uuid
    forward: Forward | None = None  # ./forward
    bridge: Bridge | None = None  # ./bridge
    mac: str | None = None  # ./mac/@address (lower case)
    mtu: int | None = None  # ./mtu/@size
    domain: DnsDomain | None = None  # ./domain
    dns: Dns | None = None  # ./dns
    ips: tuple[Ip, ...] = ()  # ./ip
    port_forwards: tuple[PortForward, ...] = ()  # ./metadata/vmkit:port-forward
    isolated: bool = False  # ./metadata/vmkit:isolated (no forward: guests see only each other)
    metadata: tuple[str, ...] = ()  # ./metadata/* of other namespaces, serialized verbatim

    @property
    def mode(self) -> ForwardMode | None:
        """The forward mode, None for an isolated / host-only network."""
        return self.forward.mode if self.forward else None

    @property
    def bridge_name(self) -> str | None:
        return self.bridge.name if self.bridge else None

    @property
    def ipv4(self) -> Ip | None:
        return next((ip for ip in self.ips if ip.address.version == 4), None)

    @property
    def dns_enabled(self) -> bool:
        return not (self.dns and self.dns.enable is False)


# ---------------------------------------------------------------------------------------------
# single values


def check_ifname(name: str, xpath: str | None = None, what: str = "interface name") -> None:
    """A Linux interface name vmkit accepts: 1-15 of [A-Za-z0-9_.-], not '.' or '..'."""
    if len(name) > IFNAME_MAX:
        raise InvalidConfig(
            f"{what} '{name}' is longer than {IFNAME_MAX} characters", xpath=xpath, value=name
        )
    if not _IFNAME_RE.match(name) or name in (".", ".."):
        raise InvalidConfig(
            f"{what} '{name}' may only contain letters, digits, '_', '.' and '-'",
            xpath=xpath,
            value=name,
        )


def check_mac(mac: str, xpath: str | None = None) -> None:
    if not _MAC_RE.match(mac):
        raise InvalidConfig(
            f"invalid MAC address '{mac}': expected a unicast address like 52:54:00:12:34:56",
            xpath=xpath,
            value=mac,
        )


def check_network_name(name: str, xpath: str | None = "/network/name") -> None:
    if not _NET_NAME_RE.match(name):
        raise InvalidConfig(
            f"invalid network name '{name}': use 1-64 of [A-Za-z0-9_.-], starting with a letter "
            "or digit",
            xpath=xpath,
            value=name,
        )


def check_dns_name(name: str, xpath: str | None, what: str = "DNS name") -> None:
    labels = name.rstrip(".").split(".")
    if len(name) > 253 or not all(_DNS_LABEL_RE.match(label) for label in labels):
        raise InvalidConfig(f"invalid {what} '{name}'", xpath=xpath, value=name)


def _check_port(port: int, xpath: str, what: str = "port") -> None:
    if not 1 <= port <= 65535:
        raise InvalidConfig(f"{what} {port} is out of range 1-65535", xpath=xpath, value=port)


def random_mac(rng: random.Random | None = None) -> str:
    """A MAC in QEMU's locally administered 52:54:00:xx:xx:xx space."""
    r = rng or random.SystemRandom()
    return "52:54:00:" + ":".join(f"{r.randrange(256):02x}" for _ in range(3))


# ---------------------------------------------------------------------------------------------
# one network


def validate_network(net: Network) -> None:
    """Check a definition on its own; raise InvalidConfig naming the XPath and value."""
    check_network_name(net.name)
    _check_forward(net)
    _check_isolated(net)
    _check_bridge(net)
    if net.mac is not None:
        check_mac(net.mac, "/network/mac/@address")
    if net.mtu is not None and not 68 <= net.mtu <= 65535:
        raise InvalidConfig(
            f"mtu {net.mtu} is out of range 68-65535", xpath="/network/mtu/@size", value=net.mtu
        )
    if net.domain is not None:
        check_dns_name(net.domain.name, "/network/domain/@name", "domain name")
    _check_ips(net)
    if net.dns is not None:
        _check_dns(net.dns)
    _check_port_forwards(net)


def _check_forward(net: Network) -> None:
    fwd = net.forward
    if fwd is None:
        return
    for i, dev in enumerate(fwd.interfaces, 1):
        check_ifname(dev, f"/network/forward/interface[{i}]/@dev", "forward interface")
    if fwd.dev is not None:
        check_ifname(fwd.dev, "/network/forward/@dev", "forward dev")
    if fwd.mode is ForwardMode.BRIDGE:
        if fwd.dev or fwd.interfaces:
            raise InvalidConfig(
                "forward mode 'bridge' with a device (macvtap) is not supported by vmkit; "
                "name an existing host bridge with <bridge name='...'/>",
                xpath="/network/forward/@dev",
                value=fwd.uplink,
            )
    elif fwd.mode is ForwardMode.OPEN and fwd.uplink:
        raise InvalidConfig(
            "forward mode 'open' does not take a forward dev",
            xpath="/network/forward/@dev",
            value=fwd.uplink,
        )
    if len(fwd.interfaces) > 1 or (fwd.dev and fwd.interfaces and fwd.interfaces[0] != fwd.dev):
        raise InvalidConfig(
            f"forward mode '{fwd.mode}' takes one uplink; <interface dev> must match <forward dev>",
            xpath="/network/forward/interface",
            value=list(fwd.interfaces),
        )
    _check_nat(fwd)


def _check_isolated(net: Network) -> None:
    if net.isolated and net.forward is not None:
        raise InvalidConfig(
            f"<vmkit:isolated> is only allowed without <forward> (network '{net.name}' has "
            f"forward mode '{net.mode}')",
            xpath="/network/metadata/vmkit:isolated",
        )


def _check_nat(fwd: Forward) -> None:
    has_nat = fwd.nat_ports or fwd.nat_addresses or fwd.nat_ipv6 is not None
    if has_nat and fwd.mode is not ForwardMode.NAT:
        raise InvalidConfig(
            f"<nat> is only allowed with forward mode 'nat', not '{fwd.mode}'",
            xpath="/network/forward/nat",
        )
    ports = fwd.nat_ports
    if ports is not None:
        _check_port(ports.start, "/network/forward/nat/port/@start", "nat port")
        _check_port(ports.end, "/network/forward/nat/port/@end", "nat port")
        if ports.start > ports.end:
            raise InvalidConfig(
                f"nat port range {ports.start}-{ports.end} is reversed",
                xpath="/network/forward/nat/port",
                value=f"{ports.start}-{ports.end}",
            )
    addrs = fwd.nat_addresses
    if addrs is not None and addrs.start > addrs.end:
        raise InvalidConfig(
            f"nat address range {addrs.start}-{addrs.end} is reversed",
            xpath="/network/forward/nat/address",
            value=f"{addrs.start}-{addrs.end}",
        )


def _check_bridge(net: Network) -> None:
    br = net.bridge
    if br is not None and br.name is not None:
        check_ifname(br.name, "/network/bridge/@name", "bridge name")
    if br is not None and br.delay is not None and br.delay < 0:
        raise InvalidConfig(
            f"bridge delay {br.delay} is negative", xpath="/network/bridge/@delay", value=br.delay
        )
    if net.mode is not ForwardMode.BRIDGE:
        return
    if br is None or br.name is None:
        raise InvalidConfig(
            "forward mode 'bridge' needs <bridge name='...'/> naming an existing host bridge",
            xpath="/network/bridge/@name",
        )
    extra = [
        (net.ips, "ip"),
        (net.dns, "dns"),
        (net.domain, "domain"),
        (net.mac, "mac"),
        (net.port_forwards, "metadata/vmkit:port-forward"),
    ]
    for value, tag in extra:
        if value:
            raise InvalidConfig(
                f"<{tag}> is not allowed with forward mode 'bridge' (the host bridge is not "
                "managed by vmkit)",
                xpath=f"/network/{tag}",
            )


def _check_ips(net: Network) -> None:
    for i, ip in enumerate(net.ips, 1):
        _check_ip(ip, f"/network/ip[{i}]")
    for family in (4, 6):
        seen: list[tuple[int, IPNetwork]] = []
        with_dhcp = 0
        for i, ip in enumerate(net.ips, 1):
            if ip.address.version != family:
                continue
            for j, other in seen:
                if ip.subnet.overlaps(other):
                    raise InvalidConfig(
                        f"subnet {ip.subnet} overlaps subnet {other} of <ip> number {j}",
                        xpath=f"/network/ip[{i}]",
                        value=str(ip.subnet),
                    )
            seen.append((i, ip.subnet))
            if ip.dhcp is not None:
                with_dhcp += 1
                if with_dhcp > 1:
                    raise InvalidConfig(
                        f"only one IPv{family} <ip> may have <dhcp>",
                        xpath=f"/network/ip[{i}]/dhcp",
                    )


def _check_ip(ip: Ip, xpath: str) -> None:
    v = ip.address.version
    if ip.family is not None and ip.family != f"ipv{v}":
        raise InvalidConfig(
            f"address {ip.address} does not match family '{ip.family}'",
            xpath=f"{xpath}/@family",
            value=ip.family,
        )
    if ip.prefix is not None and ip.netmask is not None:
        raise InvalidConfig(
            "give either netmask or prefix, not both", xpath=f"{xpath}/@prefix", value=ip.prefix
        )
    if ip.prefix is not None and not 0 <= ip.prefix <= (32 if v == 4 else 128):
        raise InvalidConfig(
            f"prefix {ip.prefix} is out of range for IPv{v}",
            xpath=f"{xpath}/@prefix",
            value=ip.prefix,
        )
    if ip.netmask is not None:
        _check_netmask(ip, xpath)
    subnet = ip.subnet
    if subnet.num_addresses > 2 and ip.address in (subnet.network_address, _broadcast(subnet)):
        raise InvalidConfig(
            f"address {ip.address} is not a host address of {subnet}",
            xpath=f"{xpath}/@address",
            value=str(ip.address),
        )
    if ip.dhcp is not None:
        _check_dhcp(ip, ip.dhcp, f"{xpath}/dhcp")


def _check_netmask(ip: Ip, xpath: str) -> None:
    if ip.address.version != 4:
        raise InvalidConfig(
            "netmask is only for IPv4; use prefix", xpath=f"{xpath}/@netmask", value=ip.netmask
        )
    bits = int(ip.netmask or 0)
    inverted = (~bits) & 0xFFFFFFFF
    if inverted & (inverted + 1):
        raise InvalidConfig(
            f"netmask {ip.netmask} is not contiguous", xpath=f"{xpath}/@netmask", value=ip.netmask
        )


def _broadcast(subnet: IPNetwork) -> IPAddress | None:
    return subnet.broadcast_address if subnet.version == 4 else None


def _check_host_address(ip: Ip, addr: IPAddress, xpath: str, what: str) -> None:
    """`addr` must be a usable address of the subnet, other than the network's own."""
    subnet = ip.subnet
    if addr.version != subnet.version or addr not in subnet:
        raise InvalidConfig(
            f"{what} {addr} is outside subnet {subnet}", xpath=xpath, value=str(addr)
        )
    if addr in (subnet.network_address, _broadcast(subnet)):
        raise InvalidConfig(
            f"{what} {addr} is the network or broadcast address of {subnet}",
            xpath=xpath,
            value=str(addr),
        )
    if addr == ip.address:
        raise InvalidConfig(
            f"{what} {addr} is the network's own address", xpath=xpath, value=str(addr)
        )


def _check_dhcp(ip: Ip, dhcp: Dhcp, xpath: str) -> None:
    spans: list[tuple[int, int, int]] = []
    for i, rng in enumerate(dhcp.ranges, 1):
        where = f"{xpath}/range[{i}]"
        _check_host_address(ip, rng.start, f"{where}/@start", "dhcp range start")
        _check_host_address(ip, rng.end, f"{where}/@end", "dhcp range end")
        if int(rng.start) > int(rng.end):
            raise InvalidConfig(
                f"dhcp range {rng.start}-{rng.end} is reversed (start after end)",
                xpath=where,
                value=f"{rng.start}-{rng.end}",
            )
        if int(rng.start) <= int(ip.address) <= int(rng.end):
            raise InvalidConfig(
                f"dhcp range {rng.start}-{rng.end} contains the network's own address {ip.address}",
                xpath=where,
                value=f"{rng.start}-{rng.end}",
            )
        for j, lo, hi in spans:
            if int(rng.start) <= hi and lo <= int(rng.end):
                raise InvalidConfig(
                    f"dhcp range {rng.start}-{rng.end} overlaps range number {j}",
                    xpath=where,
                    value=f"{rng.start}-{rng.end}",
                )
        spans.append((i, int(rng.start), int(rng.end)))
    _check_dhcp_hosts(ip, dhcp.hosts, xpath)


def _check_dhcp_hosts(ip: Ip, hosts: Iterable[DhcpHost], xpath: str) -> None:
    seen: dict[str, int] = {}
    for i, host in enumerate(hosts, 1):
        where = f"{xpath}/host[{i}]"
        _check_host_address(ip, host.ip, f"{where}/@ip", "dhcp host address")
        if host.mac is not None:
            check_mac(host.mac, f"{where}/@mac")
        if host.id is not None and not _DUID_RE.match(host.id):
            raise InvalidConfig(f"invalid DUID '{host.id}'", xpath=f"{where}/@id", value=host.id)
        if host.name is not None:
            check_dns_name(host.name, f"{where}/@name", "host name")
        key_of = {"MAC": host.mac and host.mac.lower(), "IP": str(host.ip), "name": host.name}
        if ip.address.version == 4 and not (host.mac or host.name):
            raise InvalidConfig("an IPv4 dhcp host needs a mac or a name", xpath=where)
        if ip.address.version == 6 and not (host.id or host.name):
            raise InvalidConfig("an IPv6 dhcp host needs an id or a name", xpath=where)
        for kind, key in key_of.items():
            if key is None:
                continue
            j = seen.setdefault(f"{kind} {key}", i)
            if j != i:
                raise InvalidConfig(
                    f"duplicate dhcp host {kind} {key} (also in host number {j})",
                    xpath=where,
                    value=key,
                )


def _check_dns(dns: Dns) -> None:
    for i, host in enumerate(dns.hosts, 1):
        if not host.hostnames:
            raise InvalidConfig("a dns host needs a <hostname>", xpath=f"/network/dns/host[{i}]")
        for j, name in enumerate(host.hostnames, 1):
            check_dns_name(name, f"/network/dns/host[{i}]/hostname[{j}]", "dns host name")
    for i, fwd in enumerate(dns.forwarders, 1):
        if fwd.domain is not None:
            check_dns_name(fwd.domain, f"/network/dns/forwarder[{i}]/@domain", "forwarder domain")
        if fwd.addr is None and fwd.domain is None:
            raise InvalidConfig(
                "a dns forwarder needs addr or domain", xpath=f"/network/dns/forwarder[{i}]"
            )
    for i, txt in enumerate(dns.txts, 1):
        check_dns_name(txt.name, f"/network/dns/txt[{i}]/@name", "txt record name")
        if not _TXT_RE.match(txt.value):
            raise InvalidConfig(
                "txt record value may only hold printable ASCII without '\"' and '\\'",
                xpath=f"/network/dns/txt[{i}]/@value",
                value=txt.value,
            )
    for i, srv in enumerate(dns.srvs, 1):
        _check_srv(srv, f"/network/dns/srv[{i}]")


def _check_srv(srv: DnsSrv, xpath: str) -> None:
    for what, word in (("service", srv.service), ("protocol", srv.protocol)):
        if not _SRV_WORD_RE.match(word):
            raise InvalidConfig(f"invalid srv {what} '{word}'", xpath=f"{xpath}/@{what}")
    for what, name in (("domain", srv.domain), ("target", srv.target)):
        if name is not None:
            check_dns_name(name, f"{xpath}/@{what}", f"srv {what}")
    for what, num in (("port", srv.port), ("priority", srv.priority), ("weight", srv.weight)):
        if num is not None and not 0 <= num <= 65535:
            raise InvalidConfig(
                f"srv {what} {num} is out of range 0-65535", xpath=f"{xpath}/@{what}"
            )


def _check_port_forwards(net: Network) -> None:
    seen: dict[tuple[str, int], int] = {}
    for i, pf in enumerate(net.port_forwards, 1):
        where = f"/network/metadata/vmkit:port-forward[{i}]"
        if net.mode is not ForwardMode.NAT:
            raise InvalidConfig(
                f"port forwards need forward mode 'nat' (network '{net.name}' has "
                f"{net.mode or 'no forward'})",
                xpath=where,
            )
        _check_port(pf.host_port, f"{where}/@host-port", "host port")
        _check_port(pf.guest_port, f"{where}/@guest-port", "guest port")
        ip = next((ip for ip in net.ips if pf.guest_ip in ip.subnet), None)
        if ip is None:
            raise InvalidConfig(
                f"guest address {pf.guest_ip} is in no subnet of network '{net.name}'",
                xpath=f"{where}/@guest-ip",
                value=str(pf.guest_ip),
            )
        _check_host_address(ip, pf.guest_ip, f"{where}/@guest-ip", "guest address")
        j = seen.setdefault((pf.proto, pf.host_port), i)
        if j != i and _same_listen(net.port_forwards[j - 1], pf):
            raise InvalidConfig(
                f"port {pf.describe()} is already forwarded (port forward number {j})",
                xpath=where,
                value=pf.describe(),
            )


def _same_listen(a: PortForward, b: PortForward) -> bool:
    return a.address is None or b.address is None or a.address == b.address


# ---------------------------------------------------------------------------------------------
# between networks, defaults


def check_network_conflicts(net: Network, others: Iterable[Network]) -> None:
    """Refuse a bridge name or a subnet another (differently named) network already uses."""
    for other in others:
        if other.name == net.name:
            continue
        if net.bridge_name and net.bridge_name == other.bridge_name:
            raise Conflict(
                "network",
                net.name,
                f"bridge name '{net.bridge_name}' is already used by network '{other.name}'",
            )
        for ip in net.ips:
            for theirs in other.ips:
                if ip.subnet.version == theirs.subnet.version and ip.subnet.overlaps(theirs.subnet):
                    raise Conflict(
                        "network",
                        net.name,
                        f"subnet {ip.subnet} of network '{net.name}' overlaps subnet "
                        f"{theirs.subnet} of network '{other.name}'",
                    )


def pick_bridge_name(taken: Collection[str], prefix: str = "vmkbr") -> str:
    """The first `prefix<N>` not in `taken`."""
    n = 0
    while f"{prefix}{n}" in taken:
        n += 1
    name = f"{prefix}{n}"
    check_ifname(name)
    return name


def with_defaults(
    net: Network,
    taken_bridges: Collection[str],
    *,
    rng: random.Random | None = None,
    new_uuid: Callable[[], uuid_mod.UUID] = uuid_mod.uuid4,
) -> Network:
    """What libvirt fills in at define time: uuid, bridge name, stp/delay, bridge MAC."""
    if net.uuid is None:
        net = replace(net, uuid=new_uuid())
    if net.mode is ForwardMode.BRIDGE:
        return net
    br = net.bridge or Bridge()
    name = br.name or pick_bridge_name(taken_bridges)
    stp = True if br.stp is None else br.stp
    delay = 0 if br.delay is None else br.delay
    net = replace(net, bridge=Bridge(name=name, stp=stp, delay=delay))
    if net.mac is None:
        net = replace(net, mac=random_mac(rng))
    return net


# ---------------------------------------------------------------------------------------------
# net-update and port-forward: pure edits


def _dhcp_ip(net: Network, family: int) -> tuple[int, Ip]:
    for i, ip in enumerate(net.ips):
        if ip.address.version == family and ip.dhcp is not None:
            return i, ip
    raise NotFound("dhcp", net.name, f"network '{net.name}' has no IPv{family} <dhcp> section")


def _with_ip(net: Network, index: int, ip: Ip) -> Network:
    ips = list(net.ips)
    ips[index] = ip
    return replace(net, ips=tuple(ips))


def add_dhcp_host(net: Network, host: DhcpHost) -> Network:
    """Add a static DHCP host; Conflict if its MAC, IP or name is already there."""
    index, ip = _dhcp_ip(net, host.ip.version)
    dhcp = ip.dhcp or Dhcp()
    for h in dhcp.hosts:
        clash = (
            (host.mac and h.mac and host.mac.lower() == h.mac.lower())
            or h.ip == host.ip
            or (host.name and h.name == host.name)
        )
        if clash:
            raise Conflict(
                "dhcp host",
                str(host.ip),
                f"there is an existing dhcp host entry in network '{net.name}' that matches "
                f"mac={h.mac or '-'} name={h.name or '-'} ip={h.ip}",
            )
    updated = _with_ip(net, index, replace(ip, dhcp=replace(dhcp, hosts=(*dhcp.hosts, host))))
    validate_network(updated)
    return updated


def delete_dhcp_host(net: Network, host: DhcpHost) -> Network:
    """Remove the static DHCP host matching `host`'s MAC (or id, or name, or IP)."""
    index, ip = _dhcp_ip(net, host.ip.version)
    dhcp = ip.dhcp or Dhcp()

    def matches(h: DhcpHost) -> bool:
        if host.mac:
            return h.mac is not None and h.mac.lower() == host.mac.lower()
        if host.id:
            return h.id == host.id
        if host.name:
            return h.name == host.name
        return h.ip == host.ip

    kept = tuple(h for h in dhcp.hosts if not matches(h))
    if len(kept) == len(dhcp.hosts):
        raise NotFound(
            "dhcp host",
            host.mac or host.name or str(host.ip),
            f"couldn't locate a matching dhcp host entry in network '{net.name}'",
        )
    return _with_ip(net, index, replace(ip, dhcp=replace(dhcp, hosts=kept)))


def add_dns_host(net: Network, host: DnsHost) -> Network:
    dns = net.dns or Dns()
    if any(h.ip == host.ip for h in dns.hosts):
        raise Conflict(
            "dns host",
            str(host.ip),
            f"there is already a dns host entry for {host.ip} in network '{net.name}'",
        )
    updated = replace(net, dns=replace(dns, hosts=(*dns.hosts, host)))
    validate_network(updated)
    return updated


def delete_dns_host(net: Network, ip: IPAddress) -> Network:
    dns = net.dns or Dns()
    kept = tuple(h for h in dns.hosts if h.ip != ip)
    if len(kept) == len(dns.hosts):
        raise NotFound(
            "dns host", str(ip), f"couldn't locate a dns host entry for {ip} in '{net.name}'"
        )
    remaining = replace(dns, hosts=kept)
    return replace(net, dns=None if remaining == Dns() else remaining)


def add_port_forward(net: Network, pf: PortForward) -> Network:
    """Add a port forward; Conflict if that host port (and address) is already forwarded."""
    for other in net.port_forwards:
        if other.proto == pf.proto and other.host_port == pf.host_port and _same_listen(other, pf):
            raise Conflict(
                "port forward",
                pf.describe(),
                f"port {pf.describe()} is already forwarded to {other.guest_ip}:"
                f"{other.guest_port} on network '{net.name}'",
            )
    updated = replace(net, port_forwards=(*net.port_forwards, pf))
    validate_network(updated)
    return updated


def remove_port_forward(
    net: Network, proto: Proto, host_port: int, address: IPv4Address | None = None
) -> Network:
    kept = tuple(
        pf
        for pf in net.port_forwards
        if not (pf.proto == proto and pf.host_port == host_port and pf.address == address)
    )
    if len(kept) == len(net.port_forwards):
        shown = PortForward(proto, host_port, IPv4Address(0), 1, address).describe()
        raise NotFound("port forward", shown, f"no port forward {shown} on network '{net.name}'")
    return replace(net, port_forwards=kept)


def parse_ip(text: str, xpath: str | None = None) -> IPAddress:
    """An IPv4/IPv6 address, or InvalidConfig naming `xpath`."""
    try:
        return ip_address(text.strip())
    except ValueError:
        raise InvalidConfig(f"invalid IP address '{text}'", xpath=xpath, value=text) from None
