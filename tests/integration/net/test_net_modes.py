"""Each network model for real, inside a throwaway host namespace with an upstream namespace:
guests (namespaces plugged into the bridge) get DHCP leases, the reach / no-reach matrix holds
exactly, a port forward carries TCP from upstream into a guest, and after stop the host namespace
holds exactly what it held before (links, addresses, routes, nft ruleset, ip_forward, files)."""

from __future__ import annotations

import difflib
from ipaddress import IPv4Interface, ip_interface
from pathlib import Path

import pytest
from netlab import Lab, process_gone, run, tcp_get

from vmkit.model.network import Bridge, Dhcp, DhcpRange, Ip, Network
from vmkit.net.dnsmasq import DnsmasqFiles, read_leases, render_dnsmasq_conf, start_dnsmasq
from vmkit.net.links import Links
from vmkit.net.realise import stop_network
from vmkit.xml.network import parse_network

pytestmark = pytest.mark.integration

UPSTREAM = "198.51.100.2"
NS = "xmlns:vmkit='https://vmkit.dev/xml/network/1'"


def _net(name: str, bridge: str, body: str, forward: str = "") -> Network:
    return parse_network(
        f"<network><name>{name}</name>{forward}<bridge name='{bridge}' stp='off'/>{body}</network>"
    )


def _dhcp_ip(third: int, hosts: str = "") -> str:
    return (
        f"<ip address='10.231.{third}.1' prefix='24'><dhcp>"
        f"<range start='10.231.{third}.100' end='10.231.{third}.199'/>{hosts}</dhcp></ip>"
    )


def _matrix(lab: Lab, g1: str, g2: str, ip1: str, ip2: str, host_ip: str | None) -> dict[str, bool]:
    reach = {
        "guest->guest": lab.ping(g1, ip2) and lab.ping(g2, ip1),
        "guest->upstream": lab.ping(g1, UPSTREAM),
        "upstream->guest": lab.ping(lab.upstream, ip1),
    }
    if host_ip is not None:
        reach["guest->host"] = lab.ping(g1, host_ip)
        reach["host->guest"] = lab.ping(lab.host, ip1)
    return reach


def _two_guests(lab: Lab, bridge: str, third: int) -> tuple[str, str, IPv4Interface, IPv4Interface]:
    g1 = lab.add_guest("g1", bridge, f"52:54:00:00:{third:02x}:10")
    g2 = lab.add_guest("g2", bridge, f"52:54:00:00:{third:02x}:20")
    a1, a2 = lab.dhcp(g1), lab.dhcp(g2)
    assert a1 is not None and a2 is not None, "no DHCP lease"
    return g1, g2, a1, a2


def _finish(lab: Lab, run_dir: Path, before: dict[str, object], *guests: str) -> None:
    for name in guests:
        lab.unplug_guest(name)
    for rt in lab.runtimes:
        pid = rt.dnsmasq.pid if rt.dnsmasq else None
        stop_network(rt)
        assert pid is None or process_gone(pid), f"dnsmasq {pid} still running"
    after = lab.snapshot(run_dir)
    for key, value in before.items():
        diff = difflib.unified_diff(
            str(value).splitlines(), str(after[key]).splitlines(), lineterm=""
        )
        assert after[key] == value, f"{key} changed:\n" + "\n".join(diff)


def test_nat(lab: Lab, run_dir: Path) -> None:
    net = _net(
        "t-nat",
        "vkbr-nat",
        _dhcp_ip(1, "<host mac='52:54:00:00:01:10' ip='10.231.1.10' name='g1'/>")
        + f"<metadata><vmkit:port-forward {NS} proto='tcp' host-port='8080' "
        "guest-ip='10.231.1.10' guest-port='80'/></metadata>",
        "<forward mode='nat'/>",
    )
    before = lab.snapshot(run_dir)
    rt = lab.start(net, run_dir)
    assert run(lab.host, "cat", "/proc/sys/net/ipv4/ip_forward").stdout == "1\n"
    lab.route_upstream_to("10.231.1.0/24")  # upstream even knows the way: only nft stops it
    g1, g2, a1, a2 = _two_guests(lab, "vkbr-nat", 1)
    assert a1 == ip_interface("10.231.1.10/24")  # the static host
    assert a2.network == a1.network and 100 <= int(a2.ip) & 0xFF <= 199
    leases = {lease.mac: str(lease.ip) for lease in read_leases(rt.dnsmasq_files.leases)}
    assert leases == {"52:54:00:00:01:10": "10.231.1.10", "52:54:00:00:01:20": str(a2.ip)}
    ip1, ip2 = str(a1.ip), str(a2.ip)
    assert _matrix(lab, g1, g2, ip1, ip2, "10.231.1.1") == {
        "guest->guest": True,
        "guest->upstream": True,
        "upstream->guest": False,
        "guest->host": True,
        "host->guest": True,
    }
    lab.serve(lab.upstream, 7000, "upstream")
    assert tcp_get(g1, UPSTREAM, 7000) == "upstream 198.51.100.1"  # masqueraded
    lab.serve(g1, 80, "g1")
    assert tcp_get(lab.upstream, ip1, 80) is None  # not directly
    assert tcp_get(lab.upstream, "198.51.100.1", 8080) == "g1 198.51.100.2"  # port forward
    _finish(lab, run_dir, before, "g1", "g2")


def test_route(lab: Lab, run_dir: Path) -> None:
    net = _net("t-route", "vkbr-rt", _dhcp_ip(2), "<forward mode='route' dev='up0'/>")
    before = lab.snapshot(run_dir)
    lab.start(net, run_dir)
    lab.route_upstream_to("10.231.2.0/24")
    g1, g2, a1, a2 = _two_guests(lab, "vkbr-rt", 2)
    ip1, ip2 = str(a1.ip), str(a2.ip)
    assert all(_matrix(lab, g1, g2, ip1, ip2, "10.231.2.1").values())
    lab.serve(lab.upstream, 7000, "upstream")
    assert tcp_get(g1, UPSTREAM, 7000) == f"upstream {ip1}"  # routed, not masqueraded
    _finish(lab, run_dir, before, "g1", "g2")


def test_open(lab: Lab, run_dir: Path) -> None:
    net = _net("t-open", "vkbr-open", _dhcp_ip(3), "<forward mode='open'/>")
    before = lab.snapshot(run_dir)
    lab.start(net, run_dir)
    assert run(lab.host, "nft", "list", "ruleset").stdout == ""  # open: no rules at all
    lab.route_upstream_to("10.231.3.0/24")
    g1, g2, a1, a2 = _two_guests(lab, "vkbr-open", 3)
    assert all(_matrix(lab, g1, g2, str(a1.ip), str(a2.ip), "10.231.3.1").values())
    _finish(lab, run_dir, before, "g1", "g2")


def test_host_only(lab: Lab, run_dir: Path) -> None:
    net = _net("t-ho", "vkbr-ho", _dhcp_ip(4))
    before = lab.snapshot(run_dir)
    lab.start(net, run_dir)
    run(lab.host, "sysctl", "-qw", "net.ipv4.ip_forward=1")  # so that only nft stops it
    lab.route_upstream_to("10.231.4.0/24")
    g1, g2, a1, a2 = _two_guests(lab, "vkbr-ho", 4)
    assert _matrix(lab, g1, g2, str(a1.ip), str(a2.ip), "10.231.4.1") == {
        "guest->guest": True,
        "guest->upstream": False,
        "upstream->guest": False,
        "guest->host": True,
        "host->guest": True,
    }
    run(lab.host, "sysctl", "-qw", "net.ipv4.ip_forward=0")
    _finish(lab, run_dir, before, "g1", "g2")


def test_isolated(lab: Lab, run_dir: Path) -> None:
    net = _net("t-iso", "vkbr-iso", "")
    before = lab.snapshot(run_dir)
    lab.start(net, run_dir)
    run(lab.host, "sysctl", "-qw", "net.ipv4.ip_forward=1")
    g1 = lab.add_guest("g1", "vkbr-iso", "52:54:00:00:09:10")
    g2 = lab.add_guest("g2", "vkbr-iso", "52:54:00:00:09:20")
    assert lab.dhcp(g1, tries=2) is None  # nobody serves DHCP on an isolated network
    lab.set_address(g1, "10.231.9.11/24", default_dev=True)
    lab.set_address(g2, "10.231.9.12/24", default_dev=True)
    # the host answers ARP for its upstream address on any link: only nft keeps guests out
    assert _matrix(lab, g1, g2, "10.231.9.11", "10.231.9.12", "198.51.100.1") == {
        "guest->guest": True,
        "guest->upstream": False,
        "upstream->guest": False,
        "guest->host": False,
        "host->guest": False,
    }
    run(lab.host, "sysctl", "-qw", "net.ipv4.ip_forward=0")
    _finish(lab, run_dir, before, "g1", "g2")


def test_isolated_with_dhcp(lab: Lab, run_dir: Path) -> None:
    """<vmkit:isolated/>: a DHCP lease from the host's dnsmasq, and nothing else with the host."""
    net = _net("t-isd", "vkbr-isd", f"<metadata><vmkit:isolated {NS}/></metadata>" + _dhcp_ip(10))
    assert net.isolated
    before = lab.snapshot(run_dir)
    rt = lab.start(net, run_dir)
    run(lab.host, "sysctl", "-qw", "net.ipv4.ip_forward=1")  # so that only nft stops it
    lab.route_upstream_to("10.231.10.0/24")
    g1, g2, a1, a2 = _two_guests(lab, "vkbr-isd", 10)
    assert a1.network == a2.network == ip_interface("10.231.10.0/24").network
    leases = {lease.mac for lease in read_leases(rt.dnsmasq_files.leases)}
    assert leases == {"52:54:00:00:0a:10", "52:54:00:00:0a:20"}
    assert run(g1, "ip", "route", "show", "default").stdout == ""  # no router offered
    for guest in (g1, g2):  # a way out through the host anyway: only nft may stop it
        run(guest, "ip", "route", "add", "default", "via", "10.231.10.1")
    ip1, ip2 = str(a1.ip), str(a2.ip)
    assert _matrix(lab, g1, g2, ip1, ip2, "10.231.10.1") == {
        "guest->guest": True,
        "guest->upstream": False,
        "upstream->guest": False,
        "guest->host": False,
        "host->guest": False,
    }
    lab.serve(lab.host, 7000, "host")
    lab.serve(g2, 7001, "g2")
    lab.serve(g1, 7002, "g1")
    assert tcp_get(g1, ip2, 7001) == f"g2 {ip1}"  # guest -> guest over TCP
    assert tcp_get(g1, "10.231.10.1", 7000, timeout=1) is None  # guest -> host listener
    assert tcp_get(lab.host, "10.231.10.1", 7000) == "host 10.231.10.1"  # it does listen
    assert tcp_get(lab.host, ip1, 7002, timeout=1) is None  # host -> guest
    run(lab.host, "sysctl", "-qw", "net.ipv4.ip_forward=0")
    _finish(lab, run_dir, before, "g1", "g2")


def test_bridge_to_an_existing_bridge(lab: Lab, run_dir: Path, tmp_path: Path) -> None:
    """The LAN (upstream) is on the host bridge br-lan and serves DHCP itself."""
    with Links(lab.host) as links:
        links.add_bridge("br-lan")
        links.set_up("br-lan")
        links.add_veth("lan0", "eth1", peer_netns=lab.upstream)
        links.set_master("lan0", "br-lan")
        links.set_up("lan0")
    with Links(lab.upstream) as links:
        links.add_address("eth1", ip_interface("172.31.9.1/24"))
        links.set_up("eth1")
    lan = Network(
        name="lan-dhcp",
        bridge=Bridge("eth1"),
        ips=(
            Ip(
                ip_interface("172.31.9.1/24").ip,
                prefix=24,
                dhcp=Dhcp(
                    (
                        DhcpRange(
                            *map(lambda a: ip_interface(a).ip, ["172.31.9.100", "172.31.9.199"])
                        ),
                    )
                ),
            ),
        ),
    )
    (tmp_path / "lan").mkdir()
    files = DnsmasqFiles.in_dir(tmp_path / "lan")
    files.conf.write_text(render_dnsmasq_conf(lan, files))
    lab.daemons.append((start_dnsmasq(files, lab.upstream), files))
    lab.wait_up(lab.host, "br-lan")

    before = lab.snapshot(run_dir)
    net = parse_network(
        "<network><name>t-br</name><forward mode='bridge'/><bridge name='br-lan'/></network>"
    )
    rt = lab.start(net, run_dir)
    assert rt.to_json()["bridge_created"] is False and rt.dnsmasq is None
    g1, _, a1, a2 = _two_guests(lab, "br-lan", 5)
    assert a1.network == ip_interface("172.31.9.0/24").network
    reach = {
        "guest->guest": lab.ping(g1, str(a2.ip)),
        "guest->lan": lab.ping(g1, "172.31.9.1"),
        "lan->guest": lab.ping(lab.upstream, str(a1.ip)),
    }
    assert reach == {"guest->guest": True, "guest->lan": True, "lan->guest": True}
    _finish(lab, run_dir, before, "g1", "g2")
    with Links(lab.host) as links:
        assert links.get("br-lan") is not None  # not ours: left alone
