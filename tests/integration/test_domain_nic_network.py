"""Domain NICs on vmkit networks, from the domain's side, in a throwaway namespace: a start on an
inactive network fails naming it and leaves nothing; the `default` network is made on first use;
a killed dnsmasq is restored by the next domain start; the tap goes when the domain stops."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from vmkit_cli import all_pids_of
from vmnetlab import NsVmkit

from vmkit.guest import GuestImage

pytestmark = pytest.mark.integration

NET_XML = """<network>
  <name>lab</name>
  <forward mode='nat'/>
  <bridge name='vklab0' stp='off'/>
  <ip address='10.233.40.1' netmask='255.255.255.0'>
    <dhcp><range start='10.233.40.100' end='10.233.40.150'/></dhcp>
  </ip>
</network>
"""


def _ip(*argv: str) -> str:
    assert argv[0] in ("-n", "netns"), argv  # never a change in the root namespace
    r = subprocess.run(["ip", *argv], capture_output=True, text=True, timeout=30, check=False)
    assert r.returncode == 0, f"ip {' '.join(argv)}: {r.stderr}"
    return r.stdout


@pytest.fixture
def vk(tiny_guest: GuestImage) -> Iterator[NsVmkit]:
    ns = f"vknic-{secrets.token_hex(4)}"
    root = Path(tempfile.mkdtemp(prefix="vk"))
    env = NsVmkit(root, tiny_guest, netns=ns)
    _ip("netns", "add", ns)
    try:
        _ip("-n", ns, "link", "set", "lo", "up")
        yield env
    finally:
        env.kill_all()
        for pid in all_pids_of(root):  # dnsmasq of our networks: their command lines name root
            os.kill(pid, signal.SIGKILL)
        subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False)
        shutil.rmtree(root, ignore_errors=True)


def _links(vk: NsVmkit) -> dict[str, str]:
    out = json.loads(_ip("-n", vk.netns, "-j", "link", "show"))
    return {link["ifname"]: link.get("master", "") for link in out}


def _nic(network: str) -> str:
    return (
        f"<interface type='network'><source network='{network}'/><model type='virtio'/></interface>"
    )


def _dnsmasq_pid(vk: NsVmkit, network: str) -> int:
    info = vk.json("net-info", network)
    pid = info.get("dnsmasq_pid")
    if pid:
        return int(pid)
    pidfile = next((vk.root / "run" / "net" / network).glob("*.pid"))
    return int(pidfile.read_text().strip())


def _wait_lease(vk: NsVmkit, name: str, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    out = ""
    while time.monotonic() < deadline:
        out = vk.ok("domifaddr", name)
        if "ipv4" in out:
            return out
        time.sleep(0.3)
    raise AssertionError(f"no lease for {name}:\n{out}")


def test_start_on_an_inactive_network_fails_naming_it(vk: NsVmkit) -> None:
    (vk.root / "lab.xml").write_text(NET_XML)
    vk.ok("net-define", str(vk.root / "lab.xml"))
    vk.ok("define", str(vk.domain_xml("vm", devices=_nic("lab"))))
    before = _links(vk)
    vk.fails(5, "start", "vm", match="network 'lab' is not active")
    assert vk.ok("domstate", "vm").strip() == "shut off"
    assert _links(vk) == before  # no tap left behind
    assert not list((vk.root / "run" / "dom").glob("*/qemu.pid"))
    vk.ok("net-start", "lab")
    vk.ok("start", "vm")
    vk.wait_booted("vm")
    taps = [n for n, master in _links(vk).items() if master == "vklab0"]
    assert len(taps) == 1, _links(vk)
    assert "10.233.40." in _wait_lease(vk, "vm")
    vk.ok("destroy", "vm")
    assert taps[0] not in _links(vk)


def test_default_network_is_made_on_first_use_and_dnsmasq_restored(vk: NsVmkit) -> None:
    vk.ok("define", str(vk.domain_xml("vm", devices=_nic("default"))))
    vk.ok("start", "vm")  # makes and starts 'default'
    assert "default" in vk.ok("net-list", "--all")
    vk.wait_booted("vm")
    _wait_lease(vk, "vm")
    vk.ok("destroy", "vm")
    pid = _dnsmasq_pid(vk, "default")
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "degraded" in vk.ok("net-list", "--all")
    vk.ok("start", "vm")  # the next domain start restores the network's dnsmasq
    assert "degraded" not in vk.ok("net-list", "--all")
    assert _dnsmasq_pid(vk, "default") != pid
    vk.ok("destroy", "vm")
