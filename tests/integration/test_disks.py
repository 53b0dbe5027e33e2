"""Disks of running tiny guests: attach/detach (live, config, persistent), change-media,
domblklist/domblkinfo/domblkstat, and the refusals (microvm, unknown target, shared image,
guest that does not let go, device_add failing after blockdev-add)."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest
from vmkit_cli import VmkitEnv

from vmkit.qemu.qmp import QmpSession

pytestmark = pytest.mark.integration

DATA = "vmkit-disk-data-42"


def image(vk: VmkitEnv, name: str, fmt: str = "raw", size: str = "16M") -> Path:
    path = vk.root / name
    subprocess.run(
        ["qemu-img", "create", "-f", fmt, str(path), size], check=True, capture_output=True
    )
    return path


def boot(vk: VmkitEnv, name: str, *, machine: str = "q35", devices: str = "") -> None:
    vk.ok("define", str(vk.domain_xml(name, machine=machine, devices=devices)))
    vk.ok("start", name)
    vk.wait_booted(name)


def guest_disks(vk: VmkitEnv, name: str) -> list[str]:
    return vk.guest(name, "ls /sys/block").split()


def media_in_qemu(vk: VmkitEnv) -> list[str | None]:
    """The file in each removable drive of the one running domain, as QEMU says (query-block)."""
    [sock] = (vk.root / "run" / "dom").glob("*/qmp.sock")
    with QmpSession.connect(sock) as qmp:
        blocks = qmp.execute("query-block")
    return [b.get("inserted", {}).get("file") for b in blocks if b.get("removable")]


def wait_guest_disks(vk: VmkitEnv, name: str, want: list[str], timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    seen = guest_disks(vk, name)
    while seen != want and time.monotonic() < deadline:
        time.sleep(0.3)
        seen = guest_disks(vk, name)
    assert seen == want, f"guest block devices {seen}, want {want}"


@pytest.mark.parametrize("machine", ["q35", "pc"])
def test_attach_write_detach_live(vk: VmkitEnv, machine: str) -> None:
    disk = image(vk, "data.raw")
    boot(vk, "vm", machine=machine)
    assert (
        vk.ok("attach-disk", "vm", str(disk), "vdb", "--live") == "Disk attached successfully\n\n"
    )
    wait_guest_disks(vk, "vm", ["vda"])  # the guest names its first virtio disk vda
    assert "16384 vda" in vk.guest("vm", "cat /proc/partitions")
    vk.guest("vm", f"echo {DATA} | dd of=/dev/vda bs=512 conv=sync 2>/dev/null; sync")
    assert "vdb" in vk.ok("domblklist", "vm")
    assert "vdb" not in vk.ok("dumpxml", "--inactive", "vm")
    stats = vk.ok("domblkstat", "vm", "vdb").splitlines()
    wr_req = int(next(line for line in stats if line.startswith("vdb wr_req ")).split()[2])
    assert wr_req >= 1, stats
    assert vk.ok("detach-disk", "vm", "vdb", "--live") == "Disk detached successfully\n\n"
    wait_guest_disks(vk, "vm", [])
    assert disk.read_bytes()[: len(DATA)] == DATA.encode()
    assert "vdb" not in vk.ok("domblklist", "vm")
    # the nodes are gone too: the same target attaches again
    vk.ok("attach-disk", "vm", str(disk), "vdb", "--live")
    wait_guest_disks(vk, "vm", ["vda"])


def test_persistent_attach_detaches_after_restart(vk: VmkitEnv) -> None:
    disk = image(vk, "p.qcow2", fmt="qcow2")
    boot(vk, "vm")
    vk.ok("attach-disk", "vm", str(disk), "vdb", "--subdriver", "qcow2", "--persistent")
    assert "vdb" in vk.ok("dumpxml", "--inactive", "vm")
    vk.ok("destroy", "vm")
    vk.ok("start", "vm")
    vk.wait_booted("vm", count=2)  # the console log keeps the first boot too
    wait_guest_disks(vk, "vm", ["vda"])
    vk.ok("detach-disk", "vm", str(disk), "--persistent")  # by source path
    wait_guest_disks(vk, "vm", [])
    assert "vdb" not in vk.ok("dumpxml", "--inactive", "vm")
    assert "vdb" not in vk.ok("domblklist", "vm")


def test_attach_device_xml_and_detach_device(vk: VmkitEnv) -> None:
    disk = image(vk, "x.raw")
    boot(vk, "vm")
    xml = vk.root / "disk.xml"
    xml.write_text(
        f"<disk type='file' device='disk'><driver name='qemu' type='raw'/>"
        f"<source file='{disk}'/><target dev='vdc' bus='virtio'/><serial>S42</serial></disk>"
    )
    assert vk.ok("attach-device", "vm", str(xml)) == "Device attached successfully\n\n"
    wait_guest_disks(vk, "vm", ["vda"])
    assert vk.guest("vm", "cat /sys/block/vda/serial") == "S42"
    assert vk.ok("detach-device", "vm", str(xml)) == "Device detached successfully\n\n"
    wait_guest_disks(vk, "vm", [])


def test_config_attach_shows_in_inactive_xml_only(vk: VmkitEnv) -> None:
    disk = image(vk, "c.raw")
    boot(vk, "vm")
    vk.ok("attach-disk", "vm", str(disk), "vdb", "--config")
    assert "vdb" in vk.ok("dumpxml", "--inactive", "vm")
    assert "vdb" not in vk.ok("dumpxml", "vm")
    assert "vdb" in vk.ok("domblklist", "--inactive", "vm")
    assert "vdb" not in vk.ok("domblklist", "vm")
    assert guest_disks(vk, "vm") == []
    vk.fails(3, "detach-disk", "vm", "vdb", "--live", match="No disk found .*'vdb'.*live")
    vk.ok("detach-disk", "vm", "vdb", "--config")
    assert "vdb" not in vk.ok("dumpxml", "--inactive", "vm")
    # a shut-off domain: --current means its config; --live is refused
    vk.ok("destroy", "vm")
    vk.fails(5, "attach-disk", "vm", str(disk), "vdb", "--live", match="not running")
    vk.ok("attach-disk", "vm", str(disk), "vdb")
    assert "vdb" in vk.ok("dumpxml", "vm")


def test_domblklist_details_and_domblkinfo(vk: VmkitEnv) -> None:
    disk = image(vk, "l.raw", size="8M")
    devices = (
        f"<disk type='file' device='disk'><source file='{disk}'/><target dev='vda'/></disk>"
        "<disk type='file' device='cdrom'><target dev='sda' bus='scsi'/><readonly/></disk>"
    )
    vk.ok("define", str(vk.domain_xml("vm", devices=devices)))
    rule = "-" * (4 + 6 + 6 + len(str(disk)) + 12)
    want = (
        " Type   Device   Target   Source\n"
        f"{rule}\n"
        f" file   disk     vda      {disk}\n"
        " file   cdrom    sda      -\n\n"
    )
    assert vk.ok("domblklist", "vm", "--details") == want
    info = vk.ok("domblkinfo", "vm", "vda")
    assert info.startswith("Capacity:       8388608\n"), info
    assert "Physical:       8388608\n" in info


def test_change_media_eject_insert(vk: VmkitEnv) -> None:
    iso = vk.root / "a.iso"
    iso.write_bytes(b"\x00" * 2048 * 64)
    cdrom = "<disk type='file' device='cdrom'><target dev='sda' bus='scsi'/><readonly/></disk>"
    boot(vk, "vm", devices=cdrom)
    vk.fails(5, "change-media", "vm", "sda", "--eject", match="doesn't have media")
    assert vk.ok("change-media", "vm", "sda", "--insert", str(iso)) == (
        "Successfully inserted media.\n\n"
    )
    assert str(iso) in vk.ok("domblklist", "vm")
    assert vk.ok("domblkinfo", "vm", "sda").startswith(f"Capacity:       {2048 * 64}\n")
    vk.fails(4, "change-media", "vm", "sda", str(iso), "--insert", match="already has media")
    assert vk.ok("change-media", "vm", "sda", "--eject") == "Successfully ejected media.\n\n"
    assert " sda      -" in vk.ok("domblklist", "vm")
    assert vk.ok("change-media", "vm", "sda", str(iso)) == "Successfully updated media.\n\n"
    assert str(iso) in vk.ok("domblklist", "vm")
    assert str(iso) not in vk.ok("dumpxml", "--inactive", "vm")  # --current: live only
    # --update replaces the media of a drive that has some; with no source it ejects (virsh)
    other = vk.root / "b.iso"
    other.write_bytes(b"VMKIT-ISO-B".ljust(2048, b"\x00") * 32)
    assert vk.ok("change-media", "vm", "sda", "--update", str(other)) == (
        "Successfully updated media.\n\n"
    )
    blk = vk.ok("domblklist", "vm")
    assert str(other) in blk and str(iso) not in blk
    assert vk.ok("domblkinfo", "vm", "sda").startswith(f"Capacity:       {2048 * 32}\n")
    assert media_in_qemu(vk) == [str(other)]  # the tiny guest has no cdrom driver to ask
    assert vk.ok("change-media", "vm", "sda", "--update") == "Successfully updated media.\n\n"
    assert " sda      -" in vk.ok("domblklist", "vm")
    assert media_in_qemu(vk) == [None]
    vk.ok("change-media", "vm", "sda", "--update", str(iso))  # and fills an empty drive
    assert str(iso) in vk.ok("domblklist", "vm")
    assert media_in_qemu(vk) == [str(iso)]
    # attach-disk --type cdrom on the drive changes its media, as libvirt does
    vk.ok("attach-disk", "vm", "", "sda", "--type", "cdrom")
    assert " sda      -" in vk.ok("domblklist", "vm")
    vk.fails(3, "change-media", "vm", "vdz", "--eject", match="No disk found")


def test_microvm_cannot_hotplug(vk: VmkitEnv) -> None:
    disk = image(vk, "m.raw")
    boot(vk, "vm", machine="microvm")
    vk.fails(5, "attach-disk", "vm", str(disk), "vdb", "--live", match="microvm")
    assert "vdb" not in vk.ok("dumpxml", "vm")
    vk.ok("attach-disk", "vm", str(disk), "vdb", "--config")  # the next boot is fine


def test_bad_input_changes_nothing(vk: VmkitEnv) -> None:
    disk = image(vk, "b.raw")
    qcow = image(vk, "b.qcow2", fmt="qcow2")
    boot(vk, "vm")
    before = vk.ok("dumpxml", "--inactive", "vm"), vk.ok("dumpxml", "vm")
    vk.fails(2, "attach-disk", "vm", str(vk.root / "nope.raw"), "vdb", match="nope.raw")
    vk.fails(2, "attach-disk", "vm", str(qcow), "vdb", match="qcow2 image")
    vk.fails(2, "attach-disk", "vm", str(disk), "xyz1", match="xyz1")
    vk.fails(5, "attach-disk", "vm", str(disk), "hdb", "--live", match="ide bus")
    vk.fails(3, "detach-disk", "vm", "vdz", match="vdz")
    vk.fails(3, "attach-disk", "nodom", str(disk), "vdb", match="nodom")
    vk.fails(2, "attach-disk", "vm", str(disk), "vdb", "--current", "--live", match="exclusive")
    assert (vk.ok("dumpxml", "--inactive", "vm"), vk.ok("dumpxml", "vm")) == before
    vk.ok("attach-disk", "vm", str(disk), "vdb", "--persistent")
    vk.fails(4, "attach-disk", "vm", str(disk), "vdb", match="target 'vdb' already exists")


def test_image_of_another_running_domain_is_refused(vk: VmkitEnv) -> None:
    disk = image(vk, "s.raw")
    boot(vk, "one")
    boot(vk, "two")
    vk.ok("attach-disk", "one", str(disk), "vdb", "--live")
    vk.fails(
        4, "attach-disk", "two", str(disk), "vdb", "--live", match="in use by running domain 'one'"
    )
    vk.fails(4, "attach-disk", "two", str(disk), "vdb", "--mode", "shareable", match="'one'")
    assert "vdb" not in vk.ok("domblklist", "two")
    vk.ok("detach-disk", "one", "vdb")
    vk.ok("attach-disk", "one", str(disk), "vdb", "--mode", "shareable")
    vk.ok("attach-disk", "two", str(disk), "vdb", "--mode", "shareable")
    wait_guest_disks(vk, "two", ["vda"])


def test_detach_times_out_when_the_guest_does_not_let_go(vk: VmkitEnv) -> None:
    disk = image(vk, "t.raw")
    boot(vk, "vm")
    vk.ok("attach-disk", "vm", str(disk), "vdb")
    wait_guest_disks(vk, "vm", ["vda"])
    vk.ok("suspend", "vm")  # a paused guest cannot answer the unplug request
    vk.fails(1, "detach-disk", "vm", "vdb", "--timeout", "2", match="vdb.*not released.*2 s")
    assert "vdb" in vk.ok("domblklist", "vm")
    vk.ok("resume", "vm")
    vk.ok("detach-disk", "vm", "vdb")  # finishes what the first one started
    wait_guest_disks(vk, "vm", [])
    assert "vdb" not in vk.ok("domblklist", "vm")


def test_failed_device_add_leaves_no_block_nodes(vk: VmkitEnv) -> None:
    disk = image(vk, "f.raw")
    port = "<controller type='pci' index='1' model='pcie-root-port'/>"
    balloon = "<memballoon model='virtio'><address type='pci' bus='1' slot='0'/></memballoon>"
    boot(vk, "vm", devices=port + balloon)  # the balloon takes port pci.1
    xml = vk.root / "taken.xml"
    xml.write_text(
        f"<disk type='file'><source file='{disk}'/><target dev='vdb'/>"
        "<address type='pci' domain='0' bus='1' slot='0' function='0'/></disk>"
    )
    vk.fails(1, "attach-device", "vm", str(xml), "--live", match="cannot attach disk 'vdb'")
    assert "vdb" not in vk.ok("domblklist", "vm")
    vk.ok("attach-disk", "vm", str(disk), "vdb")  # would fail if vdb-storage were left behind
    wait_guest_disks(vk, "vm", ["vda"])


def test_start_refuses_an_image_a_running_domain_writes(vk: VmkitEnv) -> None:
    disk = image(vk, "w.raw")
    devices = f"<disk type='file'><source file='{disk}'/><target dev='vda'/></disk>"
    boot(vk, "one", devices=devices)
    vk.ok("define", str(vk.domain_xml("two", devices=devices)))
    vk.fails(4, "start", "two", match="in use by running domain 'one'")
    assert vk.ok("domstate", "two").strip() == "shut off"
