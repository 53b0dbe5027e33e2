"""Faults and bad input for real, in throwaway namespaces: a failure half way through start is
rolled back completely; a bridge name in use, a missing forward dev, an overlapping subnet are
refused before anything is made; a killed dnsmasq is reported and brought back; live updates;
two networks share ip_forward and the last one puts it back."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import replace
from ipaddress import IPv4Address, ip_address
from pathlib import Path

import pytest
from netlab import Lab, process_gone, run, tcp_get

from vmkit.errors import Conflict, FirewallFailed, NetworkError, NotFound
from vmkit.model.network import (
    DhcpHost,
    Network,
    PortForward,
    Proto,
    add_dhcp_host,
    add_port_forward,
)
from vmkit.net.host import SystemHost
from vmkit.net.netns import netns_argv
from vmkit.net.nft import Nft
from vmkit.net.realise import check_network, refresh_network, start_network, stop_network
from vmkit.xml.network import parse_network

pytestmark = pytest.mark.integration

DATA = Path(__file__).parents[2] / "data" / "network"


def _nat(name: str = "t-nat", bridge: str = "vkbr-nat", third: int = 1, extra: str = "") -> Network:
    return parse_network(
        f"<network><name>{name}</name><forward mode='nat'/><bridge name='{bridge}' stp='off'/>"
        f"{extra}<ip address='10.231.{third}.1' prefix='24'><dhcp>"
        f"<range start='10.231.{third}.100' end='10.231.{third}.199'/></dhcp></ip></network>"
    )


def test_firewall_failure_rolls_back_everything(lab: Lab, run_dir: Path) -> None:
    before = lab.snapshot(run_dir)
    host = SystemHost(run_dir, lab.host)
    host.nft = Nft(lab.host, binary="/bin/false")
    with pytest.raises(FirewallFailed):
        start_network(_nat(), run_dir, lab.host, host=host)
    assert lab.snapshot(run_dir) == before


def test_dnsmasq_failure_rolls_back_everything(lab: Lab, run_dir: Path) -> None:
    """The last step fails for real: something else holds port 53 of the host namespace."""
    squatter = subprocess.Popen(
        netns_argv(
            lab.host,
            [
                sys.executable,
                "-c",
                "import socket,time\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
                "s.bind(('0.0.0.0',53))\nprint('ready',flush=True)\ntime.sleep(120)",
            ],
        ),
        stdout=subprocess.PIPE,
        text=True,
    )
    lab.processes.append(squatter)
    assert squatter.stdout is not None and squatter.stdout.readline().strip() == "ready"
    before = lab.snapshot(run_dir)
    with pytest.raises(NetworkError, match=r"dnsmasq failed to start .*Address (already )?in use"):
        start_network(_nat(), run_dir, lab.host)
    assert lab.snapshot(run_dir) == before  # ip_forward back to 0, no table, no bridge, no file


def test_bad_host_state_is_refused_before_anything_is_made(lab: Lab, run_dir: Path) -> None:
    run(lab.host, "ip", "link", "add", "vkbr-nat", "type", "bridge")
    before = lab.snapshot(run_dir)
    with pytest.raises(Conflict, match="bridge name 'vkbr-nat' is already in use"):
        start_network(_nat(), run_dir, lab.host)
    routed = parse_network(
        "<network><name>t-rt</name><forward mode='route' dev='eth9'/><bridge name='vkbr-rt'/>"
        "<ip address='10.231.2.1' prefix='24'/></network>"
    )
    with pytest.raises(NotFound, match="forward dev 'eth9' of network 't-rt' does not exist"):
        start_network(routed, run_dir, lab.host)
    clash = parse_network(
        "<network><name>t-clash</name><bridge name='vkbr-c'/>"
        "<ip address='198.51.100.129' prefix='25'/></network>"
    )
    with pytest.raises(Conflict) as err:
        start_network(clash, run_dir, lab.host)
    assert str(err.value) == (
        "network 't-clash': subnet 198.51.100.128/25 overlaps route 198.51.100.0/24 dev up0; "
        "subnet 198.51.100.128/25 overlaps address 198.51.100.1/24 of up0"
    )
    bridged = parse_network(
        "<network><name>t-br</name><forward mode='bridge'/><bridge name='br-none'/></network>"
    )
    with pytest.raises(NotFound, match="bridge 'br-none' of network 't-br' does not exist"):
        start_network(bridged, run_dir, lab.host)
    assert lab.snapshot(run_dir) == before


def test_killed_dnsmasq_is_reported_and_brought_back(lab: Lab, run_dir: Path) -> None:
    net = _nat()
    rt = lab.start(net, run_dir)
    assert check_network(rt) == []
    assert rt.dnsmasq is not None
    old_pid = rt.dnsmasq.pid
    os.kill(old_pid, signal.SIGKILL)
    assert process_gone(old_pid)
    assert check_network(rt) == [f"dnsmasq (pid {old_pid}) is not running"]
    rt2 = refresh_network(rt, net)
    lab.runtimes.append(rt2)
    assert rt2.dnsmasq is not None and rt2.dnsmasq.pid != old_pid
    assert check_network(rt2) == []
    guest = lab.add_guest("g1", "vkbr-nat", "52:54:00:00:01:10")
    assert lab.dhcp(guest) is not None
    lab.unplug_guest("g1")
    stop_network(rt2)
    assert process_gone(rt2.dnsmasq.pid) if rt2.dnsmasq else True
    assert sorted(run_dir.rglob("*")) == []


def test_live_update_of_hosts_and_port_forwards(lab: Lab, run_dir: Path) -> None:
    net = _nat()
    rt = lab.start(net, run_dir)
    mac = "52:54:00:00:01:33"
    net2 = add_dhcp_host(net, DhcpHost(ip_address("10.231.1.33"), mac=mac, name="g1"))
    net2 = add_port_forward(net2, PortForward(Proto.TCP, 2222, IPv4Address("10.231.1.33"), 22))
    rt = refresh_network(rt, net2)
    lab.runtimes.append(rt)
    guest = lab.add_guest("g1", "vkbr-nat", mac)
    assert str(lab.dhcp(guest)) == "10.231.1.33/24"
    lab.serve(guest, 22, "sshd")
    assert tcp_get(lab.upstream, "198.51.100.1", 2222) == "sshd 198.51.100.2"
    rt = refresh_network(rt, replace(net2, port_forwards=()))
    lab.runtimes.append(rt)
    assert tcp_get(lab.upstream, "198.51.100.1", 2222) is None
    lab.unplug_guest("g1")
    stop_network(rt)


def test_two_networks_share_ip_forward(lab: Lab, run_dir: Path) -> None:
    def forward() -> str:
        return run(lab.host, "cat", "/proc/sys/net/ipv4/ip_forward").stdout.strip()

    assert forward() == "0"
    a = lab.start(_nat("t-a", "vkbr-a", 1), run_dir)
    b = lab.start(_nat("t-b", "vkbr-b", 2), run_dir)
    assert forward() == "1"
    stop_network(a)
    assert forward() == "1"
    assert (run_dir / f"forwarding-{lab.host}.json").exists()
    stop_network(b)
    assert forward() == "0"
    assert sorted(run_dir.rglob("*")) == []


def test_forwarding_found_on_is_left_on(lab: Lab, run_dir: Path) -> None:
    run(lab.host, "sysctl", "-qw", "net.ipv4.ip_forward=1")
    rt = lab.start(_nat(), run_dir)
    stop_network(rt)
    assert run(lab.host, "cat", "/proc/sys/net/ipv4/ip_forward").stdout == "1\n"


@pytest.mark.parametrize("case", sorted(p.stem for p in (DATA / "nft").glob("*.nft")))
def test_golden_rulesets_load_in_the_kernel(lab: Lab, case: str) -> None:
    """`nft -c`: the kernel accepts every golden ruleset (checked, never committed)."""
    proc = run(lab.host, "nft", "-c", "-f", str(DATA / "nft" / f"{case}.nft"), check=False)
    assert proc.returncode == 0, proc.stderr
