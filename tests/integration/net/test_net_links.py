"""The thin adapters for real, in throwaway namespaces: links (bridge, veth, tap), taps for
domain NICs, namespaces and running code inside one."""

from __future__ import annotations

import errno
from ipaddress import ip_address, ip_interface, ip_network
from pathlib import Path

import pytest
from netlab import Lab, run

from vmkit.errors import Conflict, InvalidConfig, NetlinkFailed, NotFound
from vmkit.net.links import Links, Neighbour, Route
from vmkit.net.netns import create_netns, list_netns, netns_exists, run_in_netns
from vmkit.net.sysctl import IPV4_FORWARD, read_sysctl, write_sysctl
from vmkit.net.taps import create_tap, delete_tap, tap_mac

pytestmark = pytest.mark.integration


def test_bridge_veth_address_and_errors(lab: Lab) -> None:
    with Links(lab.host) as links:
        links.add_bridge("vkbr-t", stp=True, delay=2, mac="52:54:00:12:34:56", mtu=1400)
        links.add_address("vkbr-t", ip_interface("10.231.7.1/24"))
        links.add_address("vkbr-t", ip_interface("fd00:231:7::1/64"))
        links.set_up("vkbr-t")
        links.add_veth("vA", "vB")
        links.set_master("vA", "vkbr-t")
        link = links.get("vA")
        assert link is not None and link.master == "vkbr-t" and link.kind == "veth"
        links.set_master("vA", None)
        assert (links.get("vA") or link).master is None
        links.move_to_netns("vB", lab.upstream)
        assert links.get("vB") is None
        bridge = links.get("vkbr-t")
        assert bridge is not None
        assert (bridge.kind, bridge.mtu, bridge.mac) == ("bridge", 1400, "52:54:00:12:34:56")
        assert ("vkbr-t", ip_interface("fd00:231:7::1/64")) in links.addresses()
        with pytest.raises(NetlinkFailed) as err:
            links.add_bridge("vkbr-t")
        assert err.value.errno == errno.EEXIST
        assert str(err.value) == (
            f"netlink add bridge vkbr-t in namespace {lab.host} failed (errno 17): File exists"
        )
        with pytest.raises(NotFound, match="no interface named 'nope'"):
            links.set_up("nope")
        with pytest.raises(InvalidConfig):
            links.add_bridge("this-name-is-too-long")
    detail = run(lab.host, "ip", "-d", "link", "show", "vkbr-t").stdout
    assert "stp_state 1" in detail and "forward_delay 200" in detail
    assert "fd00:231:7::1/64 scope global nodad" in run(lab.host, "ip", "addr").stdout


def test_links_refuse_a_missing_namespace_instead_of_creating_it(lab: Lab) -> None:
    name = f"{lab.tag}-missing"
    with pytest.raises(NotFound):
        Links(name)
    assert not netns_exists(name)


def test_tap_for_a_domain_nic(lab: Lab) -> None:
    with Links(lab.host) as links:
        links.add_bridge("vkbr-t", mtu=1400)
    guest_mac = "52:54:00:d1:ef:74"
    create_tap("vnet0", "vkbr-t", owner=65534, group=65534, mac=tap_mac(guest_mac), netns=lab.host)
    detail = run(lab.host, "ip", "-d", "link", "show", "vnet0").stdout
    assert "master vkbr-t" in detail and "mtu 1400" in detail
    assert "tun type tap pi off vnet_hdr on persist on user nobody group nogroup" in detail
    assert "fe:54:00:d1:ef:74" in detail
    with pytest.raises(Conflict, match="interface 'vnet0' already exists"):
        create_tap("vnet0", "vkbr-t", netns=lab.host)
    assert delete_tap("vnet0", netns=lab.host) is True
    assert delete_tap("vnet0", netns=lab.host) is False
    with pytest.raises(NotFound, match="no bridge named 'vkbr-none'"):
        create_tap("vnet1", "vkbr-none", netns=lab.host)
    with pytest.raises(InvalidConfig, match="'up0' is not a bridge"):
        create_tap("vnet1", "up0", netns=lab.host)
    with Links(lab.host) as links:
        assert links.get("vnet1") is None  # nothing half made


def test_tap_rolled_back_when_enslaving_fails(lab: Lab) -> None:
    with Links(lab.host) as links:
        links.add_bridge("vkbr-t")
    with pytest.raises(NetlinkFailed):
        create_tap("vnet2", "vkbr-t", mtu=70000, netns=lab.host)  # the kernel refuses the MTU
    with Links(lab.host) as links:
        assert links.get("vnet2") is None


def test_netns_create_list_and_run_inside(lab: Lab) -> None:
    assert lab.host in list_netns()
    with pytest.raises(Conflict, match="already exists"):
        create_netns(lab.host)
    forward = Path("/proc/sys/net/ipv4/ip_forward")
    assert run_in_netns(lab.host, forward.read_text) == "0\n"
    with pytest.raises(ZeroDivisionError):
        run_in_netns(lab.host, lambda: 1 // 0)
    with pytest.raises(NotFound):
        run_in_netns(f"{lab.tag}-missing", lambda: None)
    write_sysctl(IPV4_FORWARD, "1", lab.host)
    assert read_sysctl(IPV4_FORWARD, lab.host) == "1"
    assert run(lab.upstream, "cat", "/proc/sys/net/ipv4/ip_forward").stdout == "0\n"
    write_sysctl(IPV4_FORWARD, "0", lab.host)


def test_routes_neighbours_and_stats(lab: Lab) -> None:
    with Links(lab.host) as links:
        links.add_route(ip_network("10.231.8.0/24"), gateway=ip_address("198.51.100.2"))
        assert Route(ip_network("10.231.8.0/24"), "up0", ip_address("198.51.100.2")) in (
            links.routes()
        )
        links.delete_route(ip_network("10.231.8.0/24"), gateway=ip_address("198.51.100.2"))
        assert all(r.dst != ip_network("10.231.8.0/24") for r in links.routes())
        links.add_address("up0", ip_interface("198.51.100.9/24"))
        links.delete_address("up0", ip_interface("198.51.100.9/24"))
        assert ("up0", ip_interface("198.51.100.9/24")) not in links.addresses()
    assert lab.ping(lab.host, "198.51.100.2")
    with Links(lab.host) as links:
        with Links(lab.upstream) as up:
            upstream_mac = (up.get("eth0") or pytest.fail("no eth0")).mac
        assert (
            Neighbour("up0", ip_address("198.51.100.2"), upstream_mac or "") in links.neighbours()
        )
        stats = links.stats("up0")
        assert stats.tx_packets >= 1 and stats.rx_packets >= 1 and stats.tx_bytes > 0


def _attach_as(uid: int, name: str) -> str:
    """Open tap `name` as QEMU -runas would: as `uid`, IFF_TAP | IFF_NO_PI | IFF_VNET_HDR."""
    import fcntl
    import os
    import struct

    os.setgid(uid)
    os.setuid(uid)
    fd = os.open("/dev/net/tun", os.O_RDWR)
    try:
        flags = 0x0002 | 0x1000 | 0x4000
        fcntl.ioctl(fd, 0x400454CA, struct.pack("16sH22x", name.encode(), flags))
        return "attached"
    except OSError as e:
        return f"refused: {e.strerror}"
    finally:
        os.close(fd)


def test_owned_tap_can_be_opened_by_its_owner_only(lab: Lab) -> None:
    with Links(lab.host) as links:
        links.add_bridge("vkbr-t")
    create_tap("vnet0", "vkbr-t", owner=65534, group=65534, netns=lab.host)
    assert run_in_netns(lab.host, lambda: _attach_as(65534, "vnet0")) == "attached"
    assert run_in_netns(lab.host, lambda: _attach_as(65533, "vnet0")).startswith("refused")
    delete_tap("vnet0", netns=lab.host)
