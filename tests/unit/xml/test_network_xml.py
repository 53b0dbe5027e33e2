"""Network XML: golden parse -> render, libvirt's RelaxNG as oracle, round trips, every model
field exercised, and exact errors (element/attribute named, with its line) for bad input."""

from __future__ import annotations

import dataclasses
import os
import uuid
from collections.abc import Iterator
from ipaddress import IPv4Address, ip_address
from pathlib import Path

import pytest

from vmkit.errors import InvalidConfig
from vmkit.model import network as model
from vmkit.model.network import (
    Bridge,
    Dhcp,
    DhcpHost,
    DhcpRange,
    Forward,
    ForwardMode,
    Ip,
    Network,
    PortForward,
    Proto,
)
from vmkit.xml.network import parse_network, render_network, schema_errors

DATA = Path(__file__).parents[2] / "data" / "network"
CASES = sorted(p.stem for p in (DATA / "xml").glob("*.xml"))
LIBVIRT = sorted(p.name for p in (DATA / "libvirt").glob("*.xml"))
SCHEMA = Path("/usr/share/libvirt/schemas/network.rng")


def _regen(request: pytest.FixtureRequest) -> bool:
    opt = request.config.getoption("--regen-golden", default=False)
    return bool(opt) or os.environ.get("VMKIT_REGEN_GOLDEN") == "1"


def _assert_valid(xml: str) -> None:
    if not SCHEMA.exists():
        pytest.skip(f"libvirt schema {SCHEMA} is not installed (package libvirt0)")
    assert schema_errors(xml, str(SCHEMA)) == [], xml


@pytest.mark.parametrize("case", CASES)
def test_golden_render_is_canonical(case: str, request: pytest.FixtureRequest) -> None:
    path = DATA / "xml" / f"{case}.xml"
    text = path.read_text()
    rendered = render_network(parse_network(text))
    if _regen(request):
        path.write_text(rendered)
    assert rendered == text


@pytest.mark.parametrize("case", CASES)
def test_golden_validates_and_round_trips(case: str) -> None:
    net = parse_network((DATA / "xml" / f"{case}.xml").read_text())
    rendered = render_network(net)
    _assert_valid(rendered)
    assert parse_network(rendered) == net


@pytest.mark.parametrize("name", LIBVIRT)
def test_libvirt_dumpxml_parses_and_round_trips(name: str) -> None:
    """What libvirt 9.0 itself wrote (net-dumpxml) is read, and written back valid."""
    net = parse_network((DATA / "libvirt" / name).read_text())
    rendered = render_network(net)
    _assert_valid(rendered)
    assert parse_network(rendered) == net


def test_isolated_marker_round_trips_and_keeps_other_metadata() -> None:
    net = parse_network((DATA / "xml" / "isolated-dhcp.xml").read_text())
    assert net.isolated and net.mode is None and net.ips[0].dhcp is not None
    both = dataclasses.replace(net, metadata=('<a:x xmlns:a="https://example.org/a"/>',))
    rendered = render_network(both)
    _assert_valid(rendered)
    assert parse_network(rendered) == both
    plain = dataclasses.replace(net, isolated=False)
    assert "metadata" not in render_network(plain)  # host-only, as before
    assert parse_network(render_network(plain)) == plain


def test_nat_full_values() -> None:
    net = parse_network((DATA / "xml" / "nat-full.xml").read_text())
    assert net.mode is ForwardMode.NAT
    assert net.forward and net.forward.uplink == "up0"
    assert net.bridge == Bridge("vk-nat0", stp=False, delay=3)
    assert net.ips[0].subnet.with_prefixlen == "10.231.1.0/24"
    assert net.ips[0].dhcp and net.ips[0].dhcp.ranges[0].lease
    assert net.ips[0].dhcp.ranges[0].lease.seconds == 7200
    assert net.port_forwards[0] == PortForward(
        Proto.TCP, 2222, IPv4Address("10.231.1.10"), 22, None
    )
    assert len(net.metadata) == 1 and "https://example.org/app/1" in net.metadata[0]


def _walk(value: object) -> Iterator[tuple[str, object]]:
    """(Class.field, value) of every dataclass field reachable from `value`."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            v = getattr(value, f.name)
            yield f"{type(value).__name__}.{f.name}", v
            yield from _walk(v)
    elif isinstance(value, tuple):
        for item in value:
            yield from _walk(item)


def test_every_model_field_is_exercised_by_a_golden_case() -> None:
    """Like virtinst: a field no golden file sets is a field nobody has seen parse or render."""
    seen = {
        path
        for case in CASES
        for path, value in _walk(parse_network((DATA / "xml" / f"{case}.xml").read_text()))
        if value not in (None, (), False) or value is False
    }
    classes = [
        c for c in vars(model).values() if isinstance(c, type) and dataclasses.is_dataclass(c)
    ]
    every = {f"{c.__name__}.{f.name}" for c in classes for f in dataclasses.fields(c)}
    assert every - seen == set()


def test_render_of_built_model_validates() -> None:
    net = Network(
        name="built",
        uuid=uuid.UUID(int=1),
        forward=Forward(ForwardMode.NAT),
        bridge=Bridge("vk-b0", stp=True, delay=0),
        ips=(
            Ip(
                ip_address("10.9.0.1"),
                prefix=24,
                dhcp=Dhcp(
                    (DhcpRange(ip_address("10.9.0.10"), ip_address("10.9.0.20")),),
                    (DhcpHost(ip_address("10.9.0.5"), mac="52:54:00:00:00:05"),),
                ),
            ),
        ),
        port_forwards=(PortForward(Proto.TCP, 80, IPv4Address("10.9.0.5"), 8080),),
    )
    text = render_network(net)
    _assert_valid(text)
    assert parse_network(text) == net


def test_libvirt_defaults_of_bare_forward_and_classful_ip() -> None:
    net = parse_network(
        "<network><name>n</name><forward/><bridge name='b0'/>"
        "<ip address='172.16.0.1'/><ip address='fd00::1'/></network>"
    )
    assert net.mode is ForwardMode.NAT
    assert [ip.prefix_length for ip in net.ips] == [16, 64]


def test_not_strict_skips_unknown_xml() -> None:
    text = "<network foo='1'><name>n</name><bar/><bridge name='b0' baz='2'/></network>"
    net = parse_network(text, strict=False)
    assert net.bridge_name == "b0"


def _xml(body: str) -> str:
    return f"<network>\n  <name>n</name>\n{body}\n</network>\n"


NS = "xmlns:vmkit='https://vmkit.dev/xml/network/1'"
_IP = "  <ip address='10.0.0.1' prefix='24'>\n    <dhcp>\n      {}\n    </dhcp>\n  </ip>"

BAD = [
    (
        "<network><name>n</name><frobnicate/></network>",
        "element <frobnicate> in <network> is unknown (line 1, /network/frobnicate)",
    ),
    (
        _xml("  <bridge name='b0' colour='red'/>"),
        "attribute 'colour' on element <bridge> is unknown (line 3, /network/bridge/@colour)",
    ),
    (
        _xml("  <bridge name='b0' zone='trusted'/>"),
        "attribute 'zone' on element <bridge> is not supported by vmkit "
        "(line 3, /network/bridge/@zone)",
    ),
    (
        _xml("  <portgroup name='pg'/>"),
        "element <portgroup> in <network> is not supported by vmkit (line 3, /network/portgroup)",
    ),
    (
        _xml("  <forward mode='vepa'/>"),
        "forward mode 'vepa' is not supported by vmkit (line 3, /network/forward/@mode)",
    ),
    (
        _xml("  <forward mode='tunnel'/>"),
        "invalid value 'tunnel' for attribute 'mode' of <forward>: expected one of nat, route, "
        "open, bridge (line 3, /network/forward/@mode)",
    ),
    (
        _xml("  <bridge name='b0'/>\n  <bridge name='b1'/>"),
        "element <bridge> appears more than once in <network> (line 4, /network/bridge[2])",
    ),
    ("<network><name>n</name>", "malformed XML: Premature end of data in tag network (line 1)"),
    ("<domain><name>n</name></domain>", "expected a <network> element, found <domain> (line 1, /)"),
    (
        "<network><bridge name='b'/></network>",
        "missing element <name> in <network> (line 1, /network)",
    ),
    (
        _xml("  <bridge name='averyveryverylongbridge'/>"),
        "bridge name 'averyveryverylongbridge' is longer than 15 characters "
        "(line 3, /network/bridge/@name)",
    ),
    (
        _xml("  <bridge name='br 0'/>"),
        "bridge name 'br 0' may only contain letters, digits, '_', '.' and '-' "
        "(line 3, /network/bridge/@name)",
    ),
    (
        _xml("  <mtu size='big'/>"),
        "invalid value 'big' for attribute 'size' of <mtu>: expected a non-negative integer "
        "(line 3, /network/mtu/@size)",
    ),
    (_xml("  <mtu size='20'/>"), "mtu 20 is out of range 68-65535 (line 3, /network/mtu/@size)"),
    (
        _xml("  <mac address='53:54:00:00:00:01'/>"),
        "invalid value '53:54:00:00:00:01' for attribute 'address' of <mac>: expected a unicast "
        "MAC address like 52:54:00:12:34:56 (line 3, /network/mac/@address)",
    ),
    (
        _xml(_IP.format("<range start='10.0.0.200' end='10.0.0.100'/>")),
        "dhcp range 10.0.0.200-10.0.0.100 is reversed (start after end) "
        "(line 5, /network/ip[1]/dhcp/range[1])",
    ),
    (
        _xml(_IP.format("<range start='10.0.1.10' end='10.0.1.20'/>")),
        "dhcp range start 10.0.1.10 is outside subnet 10.0.0.0/24 "
        "(line 5, /network/ip[1]/dhcp/range[1]/@start)",
    ),
    (
        _xml(_IP.format("<range start='10.0.0.10' end='10.0.0.255'/>")),
        "dhcp range end 10.0.0.255 is the network or broadcast address of 10.0.0.0/24 "
        "(line 5, /network/ip[1]/dhcp/range[1]/@end)",
    ),
    (
        _xml(_IP.format("<range start='10.0.0.1' end='10.0.0.9'/>")),
        "dhcp range start 10.0.0.1 is the network's own address "
        "(line 5, /network/ip[1]/dhcp/range[1]/@start)",
    ),
    (
        _xml(
            _IP.format(
                "<range start='10.0.0.10' end='10.0.0.20'/>\n"
                "      <range start='10.0.0.15' end='10.0.0.30'/>"
            )
        ),
        "dhcp range 10.0.0.15-10.0.0.30 overlaps range number 1 "
        "(line 6, /network/ip[1]/dhcp/range[2])",
    ),
    (
        _xml(_IP.format("<host mac='52:54:00:00:00:01' ip='10.0.5.5'/>")),
        "dhcp host address 10.0.5.5 is outside subnet 10.0.0.0/24 "
        "(line 5, /network/ip[1]/dhcp/host[1]/@ip)",
    ),
    (
        _xml(
            _IP.format(
                "<host mac='52:54:00:00:00:01' ip='10.0.0.5'/>\n"
                "      <host mac='52:54:00:00:00:01' ip='10.0.0.6'/>"
            )
        ),
        "duplicate dhcp host MAC 52:54:00:00:00:01 (also in host number 1) "
        "(line 6, /network/ip[1]/dhcp/host[2])",
    ),
    (
        _xml(
            _IP.format(
                "<host mac='52:54:00:00:00:01' ip='10.0.0.5'/>\n"
                "      <host mac='52:54:00:00:00:02' ip='10.0.0.5'/>"
            )
        ),
        "duplicate dhcp host IP 10.0.0.5 (also in host number 1) "
        "(line 6, /network/ip[1]/dhcp/host[2])",
    ),
    (
        _xml(_IP.format("<host ip='10.0.0.5'/>")),
        "an IPv4 dhcp host needs a mac or a name (line 5, /network/ip[1]/dhcp/host[1])",
    ),
    (
        _xml("  <ip address='10.0.0.1' netmask='255.0.255.0'/>"),
        "netmask 255.0.255.0 is not contiguous (line 3, /network/ip[1]/@netmask)",
    ),
    (
        _xml("  <ip address='10.0.0.0' prefix='24'/>"),
        "address 10.0.0.0 is not a host address of 10.0.0.0/24 (line 3, /network/ip[1]/@address)",
    ),
    (
        _xml("  <ip address='10.0.0.1' prefix='24'/>\n  <ip address='10.0.0.129' prefix='25'/>"),
        "subnet 10.0.0.128/25 overlaps subnet 10.0.0.0/24 of <ip> number 1 "
        "(line 4, /network/ip[2])",
    ),
    (
        _xml("  <ip address='10.0.0.1' prefix='24' family='ipv6'/>"),
        "address 10.0.0.1 does not match family 'ipv6' (line 3, /network/ip[1]/@family)",
    ),
    (
        _xml("  <ip address='10.0.0.x' prefix='24'/>"),
        "invalid value '10.0.0.x' for attribute 'address' of <ip>: expected an IP address "
        "(line 3, /network/ip[1]/@address)",
    ),
    (
        _xml("  <ip prefix='24'/>"),
        "missing attribute 'address' on element <ip> (line 3, /network/ip[1])",
    ),
    (
        _xml("  <forward mode='bridge'/>"),
        "forward mode 'bridge' needs <bridge name='...'/> naming an existing host bridge "
        "(line 1, /network/bridge/@name)",
    ),
    (
        _xml("  <forward mode='bridge'/>\n  <bridge name='br0'/>\n  <ip address='10.0.0.1'/>"),
        "<ip> is not allowed with forward mode 'bridge' (the host bridge is not managed by "
        "vmkit) (line 5, /network/ip)",
    ),
    (
        _xml("  <forward mode='route'>\n    <nat><port start='1' end='2'/></nat>\n  </forward>"),
        "<nat> is only allowed with forward mode 'nat', not 'route' (line 4, /network/forward/nat)",
    ),
    (
        _xml(
            "  <forward mode='nat'>\n    <nat><port start='9000' end='1000'/></nat>\n  </forward>"
        ),
        "nat port range 9000-1000 is reversed (line 4, /network/forward/nat/port)",
    ),
    (
        _xml("  <forward mode='open' dev='eth0'/>"),
        "forward mode 'open' does not take a forward dev (line 3, /network/forward/@dev)",
    ),
    (
        _xml("  <domain name='bad_name'/>"),
        "invalid domain name 'bad_name' (line 3, /network/domain/@name)",
    ),
    (
        _xml("  <dns>\n    <txt name='t' value='say &quot;hi&quot;'/>\n  </dns>"),
        "txt record value may only hold printable ASCII without '\"' and '\\' "
        "(line 4, /network/dns/txt[1]/@value)",
    ),
    (
        _xml("  <dns>\n    <forwarder/>\n  </dns>"),
        "a dns forwarder needs addr or domain (line 4, /network/dns/forwarder[1])",
    ),
    (
        _xml(
            f"  <metadata><vmkit:port-forward {NS} proto='tcp' host-port='80' "
            "guest-ip='10.0.0.5' guest-port='80'/></metadata>\n  <ip address='10.0.0.1'/>"
        ),
        "port forwards need forward mode 'nat' (network 'n' has no forward) "
        "(line 3, /network/metadata/vmkit:port-forward[1])",
    ),
    (
        _xml(
            "  <forward/>\n"
            f"  <metadata><vmkit:port-forward {NS} proto='tcp' host-port='80' "
            "guest-ip='10.0.0.5' guest-port='80'/>\n"
            f"  <vmkit:port-forward {NS} proto='tcp' host-port='80' "
            "guest-ip='10.0.0.6' guest-port='81'/></metadata>\n"
            "  <ip address='10.0.0.1' prefix='24'/>"
        ),
        "port tcp/80 is already forwarded (port forward number 1) "
        "(line 5, /network/metadata/vmkit:port-forward[2])",
    ),
    (
        _xml(
            "  <forward/>\n"
            f"  <metadata><vmkit:port-forward {NS} proto='sctp' host-port='80' "
            "guest-ip='10.0.0.5' guest-port='80'/></metadata>"
        ),
        "invalid value 'sctp' for attribute 'proto' of <vmkit:port-forward>: expected tcp or udp "
        "(line 4, /network/metadata/vmkit:port-forward[1]/@proto)",
    ),
    (
        _xml(f"  <metadata><vmkit:hairpin {NS}/></metadata>"),
        "element <vmkit:hairpin> in <metadata> is unknown "
        "(line 3, /network/metadata/vmkit:hairpin)",
    ),
    (
        _xml(f"  <forward mode='route'/>\n  <metadata><vmkit:isolated {NS}/></metadata>"),
        "<vmkit:isolated> is only allowed without <forward> (network 'n' has forward mode "
        "'route') (line 4, /network/metadata/vmkit:isolated)",
    ),
    (
        _xml(f"  <metadata><vmkit:isolated {NS}/><vmkit:isolated {NS}/></metadata>"),
        "element <vmkit:isolated> appears more than once in <metadata> "
        "(line 3, /network/metadata/vmkit:isolated[2])",
    ),
    (
        _xml(f"  <metadata><vmkit:isolated {NS} dhcp='yes'/></metadata>"),
        "attribute 'dhcp' on element <vmkit:isolated> is unknown "
        "(line 3, /network/metadata/vmkit:isolated/@dhcp)",
    ),
    (
        _xml("  <metadata><note/></metadata>"),
        "metadata element <note> needs a namespace (line 3, /network/metadata/note)",
    ),
    (
        _xml("  <uuid>not-a-uuid</uuid>"),
        "invalid uuid 'not-a-uuid' (line 3, /network/uuid)",
    ),
    ("<network><name>a/b</name></network>", None),
    (
        _xml("  <bridge name='b0'>text</bridge>"),
        "unexpected text 'text' in <bridge> (line 3, /network/bridge)",
    ),
]


@pytest.mark.parametrize(("xml", "message"), BAD, ids=[str(i) for i in range(len(BAD))])
def test_bad_input_is_refused_with_exact_message(xml: str, message: str | None) -> None:
    with pytest.raises(InvalidConfig) as err:
        parse_network(xml)
    if message is not None:
        assert str(err.value) == message


def test_bad_name_message() -> None:
    with pytest.raises(InvalidConfig) as err:
        parse_network("<network>\n<name>a/b</name>\n</network>")
    assert str(err.value) == (
        "invalid network name 'a/b': use 1-64 of [A-Za-z0-9_.-], starting with a letter or "
        "digit (line 2, /network/name)"
    )
    assert err.value.line == 2 and err.value.xpath == "/network/name"
