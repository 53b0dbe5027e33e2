"""NIC hot-plug on real tiny guests, inside a throwaway network namespace holding a bridge:
attach-interface / detach-interface (live, config, persistent across a restart), the guest
seeing and using the NIC, the tap coming and going on the host, and the refusals (missing
bridge, duplicate MAC, microvm, ambiguous detach) leaving nothing behind."""

from __future__ import annotations

import json
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from vmnetlab import NsVmkit

from vmkit.guest import GuestImage

pytestmark = pytest.mark.integration

BRIDGE = "br0"
HOST_IP = "172.30.77.1"  # inside the test's own namespace only
GUEST_IP = "172.30.77.2"


def _ip(*argv: str) -> str:
    assert argv[0] in ("-n", "netns"), argv  # never a change in the root namespace
    r = subprocess.run(["ip", *argv], capture_output=True, text=True, timeout=30, check=False)
    assert r.returncode == 0, f"ip {' '.join(argv)}: {r.stderr}"
    return r.stdout


@pytest.fixture
def vk(tiny_guest: GuestImage) -> Iterator[NsVmkit]:
    """vmkit running inside a new namespace with a bridge br0 (HOST_IP/24); all of it, and every
    QEMU started, is gone afterwards."""
    ns = f"vkif-{secrets.token_hex(4)}"
    root = Path(tempfile.mkdtemp(prefix="vk"))
    env = NsVmkit(root, tiny_guest, netns=ns)
    _ip("netns", "add", ns)
    try:
        _ip("-n", ns, "link", "set", "lo", "up")
        _ip("-n", ns, "link", "add", BRIDGE, "type", "bridge")
        _ip("-n", ns, "addr", "add", f"{HOST_IP}/24", "dev", BRIDGE)
        _ip("-n", ns, "link", "set", BRIDGE, "up")
        yield env
    finally:
        env.kill_all()
        subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False)
        shutil.rmtree(root, ignore_errors=True)


def boot(vk: NsVmkit, name: str, *, machine: str = "q35") -> None:
    vk.ok("define", str(vk.domain_xml(name, machine=machine)))
    vk.ok("start", name)
    vk.wait_booted(name)


def host_links(vk: NsVmkit) -> dict[str, str]:
    """Link name -> its master ('' when none) in the test's namespace."""
    out = json.loads(_ip("-n", vk.netns, "-j", "link", "show"))
    return {link["ifname"]: link.get("master", "") for link in out}


def guest_nics(vk: NsVmkit, name: str) -> list[str]:
    return sorted(set(vk.guest(name, "ls /sys/class/net").split()) - {"lo"})


def wait_guest_nics(vk: NsVmkit, name: str, want: list[str], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    seen = guest_nics(vk, name)
    while seen != want and time.monotonic() < deadline:
        time.sleep(0.3)
        seen = guest_nics(vk, name)
    assert seen == want, f"guest NICs {seen}, want {want}"


def iflist(vk: NsVmkit, name: str, *flags: str) -> list[dict[str, str]]:
    rows: list[dict[str, str]] = vk.json("domiflist", name, *flags)
    return rows


def ping_from_guest(vk: NsVmkit, name: str, dev: str) -> str:
    vk.guest(name, f"ip addr add {GUEST_IP}/24 dev {dev}; ip link set {dev} up")
    out = ""
    for _ in range(5):  # the link may need a moment to come up
        out = vk.guest(name, f"ping -c 1 -W 2 {HOST_IP}", timeout=15)
        if " 0% packet loss" in out:
            break
    return out


def test_attach_use_detach_live_on_q35(vk: NsVmkit) -> None:
    boot(vk, "vm")
    assert guest_nics(vk, "vm") == []
    out = vk.ok("attach-interface", "vm", "bridge", BRIDGE, "--model", "virtio", "--live")
    assert out == "Interface attached successfully\n\n"
    wait_guest_nics(vk, "vm", ["eth0"])
    [row] = iflist(vk, "vm")
    tap, mac = row["interface"], row["mac"]
    assert (row["type"], row["source"], row["model"]) == ("bridge", BRIDGE, "virtio")
    assert host_links(vk).get(tap) == BRIDGE
    assert mac in vk.guest("vm", "cat /sys/class/net/eth0/address")
    assert " 0% packet loss" in ping_from_guest(vk, "vm", "eth0")
    assert "<interface" in vk.ok("dumpxml", "vm")
    assert "<interface" not in vk.ok("dumpxml", "--inactive", "vm")

    # a second NIC; then the first goes and the second (moved up in the XML) still detaches
    vk.ok("attach-interface", "vm", "--type", "bridge", "--source", BRIDGE, "--model", "virtio")
    wait_guest_nics(vk, "vm", ["eth0", "eth1"])
    rows = iflist(vk, "vm")
    assert rows[0]["mac"] == mac and len({r["interface"] for r in rows}) == 2
    mac2, tap2 = rows[1]["mac"], rows[1]["interface"]
    vk.fails(2, "detach-interface", "vm", "bridge", match="Domain has 2 interfaces")
    assert vk.ok("detach-interface", "vm", "bridge", "--mac", mac, "--live") == (
        "Interface detached successfully\n\n"
    )
    wait_guest_nics(vk, "vm", ["eth1"])
    assert tap not in host_links(vk) and tap2 in host_links(vk)
    assert [(r["interface"], r["mac"]) for r in iflist(vk, "vm")] == [(tap2, mac2)]
    vk.ok("detach-interface", "vm", "bridge", "--mac", mac2)
    wait_guest_nics(vk, "vm", [])
    assert tap2 not in host_links(vk) and iflist(vk, "vm") == []

    # and again: the ids are free for reuse
    vk.ok("attach-interface", "vm", "bridge", BRIDGE, "--model", "virtio", "--mac", mac)
    wait_guest_nics(vk, "vm", ["eth0"])  # the kernel takes the lowest free name
    vk.ok("destroy", "vm")
    assert not any(name.startswith("vk") for name in host_links(vk))


def test_config_only_changes_the_next_boot(vk: NsVmkit) -> None:
    boot(vk, "vm")
    vk.ok("attach-interface", "vm", "bridge", BRIDGE, "--model", "virtio", "--config")
    assert "<interface type='bridge'>" in vk.ok("dumpxml", "--inactive", "vm")
    assert "<interface" not in vk.ok("dumpxml", "vm")
    assert iflist(vk, "vm") == [] and guest_nics(vk, "vm") == []
    [row] = iflist(vk, "vm", "--inactive")
    vk.ok("detach-interface", "vm", "bridge", "--config")
    assert "<interface" not in vk.ok("dumpxml", "--inactive", "vm")
    assert row["source"] == BRIDGE


def test_persistent_attach_survives_restart_and_detaches(vk: NsVmkit) -> None:
    boot(vk, "vm")
    vk.ok("attach-interface", "vm", "bridge", BRIDGE, "--model", "virtio", "--persistent")
    wait_guest_nics(vk, "vm", ["eth0"])
    [before] = iflist(vk, "vm")
    vk.ok("destroy", "vm")
    assert before["interface"] not in host_links(vk)
    vk.ok("start", "vm")
    vk.wait_booted("vm", count=2)
    wait_guest_nics(vk, "vm", ["eth0"])
    [after] = iflist(vk, "vm")
    assert after["mac"] == before["mac"] and host_links(vk).get(after["interface"]) == BRIDGE
    vk.ok("detach-interface", "vm", "bridge", "--persistent")
    wait_guest_nics(vk, "vm", [])
    assert after["interface"] not in host_links(vk)
    assert "<interface" not in vk.ok("dumpxml", "--inactive", "vm")


def test_user_nic_on_pc(vk: NsVmkit) -> None:
    boot(vk, "vm", machine="pc")
    vk.ok("attach-interface", "vm", "user", "--model", "virtio", "--live")
    wait_guest_nics(vk, "vm", ["eth0"])
    assert [r["type"] for r in iflist(vk, "vm")] == ["user"]
    vk.ok("detach-interface", "vm", "user", "--live")
    wait_guest_nics(vk, "vm", [])


def test_refusals_leave_nothing_behind(vk: NsVmkit) -> None:
    boot(vk, "vm")
    before = host_links(vk)
    vk.fails(3, "attach-interface", "vm", "bridge", "nobr", "--live", match="bridge 'nobr'")
    vk.fails(3, "attach-interface", "vm", "network", "nonet", match="network 'nonet' not found")
    vk.fails(2, "attach-interface", "vm", "bridge", match="needs a source")
    net = vk.root / "off.xml"
    net.write_text("<network><name>off</name><bridge name='vkoff0'/>"
                   "<ip address='172.30.78.1' netmask='255.255.255.0'/></network>")  # fmt: skip
    vk.ok("net-define", str(net))
    vk.fails(5, "attach-interface", "vm", "network", "off", "--live",
             match="network 'off' is not active")  # fmt: skip
    assert host_links(vk) == before and iflist(vk, "vm") == []
    vk.ok("attach-interface", "vm", "bridge", BRIDGE, "--model", "virtio")
    [row] = iflist(vk, "vm")
    links = host_links(vk)
    vk.fails(4, "attach-interface", "vm", "bridge", BRIDGE, "--mac", row["mac"],
             match="already used")  # fmt: skip
    script = vk.root / "ifup"
    script.write_text("#!/bin/sh\necho no such uplink >&2\nexit 3\n")
    script.chmod(0o755)
    vk.fails(1, "attach-interface", "vm", "ethernet", "--script", str(script),
             match="exited with code 3: no such uplink")  # fmt: skip
    assert host_links(vk) == links and len(iflist(vk, "vm")) == 1
    # neither the tap nor QEMU's backend of the failed attach is left: the same ids work now
    vk.ok("attach-interface", "vm", "ethernet", "--model", "virtio")
    wait_guest_nics(vk, "vm", ["eth0", "eth1"])
    vk.fails(3, "detach-interface", "vm", "bridge", "--mac", "52:54:00:00:00:01",
             match="No interface with MAC address")  # fmt: skip

    vk.ok("define", str(vk.domain_xml("micro", machine="microvm")))
    vk.ok("start", "micro")
    vk.fails(5, "attach-interface", "micro", "user", "--live", match="microvm")
    vk.ok("attach-interface", "micro", "user", "--model", "virtio", "--config")
    assert "<interface type='user'>" in vk.ok("dumpxml", "--inactive", "micro")
