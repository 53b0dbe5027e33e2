"""net-update: add, delete or modify static DHCP hosts and DNS host records of a network, in its
persistent definition, its running state, or both; and `apply_change`, the shared way of
changing a network's definitions (port forwards use it too).

Flags as libvirt: with neither --live nor --config, --current is meant: the running state of an
active network, the persistent definition of an inactive one. --live needs an active network,
--config a persistent one. A live change is applied with net.realise.refresh_network (the nft
table replaced atomically, dnsmasq restarted on its new configuration; leases survive); if that
fails the previous live definition is put back.

The XML argument is the `<host>` element itself or a file holding it. A `<host>` to add is read
by the strict network parser inside a minimal `<network>`, so it is checked as a host of the
network's own subnet would be (address inside the subnet, MAC well formed).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from lxml import etree

from vmkit.engine.context import Context
from vmkit.engine.net_lifecycle import settle
from vmkit.engine.net_records import ACTIVE, NetworkEntry, encode_payload, lookup, net_host
from vmkit.errors import InvalidConfig, WrongState
from vmkit.model.network import (
    DhcpHost,
    DnsHost,
    IPAddress,
    Network,
    add_dhcp_host,
    add_dns_host,
    check_mac,
    delete_dhcp_host,
    delete_dns_host,
    parse_ip,
    validate_network,
)
from vmkit.net.realise import refresh_network
from vmkit.state.records import NETWORK
from vmkit.xml.network import parse_network, render_network

COMMANDS = ("add", "add-first", "add-last", "delete", "modify")
SECTIONS = ("ip-dhcp-host", "dns-host")
Edit = Callable[[Network], Network]


@dataclass(frozen=True)
class Scope:
    """Which definitions a change goes to."""

    live: bool
    config: bool

    def describe(self) -> str:
        parts = (["persistent config"] if self.config else []) + (
            ["live state"] if self.live else []
        )
        return " and ".join(parts)


def scope_of(entry: NetworkEntry, *, live: bool, config: bool) -> Scope:
    """libvirt's rules: neither flag means --current; --live needs it active, --config needs it
    persistent (a transient network's definition is its running one)."""
    if not live and not config:
        live, config = entry.active, not entry.active
    if live and not entry.active:
        raise WrongState(
            f"Requested operation is not valid: network '{entry.name}' is not running",
            state="inactive",
            required="active",
        )
    if config and not entry.definition.persistent:
        raise WrongState(
            "Requested operation is not valid: cannot change persistent config of a transient "
            f"network '{entry.name}'",
            state="transient",
            required="persistent",
        )
    return Scope(live, config)


def apply_change(
    ctx: Context, key: str, edit: Edit, *, live: bool, config: bool, scope: Scope | None = None
) -> tuple[NetworkEntry, Scope]:
    """Apply `edit` to the chosen definitions of network `key`, under its lock; every edit is
    computed (and validated) before anything changes."""
    name = lookup(ctx, key).name
    with ctx.lock(NETWORK, name):
        entry = settle(ctx, lookup(ctx, name))
        where = scope or scope_of(entry, live=live, config=config)
        new_conf = _edited(edit, entry.net) if where.config else None
        new_live = _edited(edit, entry.live or entry.net) if where.live else None
        if new_live is not None:
            _apply_live(ctx, entry, new_live)
        store = ctx.store
        with store.transaction():
            if new_conf is not None:
                store.define(NETWORK, entry.uuid, name, render_network(new_conf))
            elif new_live is not None and not entry.definition.persistent:
                store.define(NETWORK, entry.uuid, name, render_network(new_live), persistent=False)
            store.log_event(NETWORK, entry.uuid, name, "updated", where.describe())
        return lookup(ctx, name), where


def _edited(edit: Edit, net: Network) -> Network:
    new = edit(net)
    validate_network(new)
    return new


def _apply_live(ctx: Context, entry: NetworkEntry, new_live: Network) -> None:
    rt = entry.runtime
    assert rt is not None
    host = net_host(ctx)
    try:
        fresh = refresh_network(rt, new_live, host=host)
    except BaseException as err:
        old = entry.live or entry.net
        try:
            fresh = refresh_network(rt, old, host=host)
            ctx.store.put_object_runtime(
                NETWORK, entry.uuid, encode_payload(fresh, render_network(old), ACTIVE)
            )
        except Exception as undo:
            err.add_note(f"putting back the previous state failed too: {undo}")
        raise
    ctx.store.put_object_runtime(
        NETWORK, entry.uuid, encode_payload(fresh, render_network(new_live), ACTIVE)
    )


# ---------------------------------------------------------------------------------------------
# net-update


def read_xml_argument(text: str) -> str:
    """virsh takes the XML itself or the name of a file holding it."""
    if text.lstrip().startswith("<"):
        return text
    try:
        return Path(text).read_text()
    except OSError as e:
        raise InvalidConfig(
            f"'{text}' is neither XML nor a readable file: {e.strerror or e}", value=text
        ) from e


def _host_element(xml: str, section: str) -> etree._Element:
    parser = etree.XMLParser(resolve_entities=False, no_network=True)
    try:
        el = etree.fromstring(xml.strip().encode(), parser)
    except etree.XMLSyntaxError as e:
        raise InvalidConfig(f"malformed XML for section {section}: {e.msg}") from e
    if el.tag != "host":
        raise InvalidConfig(
            f"section {section} takes a <host> element, not <{el.tag}>", value=str(el.tag)
        )
    return el


def _wrapped(net: Network, section: str, host: etree._Element, family: int) -> Network:
    """`host` inside a minimal copy of the network, read by the strict parser."""
    root = etree.Element("network")
    etree.SubElement(root, "name").text = net.name
    if section == "dns-host":
        etree.SubElement(root, "dns").append(host)
    else:
        ip = next((ip for ip in net.ips if ip.address.version == family), None)
        if ip is None:
            raise InvalidConfig(f"network '{net.name}' has no IPv{family} address for a dhcp host")
        ip_el = etree.SubElement(root, "ip", address=str(ip.address), prefix=str(ip.prefix_length))
        etree.SubElement(ip_el, "dhcp").append(host)
    try:
        return parse_network(etree.tostring(root))
    except InvalidConfig as e:
        raise InvalidConfig(f"invalid <host> for section {section}: {e}", value=e.value) from e


def _family(host: etree._Element) -> int:
    ip = host.get("ip")
    if ip is not None:
        return parse_ip(str(ip), "/host/@ip").version
    return 6 if host.get("id") is not None and host.get("mac") is None else 4


def parse_dhcp_host(net: Network, xml: str) -> DhcpHost:
    """A complete `<host mac= ip= name=/>` of the network's subnet (to add)."""
    el = _host_element(xml, "ip-dhcp-host")
    parsed = _wrapped(net, "ip-dhcp-host", el, _family(el))
    dhcp = parsed.ips[0].dhcp
    assert dhcp is not None
    return dhcp.hosts[0]


def match_dhcp_host(net: Network, xml: str) -> DhcpHost:
    """A `<host>` naming an entry to delete: by mac (or id, or name, or ip)."""
    el = _host_element(xml, "ip-dhcp-host")
    mac, ip_text = el.get("mac"), el.get("ip")
    if mac is not None:
        check_mac(str(mac), "/host/@mac")
    family = _family(el)
    own = next((ip.address for ip in net.ips if ip.address.version == family), None)
    ip: IPAddress | None = parse_ip(str(ip_text), "/host/@ip") if ip_text else own
    if ip is None:
        raise InvalidConfig(f"network '{net.name}' has no IPv{family} address")
    if not (mac or el.get("id") or el.get("name") or ip_text):
        raise InvalidConfig("a <host> to delete needs a mac, id, name or ip")
    return DhcpHost(
        ip=ip,
        mac=str(mac).lower() if mac else None,
        id=el.get("id"),
        name=el.get("name"),
    )


def parse_dns_host(net: Network, xml: str) -> DnsHost:
    el = _host_element(xml, "dns-host")
    dns = _wrapped(net, "dns-host", el, 4).dns
    assert dns is not None
    return dns.hosts[0]


def edit_for(net: Network, command: str, section: str, xml: str) -> Edit:
    """The pure edit net-update asks for (built against `net`, applied to each definition)."""
    if command not in COMMANDS:
        raise InvalidConfig(
            f"unknown net-update command '{command}' (use one of {', '.join(COMMANDS)})",
            value=command,
        )
    if section not in SECTIONS:
        raise InvalidConfig(
            f"net-update section '{section}' is not supported by vmkit (use "
            f"{' or '.join(SECTIONS)})",
            value=section,
        )
    if section == "dns-host":
        if command == "delete":
            el = _host_element(xml, section)
            ip = parse_ip(str(el.get("ip") or ""), "/host/@ip")
            return lambda n: delete_dns_host(n, ip)
        dns_host = parse_dns_host(net, xml)
        if command == "modify":
            return lambda n: add_dns_host(delete_dns_host(n, dns_host.ip), dns_host)
        return lambda n: add_dns_host(n, dns_host)
    if command == "delete":
        wanted = match_dhcp_host(net, xml)
        return lambda n: delete_dhcp_host(n, wanted)
    host = parse_dhcp_host(net, xml)
    if command == "modify":
        return lambda n: add_dhcp_host(delete_dhcp_host(n, host), host)
    return lambda n: add_dhcp_host(n, host)


def update(
    ctx: Context,
    key: str,
    command: str,
    section: str,
    xml: str,
    *,
    live: bool = False,
    config: bool = False,
) -> tuple[NetworkEntry, Scope]:
    """net-update NETWORK COMMAND SECTION XML [--live] [--config]."""
    entry = lookup(ctx, key)
    edit = edit_for(entry.current, command, section, read_xml_argument(xml))
    return apply_change(ctx, entry.name, edit, live=live, config=config)
