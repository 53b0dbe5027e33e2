"""The network model on its own: names, conflicts between networks, defaults, and the pure edits
behind net-update and port-forward (exact errors)."""

from __future__ import annotations

import random
import uuid
from dataclasses import replace
from ipaddress import IPv4Address, ip_address
from pathlib import Path

import pytest

from vmkit.errors import Conflict, InvalidConfig, NotFound
from vmkit.model.network import (
    Bridge,
    DhcpHost,
    DnsHost,
    ForwardMode,
    Network,
    PortForward,
    Proto,
    add_dhcp_host,
    add_dns_host,
    add_port_forward,
    check_ifname,
    check_network_conflicts,
    delete_dhcp_host,
    delete_dns_host,
    pick_bridge_name,
    random_mac,
    remove_port_forward,
    validate_network,
    with_defaults,
)
from vmkit.xml.network import parse_network

DATA = Path(__file__).parents[2] / "data" / "network" / "xml"


def _net(case: str) -> Network:
    return parse_network((DATA / f"{case}.xml").read_text())


@pytest.mark.parametrize("name", ["br0", "vk-nat.0", "a_b", "x" * 15])
def test_good_ifnames(name: str) -> None:
    check_ifname(name)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("x" * 16, f"interface name '{'x' * 16}' is longer than 15 characters"),
        ("", "interface name '' may only contain letters, digits, '_', '.' and '-'"),
        (".", "interface name '.' may only contain letters, digits, '_', '.' and '-'"),
        ("..", "interface name '..' may only contain letters, digits, '_', '.' and '-'"),
        ("a/b", "interface name 'a/b' may only contain letters, digits, '_', '.' and '-'"),
        ("a b", "interface name 'a b' may only contain letters, digits, '_', '.' and '-'"),
        ("a\nb", "interface name 'a\nb' may only contain letters, digits, '_', '.' and '-'"),
    ],
)
def test_bad_ifnames(name: str, message: str) -> None:
    with pytest.raises(InvalidConfig) as err:
        check_ifname(name)
    assert str(err.value) == message


def test_conflicting_bridge_name_between_networks() -> None:
    a = _net("nat")
    b = replace(_net("route"), bridge=Bridge("vk-nat1"))
    with pytest.raises(Conflict) as err:
        check_network_conflicts(b, [a])
    assert str(err.value) == "bridge name 'vk-nat1' is already used by network 'nat1'"


def test_overlapping_subnet_between_networks() -> None:
    a = _net("nat")
    b = parse_network(
        "<network><name>b</name><bridge name='vkb'/><ip address='10.231.0.1' prefix='16'/>"
        "</network>"
    )
    with pytest.raises(Conflict) as err:
        check_network_conflicts(b, [a, b])
    assert str(err.value) == (
        "subnet 10.231.0.0/16 of network 'b' overlaps subnet 10.231.1.0/24 of network 'nat1'"
    )
    check_network_conflicts(a, [a])  # itself (a redefinition) is no conflict


def test_with_defaults_fills_what_libvirt_fills() -> None:
    net = parse_network("<network><name>d</name><forward/><ip address='10.5.0.1'/></network>")
    filled = with_defaults(
        net, {"vmkbr0", "vmkbr1"}, rng=random.Random(1), new_uuid=lambda: uuid.UUID(int=7)
    )
    assert filled.uuid == uuid.UUID(int=7)
    assert filled.bridge == Bridge("vmkbr2", stp=True, delay=0)
    assert filled.mac is not None and filled.mac.startswith("52:54:00:")
    validate_network(filled)
    bridged = with_defaults(_net("bridge"), set())
    assert bridged.bridge == Bridge("br-lan") and bridged.mac is None


def test_pick_bridge_name_and_random_mac() -> None:
    assert pick_bridge_name(set()) == "vmkbr0"
    assert pick_bridge_name({"vmkbr0"}, prefix="vmkbr") == "vmkbr1"
    assert random_mac(random.Random(0)) == random_mac(random.Random(0))


def test_add_and_delete_dhcp_host() -> None:
    net = _net("route")
    host = DhcpHost(ip_address("10.231.2.11"), mac="52:54:00:00:02:11", name="g2")
    added = add_dhcp_host(net, host)
    assert added.ips[0].dhcp and added.ips[0].dhcp.hosts[-1] == host
    assert delete_dhcp_host(added, DhcpHost(ip_address("0.0.0.0"), mac=host.mac)) == net


def test_add_duplicate_dhcp_host_is_a_conflict() -> None:
    net = _net("route")
    with pytest.raises(Conflict) as err:
        add_dhcp_host(net, DhcpHost(ip_address("10.231.2.12"), mac="52:54:00:00:02:10"))
    assert str(err.value) == (
        "there is an existing dhcp host entry in network 'route1' that matches "
        "mac=52:54:00:00:02:10 name=g1 ip=10.231.2.10"
    )


def test_add_dhcp_host_outside_subnet_is_invalid() -> None:
    with pytest.raises(InvalidConfig) as err:
        add_dhcp_host(_net("route"), DhcpHost(ip_address("10.9.9.9"), mac="52:54:00:00:02:99"))
    assert str(err.value) == (
        "dhcp host address 10.9.9.9 is outside subnet 10.231.2.0/24 "
        "(/network/ip[1]/dhcp/host[2]/@ip)"
    )


def test_delete_missing_dhcp_host_and_no_dhcp() -> None:
    with pytest.raises(NotFound) as err:
        delete_dhcp_host(
            _net("route"), DhcpHost(ip_address("10.231.2.10"), mac="52:54:00:ff:00:01")
        )
    assert str(err.value) == "couldn't locate a matching dhcp host entry in network 'route1'"
    with pytest.raises(NotFound) as err2:
        add_dhcp_host(_net("isolated"), DhcpHost(ip_address("10.0.0.2"), mac="52:54:00:ff:00:01"))
    assert str(err2.value) == "network 'iso1' has no IPv4 <dhcp> section"


def test_add_and_delete_dns_host() -> None:
    net = _net("nat")
    host = DnsHost(ip_address("10.231.1.50"), ("api",))
    added = add_dns_host(net, host)
    with pytest.raises(Conflict):
        add_dns_host(added, host)
    assert delete_dns_host(added, host.ip) == net
    with pytest.raises(NotFound):
        delete_dns_host(net, host.ip)


def test_port_forward_add_conflict_and_remove() -> None:
    net = _net("nat")
    pf = PortForward(Proto.TCP, 8080, IPv4Address("10.231.1.20"), 80)
    added = add_port_forward(net, pf)
    assert added.port_forwards == (pf,)
    with pytest.raises(Conflict) as err:
        add_port_forward(added, replace(pf, guest_ip=IPv4Address("10.231.1.21")))
    assert str(err.value) == (
        "port tcp/8080 is already forwarded to 10.231.1.20:80 on network 'nat1'"
    )
    udp = add_port_forward(added, replace(pf, proto=Proto.UDP))  # another protocol is fine
    assert len(udp.port_forwards) == 2
    assert remove_port_forward(added, Proto.TCP, 8080) == net
    with pytest.raises(NotFound) as err2:
        remove_port_forward(net, Proto.TCP, 8080, IPv4Address("10.0.0.1"))
    assert str(err2.value) == "no port forward tcp/10.0.0.1:8080 on network 'nat1'"


def test_port_forward_needs_nat_and_a_guest_in_the_subnet() -> None:
    pf = PortForward(Proto.TCP, 8080, IPv4Address("10.231.2.20"), 80)
    with pytest.raises(InvalidConfig) as err:
        add_port_forward(_net("route"), pf)
    assert str(err.value).startswith("port forwards need forward mode 'nat' (network 'route1'")
    with pytest.raises(InvalidConfig) as err2:
        add_port_forward(_net("nat"), pf)
    assert str(err2.value) == (
        "guest address 10.231.2.20 is in no subnet of network 'nat1' "
        "(/network/metadata/vmkit:port-forward[1]/@guest-ip)"
    )


def test_mode_and_properties() -> None:
    assert _net("hostonly").mode is None
    assert _net("open").mode is ForwardMode.OPEN
    assert _net("nodns").dns_enabled is False
    assert _net("nat").ipv4 is not None and _net("isolated").ipv4 is None
