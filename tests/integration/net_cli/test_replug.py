"""A network started again takes back the taps of the domains still running on it: a real tiny
guest on a NAT network, `net-destroy` (allowed with a domain attached, as in libvirt) then
`net-start`, and `net-start --force` after the bridge was deleted behind vmkit's back; each time
the guest's tap is a port of the new bridge again, the guest gets a DHCP lease and pings the
bridge. Everything runs inside the throwaway namespaces of vmnetlab.NetLab."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator

import pytest
from vmnetlab import NetLab, nic_xml, ns_run

from vmkit.guest import GuestImage

pytestmark = pytest.mark.integration

NEEDED = ["ip", "nft", "dnsmasq", "busybox"]
NET, BRIDGE, GATEWAY = "t-replug", "vkbr-rp", "10.232.9.1"
MAC = "52:54:00:e2:09:01"
NET_XML = (
    f"<network><name>{NET}</name><forward mode='nat'/><bridge name='{BRIDGE}' stp='off'/>"
    f"<ip address='{GATEWAY}' netmask='255.255.255.0'>"
    "<dhcp><range start='10.232.9.100' end='10.232.9.199'/></dhcp></ip></network>"
)
# a fresh lease (the boot-time udhcpc is stopped first), then one ping of the bridge
RENEW = (
    "kill $(pidof udhcpc) 2>/dev/null; ip -4 addr flush dev eth0; "
    "udhcpc -i eth0 -n -q -t 10 -T 1 -s /etc/udhcpc.script >/dev/null 2>&1; "
    "echo ADDR $(ip -4 -o addr show dev eth0 | grep -o 'inet [0-9.]*'); "
    f"ping -c 1 -W 3 {GATEWAY} >/dev/null 2>&1 && echo PING ok || echo PING failed"
)


@pytest.fixture
def lab(tiny_guest: GuestImage) -> Iterator[NetLab]:
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root")
    missing = [tool for tool in NEEDED if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"missing tools: {', '.join(missing)}")
    with NetLab(tiny_guest) as lab:
        yield lab


def _link(lab: NetLab, dev: str) -> str:
    return ns_run(lab.host, "ip", "-d", "link", "show", dev).stdout


def _renew_and_ping(lab: NetLab) -> tuple[str, str]:
    out = lab.vk.guest("g1", RENEW, timeout=60)
    addr = re.search(r"^ADDR ?(.*)$", out, re.M)
    ping = re.search(r"^PING (\w+)$", out, re.M)
    assert addr and ping, out
    return addr.group(1).strip(), ping.group(1)


def _assert_plugged(lab: NetLab, tap: str) -> None:
    link = _link(lab, tap)
    assert f"master {BRIDGE} " in link and ",UP" in link, link
    addr, ping = _renew_and_ping(lab)
    assert addr.startswith("inet 10.232.9."), addr
    assert ping == "ok"
    assert MAC in lab.vk.ok("net-dhcp-leases", NET)


def test_taps_are_replugged_when_the_network_starts_again(lab: NetLab) -> None:
    vk = lab.vk
    net_xml = lab.root / "net.xml"
    net_xml.write_text(NET_XML)
    vk.ok("net-define", str(net_xml))
    lab.networks.append(NET)
    vk.ok("net-start", NET)
    vk.ok("define", str(vk.domain_xml("g1", memory_mib=128, devices=nic_xml(NET, MAC))))
    lab.domains.append("g1")
    vk.ok("start", "g1")
    vk.wait_booted("g1", timeout=120)
    rows = [line.split() for line in vk.ok("domiflist", "g1").splitlines()]
    tap = next(row[0] for row in rows if MAC in row)
    _assert_plugged(lab, tap)

    # net-destroy with a running domain on the network: allowed; the tap stays, masterless
    vk.ok("net-destroy", NET)
    assert "master" not in _link(lab, tap)
    assert ns_run(lab.host, "ip", "link", "show", BRIDGE, check=False).returncode != 0
    vk.ok("net-start", NET)
    _assert_plugged(lab, tap)

    # the bridge deleted behind vmkit's back: net-start --force makes it again, with the tap
    ns_run(lab.host, "ip", "link", "del", BRIDGE)
    assert "master" not in _link(lab, tap)
    vk.ok("net-start", "--force", NET)
    _assert_plugged(lab, tap)

    vk.ok("destroy", "g1")
    assert ns_run(lab.host, "ip", "link", "show", tap, check=False).returncode != 0
