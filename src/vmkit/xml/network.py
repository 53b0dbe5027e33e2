"""libvirt network XML (formatnetwork) <-> vmkit.model.network, strictly.

`parse_network` reads every element and attribute it knows and refuses anything else with an
InvalidConfig naming the element or attribute and its line (libvirt drops unknown XML silently;
vmkit never does, unless the caller passes strict=False). libvirt elements vmkit does not realise
(portgroup, bandwidth, route, ...) are refused as unsupported rather than ignored. Values are then
checked by `validate_network`; its errors get the line of the element their XPath names.

`render_network` writes libvirt's element order with a two-space indent; the output validates
against libvirt's network.rng (port forwards and `<vmkit:isolated/>` live in `<metadata>` under the
vmkit namespace, and other applications' metadata is kept verbatim). parse(render(net)) == net.

This module does no I/O besides parsing the text it is given.
"""

from __future__ import annotations

import re
import uuid as uuid_mod
from collections.abc import Callable, Iterator
from ipaddress import IPv4Address
from typing import TypeVar

from lxml import etree

from vmkit.errors import InvalidConfig
from vmkit.model.network import (
    NS_VMKIT,
    AddressRange,
    Bridge,
    Dhcp,
    DhcpHost,
    DhcpRange,
    Dns,
    DnsDomain,
    DnsForwarder,
    DnsHost,
    DnsSrv,
    DnsTxt,
    Forward,
    ForwardMode,
    Ip,
    IPAddress,
    Lease,
    LeaseUnit,
    Network,
    PortForward,
    PortRange,
    Proto,
    check_mac,
    parse_ip,
    validate_network,
)
from vmkit.xml.xmlutil import parse_root, prefixed_name, prefixed_tag, source_line

_T = TypeVar("_T")
_NSMAP = {"vmkit": NS_VMKIT}
_NS_DNSMASQ = "http://libvirt.org/schemas/network/dnsmasq/1.0"
_UUID_RE = re.compile(r"^([0-9a-fA-F]{32}|[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12})$")
_UINT_RE = re.compile(r"^[0-9]{1,10}$")

_UNSUPPORTED_MODES = ("passthrough", "private", "vepa", "hostdev")
_UNSUPPORTED_ATTRS = {
    "network": {"connections", "ipv6", "trustGuestRxFilters"},
    "bridge": {"zone", "macTableManager"},
    "forward": {"managed"},
    "ip": {"localPtr"},
}
# libvirt elements that are valid in formatnetwork but that vmkit does not realise.
_UNSUPPORTED = {
    "network": {"portgroup", "virtualport", "bandwidth", "vlan", "port", "route"},
    "forward": {"address", "pf", "driver"},
    "ip": {"tftp"},
    "dhcp": {"bootp"},
}


# ---------------------------------------------------------------------------------------------
# strict reading


class _El:
    """One element being read: hands out attributes and children, then refuses the rest."""

    def __init__(self, el: etree._Element, xpath: str, strict: bool) -> None:
        self.el = el
        self.xpath = xpath
        self.strict = strict
        self.line = source_line(el)
        self._attrs: set[str] = set()
        self._children: set[int] = set()
        self._text_used = False

    @property
    def tag(self) -> str:
        return prefixed_tag(self.el)

    def fail(self, message: str, attr: str | None = None, value: object = None) -> InvalidConfig:
        xpath = f"{self.xpath}/@{attr}" if attr else self.xpath
        return InvalidConfig(message, xpath=xpath, line=self.line, value=value)

    def get(self, name: str) -> str | None:
        self._attrs.add(name)
        value = self.el.get(name)
        return None if value is None else str(value)

    def need(self, name: str) -> str:
        value = self.get(name)
        if value is None:
            raise self.fail(f"missing attribute '{name}' on element <{self.tag}>")
        return value

    def convert(self, name: str, parse: Callable[[str], _T], expected: str) -> _T | None:
        value = self.get(name)
        if value is None:
            return None
        try:
            return parse(value)
        except ValueError:
            raise self.fail(
                f"invalid value '{value}' for attribute '{name}' of <{self.tag}>: expected "
                f"{expected}",
                attr=name,
                value=value,
            ) from None

    def _elements(self) -> Iterator[tuple[int, etree._Element]]:
        for i, child in enumerate(self.el):
            if isinstance(child.tag, str):  # skips comments and processing instructions
                yield i, child

    def children(self, tag: str) -> list[_El]:
        """All children named `tag`, each with an indexed XPath (`ip[1]`, `ip[2]`, ...)."""
        found = []
        for i, child in self._elements():
            if child.tag == tag:
                self._children.add(i)
                found.append(child)
        path = f"{self.xpath}/{_xpath_tag(tag)}"
        return [_El(c, f"{path}[{n}]", self.strict) for n, c in enumerate(found, 1)]

    def child(self, tag: str) -> _El | None:
        found = self.children(tag)
        if len(found) > 1:
            raise found[1].fail(f"element <{tag}> appears more than once in <{self.tag}>")
        if not found:
            return None
        return _El(found[0].el, f"{self.xpath}/{_xpath_tag(tag)}", self.strict)

    def text(self) -> str:
        self._text_used = True
        return (self.el.text or "").strip()

    def done(self) -> None:
        """Refuse attributes and child elements nobody asked for, and stray text."""
        if not self.strict:
            return
        for name in self.el.attrib:
            if name not in self._attrs:
                shown = prefixed_name(self.el, str(name))
                known = shown in _UNSUPPORTED_ATTRS.get(str(self.el.tag), set())
                what = "is not supported by vmkit" if known else "is unknown"
                raise self.fail(f"attribute '{shown}' on element <{self.tag}> {what}", shown)
        for i, child in self._elements():
            if i not in self._children:
                raise self._refuse(child)
        texts = [] if self._text_used else [self.el.text]
        stray = [t.strip() for t in [*texts, *(c.tail for c in self.el)] if t and t.strip()]
        if stray:
            raise self.fail(f"unexpected text '{stray[0]}' in <{self.tag}>")

    def _refuse(self, child: etree._Element) -> InvalidConfig:
        tag = prefixed_tag(child)
        line = child.sourceline if isinstance(child.sourceline, int) else None
        local = etree.QName(child).localname
        unsupported = (
            child.tag == f"{{{_NS_DNSMASQ}}}options"
            if self.el.tag == "network" and local == "options"
            else child.tag in _UNSUPPORTED.get(str(self.el.tag), set())
        )
        what = "is not supported by vmkit" if unsupported else "is unknown"
        return InvalidConfig(
            f"element <{tag}> in <{self.tag}> {what}", xpath=f"{self.xpath}/{tag}", line=line
        )


def _xpath_tag(tag: str) -> str:
    """A tag as the XPaths in errors spell it (the vmkit namespace as `vmkit:`)."""
    return tag.replace(f"{{{NS_VMKIT}}}", "vmkit:")


def _uint(text: str) -> int:
    if not _UINT_RE.match(text):
        raise ValueError(text)
    return int(text)


def _yes_no(text: str) -> bool:
    return {"yes": True, "no": False}[text] if text in ("yes", "no") else _bad(text)


def _on_off(text: str) -> bool:
    return {"on": True, "off": False}[text] if text in ("on", "off") else _bad(text)


def _bad(text: str) -> bool:
    raise ValueError(text)


def _ip(text: str) -> IPAddress:
    try:
        return parse_ip(text)
    except InvalidConfig:
        raise ValueError(text) from None


def _ipv4(text: str) -> IPv4Address:
    return IPv4Address(text)


def _mac(text: str) -> str:
    try:
        check_mac(text)
    except InvalidConfig:
        raise ValueError(text) from None
    return text.lower()


def _need_ip(el: _El, name: str) -> IPAddress:
    el.need(name)
    value = el.convert(name, _ip, "an IP address")
    assert value is not None
    return value


def _need_uint(el: _El, name: str) -> int:
    el.need(name)
    value = el.convert(name, _uint, "a non-negative integer")
    assert value is not None
    return value


# ---------------------------------------------------------------------------------------------
# parse


def parse_network(text: str | bytes, *, strict: bool = True) -> Network:
    """Parse and validate a `<network>`; InvalidConfig names the line on any problem."""
    root = _load(text)
    top = _El(root, "/network", strict)
    try:
        net = _read_network(top)
        validate_network(net)
    except InvalidConfig as err:
        raise _locate(err, root) from None
    return net


def _load(text: str | bytes) -> etree._Element:
    root = parse_root(text, drop_tag_line=True)
    if root.tag != "network":
        raise InvalidConfig(
            f"expected a <network> element, found <{prefixed_tag(root)}>",
            xpath="/",
            line=root.sourceline if isinstance(root.sourceline, int) else None,
        )
    return root


def _locate(err: InvalidConfig, root: etree._Element) -> InvalidConfig:
    """Give a validation error (which knows its XPath) the line of the element it names."""
    if err.line is not None or not err.xpath or not err.xpath.startswith("/network"):
        return err
    path = err.xpath.split("/@")[0]
    found: object = None
    while path and not found:  # an element that is missing: the line of its parent
        try:
            found = root.getroottree().xpath(path, namespaces=_NSMAP)
        except etree.XPathError:
            return err
        path = path.rsplit("/", 1)[0]
    if not isinstance(found, list) or not found or not isinstance(found[0], etree._Element):
        return err
    suffix = f" ({err.xpath})"
    message = err.message[: -len(suffix)] if err.message.endswith(suffix) else err.message
    line = found[0].sourceline
    return InvalidConfig(
        message, xpath=err.xpath, line=line if isinstance(line, int) else None, value=err.value
    )


def _read_network(top: _El) -> Network:
    name_el = top.child("name")
    if name_el is None or not name_el.text():
        raise top.fail("missing element <name> in <network>")
    name_el.done()
    uuid = None
    uuid_el = top.child("uuid")
    if uuid_el is not None:
        if not _UUID_RE.match(uuid_el.text()):
            raise uuid_el.fail(f"invalid uuid '{uuid_el.text()}'", value=uuid_el.text())
        uuid = uuid_mod.UUID(uuid_el.text())
        uuid_el.done()
    port_forwards, isolated, metadata = _read_metadata(top.child("metadata"))
    net = Network(
        name=name_el.text(),
        uuid=uuid,
        forward=_read_forward(top.child("forward")),
        bridge=_read_bridge(top.child("bridge")),
        mac=_read_mac(top.child("mac")),
        mtu=_read_mtu(top.child("mtu")),
        domain=_read_domain(top.child("domain")),
        dns=_read_dns(top.child("dns")),
        ips=tuple(_read_ip(el) for el in top.children("ip")),
        port_forwards=port_forwards,
        isolated=isolated,
        metadata=metadata,
    )
    top.done()
    return net


def _read_forward(el: _El | None) -> Forward | None:
    if el is None:
        return None
    if el.el.get("mode") in _UNSUPPORTED_MODES:
        raise el.fail(f"forward mode '{el.el.get('mode')}' is not supported by vmkit", attr="mode")
    mode = el.convert("mode", ForwardMode, "one of nat, route, open, bridge")
    dev = el.get("dev")
    interfaces = []
    for iface in el.children("interface"):
        interfaces.append(iface.need("dev"))
        iface.done()
    nat_ports, nat_addresses, nat_ipv6 = None, None, None
    nat = el.child("nat")
    if nat is not None:
        nat_ipv6 = nat.convert("ipv6", _yes_no, "yes or no")
        port = nat.child("port")
        if port is not None:
            nat_ports = PortRange(_need_uint(port, "start"), _need_uint(port, "end"))
            port.done()
        addr = nat.child("address")
        if addr is not None:
            addr.need("start")
            addr.need("end")
            start = addr.convert("start", _ipv4, "an IPv4 address")
            end = addr.convert("end", _ipv4, "an IPv4 address")
            assert start is not None and end is not None
            nat_addresses = AddressRange(start, end)
            addr.done()
        nat.done()
    el.done()
    return Forward(
        mode=mode or ForwardMode.NAT,
        dev=dev,
        interfaces=tuple(interfaces),
        nat_addresses=nat_addresses,
        nat_ports=nat_ports,
        nat_ipv6=nat_ipv6,
    )


def _read_bridge(el: _El | None) -> Bridge | None:
    if el is None:
        return None
    br = Bridge(
        name=el.get("name"),
        stp=el.convert("stp", _on_off, "on or off"),
        delay=el.convert("delay", _uint, "a non-negative integer"),
    )
    el.done()
    return br


def _read_mac(el: _El | None) -> str | None:
    if el is None:
        return None
    el.need("address")
    mac = el.convert("address", _mac, "a unicast MAC address like 52:54:00:12:34:56")
    el.done()
    return mac


def _read_mtu(el: _El | None) -> int | None:
    if el is None:
        return None
    size = _need_uint(el, "size")
    el.done()
    return size


def _read_domain(el: _El | None) -> DnsDomain | None:
    if el is None:
        return None
    domain = DnsDomain(el.need("name"), el.convert("localOnly", _yes_no, "yes or no"))
    el.done()
    return domain


def _read_dns(el: _El | None) -> Dns | None:
    if el is None:
        return None
    forwarders = []
    for fw in el.children("forwarder"):
        forwarders.append(DnsForwarder(fw.convert("addr", _ip, "an IP address"), fw.get("domain")))
        fw.done()
    txts = []
    for txt in el.children("txt"):
        txts.append(DnsTxt(txt.need("name"), txt.need("value")))
        txt.done()
    hosts = []
    for host in el.children("host"):
        ip = _need_ip(host, "ip")
        names = []
        for hn in host.children("hostname"):
            names.append(hn.text())
            hn.done()
        hosts.append(DnsHost(ip, tuple(names)))
        host.done()
    dns = Dns(
        enable=el.convert("enable", _yes_no, "yes or no"),
        forward_plain_names=el.convert("forwardPlainNames", _yes_no, "yes or no"),
        forwarders=tuple(forwarders),
        txts=tuple(txts),
        srvs=tuple(_read_srv(srv) for srv in el.children("srv")),
        hosts=tuple(hosts),
    )
    el.done()
    return dns


def _read_srv(el: _El) -> DnsSrv:
    expected = "an integer 0-65535"
    srv = DnsSrv(
        service=el.need("service"),
        protocol=el.need("protocol"),
        domain=el.get("domain"),
        target=el.get("target"),
        port=el.convert("port", _uint, expected),
        priority=el.convert("priority", _uint, expected),
        weight=el.convert("weight", _uint, expected),
    )
    el.done()
    return srv


def _read_ip(el: _El) -> Ip:
    address = _need_ip(el, "address")
    ip = Ip(
        address=address,
        prefix=el.convert("prefix", _uint, "a prefix length"),
        netmask=el.convert("netmask", _ipv4, "an IPv4 netmask"),
        family=el.convert("family", _family, "ipv4 or ipv6"),
        dhcp=_read_dhcp(el.child("dhcp")),
    )
    el.done()
    return ip


def _family(text: str) -> str:
    if text not in ("ipv4", "ipv6"):
        raise ValueError(text)
    return text


def _read_dhcp(el: _El | None) -> Dhcp | None:
    if el is None:
        return None
    ranges = []
    for rng in el.children("range"):
        start, end = _need_ip(rng, "start"), _need_ip(rng, "end")
        ranges.append(DhcpRange(start, end, _read_lease(rng.child("lease"))))
        rng.done()
    hosts = []
    for host in el.children("host"):
        hosts.append(
            DhcpHost(
                ip=_need_ip(host, "ip"),
                mac=host.convert("mac", _mac, "a unicast MAC address like 52:54:00:12:34:56"),
                id=host.get("id"),
                name=host.get("name"),
                lease=_read_lease(host.child("lease")),
            )
        )
        host.done()
    el.done()
    return Dhcp(tuple(ranges), tuple(hosts))


def _read_lease(el: _El | None) -> Lease | None:
    if el is None:
        return None
    lease = Lease(
        _need_uint(el, "expiry"), el.convert("unit", LeaseUnit, "seconds, minutes or hours")
    )
    el.done()
    return lease


def _read_metadata(el: _El | None) -> tuple[tuple[PortForward, ...], bool, tuple[str, ...]]:
    if el is None:
        return (), False, ()
    forwards = [_read_port_forward(pf) for pf in el.children(f"{{{NS_VMKIT}}}port-forward")]
    isolated = el.children(f"{{{NS_VMKIT}}}isolated")
    if len(isolated) > 1:
        raise isolated[1].fail("element <vmkit:isolated> appears more than once in <metadata>")
    for marker in isolated:
        _El(marker.el, f"{el.xpath}/vmkit:isolated", el.strict).done()
    kept = []
    for i, child in el._elements():
        qname = etree.QName(child)
        if qname.namespace == NS_VMKIT:
            if qname.localname not in ("port-forward", "isolated") and el.strict:
                raise el._refuse(child)
            continue
        el._children.add(i)
        if qname.namespace is None:
            if el.strict:
                raise InvalidConfig(
                    f"metadata element <{qname.localname}> needs a namespace",
                    xpath=f"{el.xpath}/{qname.localname}",
                    line=child.sourceline if isinstance(child.sourceline, int) else None,
                )
            continue
        kept.append(_serialize_foreign(child))
    el.done()
    return tuple(forwards), bool(isolated), tuple(kept)


def _read_port_forward(el: _El) -> PortForward:
    el.need("proto")
    el.need("guest-ip")
    proto = el.convert("proto", Proto, "tcp or udp")
    guest_ip = el.convert("guest-ip", _ipv4, "an IPv4 address")
    assert proto is not None and guest_ip is not None
    pf = PortForward(
        proto=proto,
        host_port=_need_uint(el, "host-port"),
        guest_ip=guest_ip,
        guest_port=_need_uint(el, "guest-port"),
        address=el.convert("address", _ipv4, "an IPv4 address"),
    )
    el.done()
    return pf


def _serialize_foreign(el: etree._Element) -> str:
    """Another application's metadata, with layout whitespace dropped so round trips are stable."""
    copy = etree.fromstring(etree.tostring(el))
    for node in copy.iter():
        if node.text is not None and not node.text.strip() and len(node):
            node.text = None
        if node.tail is not None and not node.tail.strip():
            node.tail = None
    return etree.tostring(copy, encoding="unicode")


# ---------------------------------------------------------------------------------------------
# render


def _yn(value: bool | None) -> str | None:
    return None if value is None else ("yes" if value else "no")


def _sub(parent: etree._Element, tag: str, **attrs: object) -> etree._Element:
    el = etree.SubElement(parent, tag)
    for key, value in attrs.items():
        if value is not None:
            el.set(key.rstrip("_").replace("_", "-"), str(value))
    return el


def render_network(net: Network) -> str:
    """The `<network>` XML of `net`, in libvirt's layout."""
    root = etree.Element("network")
    etree.SubElement(root, "name").text = net.name
    if net.uuid is not None:
        etree.SubElement(root, "uuid").text = str(net.uuid)
    _render_metadata(root, net)
    _render_forward(root, net.forward)
    if net.bridge is not None:
        br = net.bridge
        stp = None if br.stp is None else ("on" if br.stp else "off")
        _sub(root, "bridge", name=br.name, stp=stp, delay=br.delay)
    if net.mtu is not None:
        _sub(root, "mtu", size=net.mtu)
    if net.mac is not None:
        _sub(root, "mac", address=net.mac)
    if net.domain is not None:
        dom = _sub(root, "domain", name=net.domain.name)
        if net.domain.local_only is not None:
            dom.set("localOnly", _yn(net.domain.local_only) or "")
    if net.dns is not None:
        _render_dns(root, net.dns)
    for ip in net.ips:
        _render_ip(root, ip)
    etree.indent(root, space="  ")
    return etree.tostring(root, encoding="unicode") + "\n"


def _render_metadata(root: etree._Element, net: Network) -> None:
    if not net.port_forwards and not net.metadata and not net.isolated:
        return
    meta = etree.SubElement(root, "metadata")
    if net.isolated:
        etree.SubElement(meta, f"{{{NS_VMKIT}}}isolated", nsmap=_NSMAP)
    for pf in net.port_forwards:
        el = etree.SubElement(meta, f"{{{NS_VMKIT}}}port-forward", nsmap=_NSMAP)
        for key, value in (
            ("proto", pf.proto),
            ("address", pf.address),
            ("host-port", pf.host_port),
            ("guest-ip", pf.guest_ip),
            ("guest-port", pf.guest_port),
        ):
            if value is not None:
                el.set(key, str(value))
    for text in net.metadata:
        meta.append(etree.fromstring(text))


def _render_forward(root: etree._Element, fwd: Forward | None) -> None:
    if fwd is None:
        return
    el = _sub(root, "forward", dev=fwd.dev, mode=str(fwd.mode))
    if fwd.nat_ports or fwd.nat_addresses or fwd.nat_ipv6 is not None:
        nat = _sub(el, "nat", ipv6=_yn(fwd.nat_ipv6))
        if fwd.nat_addresses is not None:
            _sub(nat, "address", start=fwd.nat_addresses.start, end=fwd.nat_addresses.end)
        if fwd.nat_ports is not None:
            _sub(nat, "port", start=fwd.nat_ports.start, end=fwd.nat_ports.end)
    for dev in fwd.interfaces:
        _sub(el, "interface", dev=dev)


def _render_dns(root: etree._Element, dns: Dns) -> None:
    el = _sub(root, "dns", enable=_yn(dns.enable))
    if dns.forward_plain_names is not None:
        el.set("forwardPlainNames", _yn(dns.forward_plain_names) or "")
    for fw in dns.forwarders:
        _sub(el, "forwarder", addr=fw.addr, domain=fw.domain)
    for txt in dns.txts:
        _sub(el, "txt", name=txt.name, value=txt.value)
    for srv in dns.srvs:
        _sub(
            el,
            "srv",
            service=srv.service,
            protocol=srv.protocol,
            domain=srv.domain,
            target=srv.target,
            port=srv.port,
            priority=srv.priority,
            weight=srv.weight,
        )
    for host in dns.hosts:
        h = _sub(el, "host", ip=host.ip)
        for name in host.hostnames:
            etree.SubElement(h, "hostname").text = name


def _render_ip(root: etree._Element, ip: Ip) -> None:
    el = _sub(root, "ip", family=ip.family, address=ip.address, netmask=ip.netmask)
    if ip.prefix is not None:
        el.set("prefix", str(ip.prefix))
    if ip.dhcp is None:
        return
    dhcp = etree.SubElement(el, "dhcp")
    for rng in ip.dhcp.ranges:
        r = _sub(dhcp, "range", start=rng.start, end=rng.end)
        _render_lease(r, rng.lease)
    for host in ip.dhcp.hosts:
        h = _sub(dhcp, "host", mac=host.mac, id=host.id, name=host.name, ip=host.ip)
        _render_lease(h, host.lease)


def _render_lease(parent: etree._Element, lease: Lease | None) -> None:
    if lease is not None:
        _sub(parent, "lease", expiry=lease.expiry, unit=lease.unit)


# ---------------------------------------------------------------------------------------------
# schema


def schema_errors(text: str, schema: str = "/usr/share/libvirt/schemas/network.rng") -> list[str]:
    """libvirt's RelaxNG verdict on `text`: an empty list when it validates."""
    rng = etree.RelaxNG(etree.parse(schema))
    doc = etree.fromstring(text.encode())
    if rng.validate(doc):
        return []
    return [f"line {e.line}: {e.message}" for e in rng.error_log]
