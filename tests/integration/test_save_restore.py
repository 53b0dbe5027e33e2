"""save / restore / managedsave / save-image-dumpxml on real guests, and their faults.

The guest's uptime keeps counting from where it was (a restored guest is the same run, not a
reboot) and a file written before the save is there after the restore. Bad images are refused
before anything starts; a disk that fills up during a save leaves the domain running, no file
behind and the store as it was.
"""

from __future__ import annotations

import time

import pytest
from vmkit_cli import VmkitEnv, all_pids_of, small_tmpfs, store_rows

pytestmark = pytest.mark.integration


def uptime(vk: VmkitEnv, name: str) -> float:
    return float(vk.guest(name, "cat /proc/uptime").split()[0])


def booted(vk: VmkitEnv, name: str = "vm1") -> None:
    vk.ok("define", str(vk.domain_xml(name)))
    vk.ok("start", name)
    vk.wait_booted(name)


def test_save_and_restore_continue_the_same_run(vk: VmkitEnv) -> None:
    booted(vk)
    vk.guest("vm1", "echo kept-across-save > /tmp/marker")
    while (before := uptime(vk, "vm1")) < 4.0:  # well past a fresh boot's uptime at the prompt
        time.sleep(0.5)
    image = vk.root / "vm1.save"
    assert vk.ok("save", "vm1", str(image)) == f"Domain 'vm1' saved to {image}\n\n"
    saved_at = time.monotonic()
    assert vk.ok("domstate", "--reason", "vm1").strip() == "shut off (saved)"
    assert all_pids_of(vk.root) == []
    time.sleep(3.0)  # the guest does not live meanwhile
    assert vk.ok("restore", str(image)) == f"Domain restored from {image}\n\n"
    assert vk.ok("domstate", "--reason", "vm1").strip() == "running (restored)"
    assert vk.guest("vm1", "cat /tmp/marker") == "kept-across-save"
    after = uptime(vk, "vm1")
    assert before <= after < before + (time.monotonic() - saved_at) - 2.0


def test_restore_follows_the_saved_state_unless_told(vk: VmkitEnv) -> None:
    booted(vk)
    image = vk.root / "vm1.save"
    vk.ok("save", "vm1", str(image), "--paused")
    vk.ok("restore", str(image))
    assert vk.ok("domstate", "vm1").strip() == "paused"
    vk.ok("destroy", "vm1")
    vk.ok("restore", str(image), "--running")
    assert vk.ok("domstate", "vm1").strip() == "running"
    assert vk.guest("vm1", "echo alive") == "alive"
    vk.ok("save", "vm1", str(image))  # saved running, restored paused: --paused wins
    vk.ok("restore", str(image), "--paused")
    assert vk.ok("domstate", "--reason", "vm1").strip() == "paused (user)"
    vk.ok("resume", "vm1")
    assert vk.guest("vm1", "echo alive again") == "alive again"


def test_save_image_dumpxml_and_restore_of_an_undefined_domain(vk: VmkitEnv) -> None:
    booted(vk)
    uuid = vk.uuid("vm1")
    image = vk.root / "vm1.save"
    vk.ok("save", "vm1", str(image))
    xml = vk.ok("save-image-dumpxml", str(image))
    assert xml.startswith("<domain type='qemu'>") and f"<uuid>{uuid}</uuid>" in xml
    vk.ok("undefine", "vm1")
    vk.ok("restore", str(image))
    info = vk.ok("dominfo", "vm1")
    assert "Persistent:     no" in info and "State:          running" in info
    vk.fails(5, "restore", str(image), match="already active")


def test_managedsave_then_start_resumes(vk: VmkitEnv) -> None:
    booted(vk)
    vk.guest("vm1", "echo from-managed-save > /tmp/marker")
    assert vk.ok("managedsave", "vm1") == "Domain 'vm1' state saved by vmkit\n\n"
    assert "Managed save:   yes" in vk.ok("dominfo", "vm1")
    assert vk.ok("domstate", "--reason", "vm1").strip() == "shut off (saved)"
    vk.ok("start", "vm1")
    assert vk.ok("domstate", "--reason", "vm1").strip() == "running (restored)"
    assert vk.guest("vm1", "cat /tmp/marker") == "from-managed-save"
    assert "Managed save:   no" in vk.ok("dominfo", "vm1")
    assert "has no manage save image" in vk.ok("managedsave-remove", "vm1")


def test_managedsave_remove_makes_start_boot_afresh(vk: VmkitEnv) -> None:
    booted(vk)
    vk.guest("vm1", "echo gone > /tmp/marker")
    vk.ok("managedsave", "vm1")
    assert vk.ok("managedsave-remove", "vm1") == "Removed managedsave image for domain 'vm1'\n\n"
    vk.ok("start", "vm1")
    assert vk.ok("domstate", "--reason", "vm1").strip() == "running (booted)"
    vk.wait_booted("vm1", count=2)
    assert "No such file" in vk.guest("vm1", "cat /tmp/marker 2>&1")


def test_damaged_managed_save_is_not_silently_dropped(vk: VmkitEnv) -> None:
    booted(vk)
    vk.ok("managedsave", "vm1")
    managed = vk.root / "lib" / "save" / f"{vk.uuid('vm1')}.save"
    with open(managed, "r+b") as f:
        f.truncate(managed.stat().st_size // 2)
    vk.fails(2, "start", "vm1", match="managedsave-remove")
    assert all_pids_of(vk.root) == []
    vk.ok("managedsave-remove", "vm1")
    vk.ok("start", "vm1")


def test_bad_images_are_refused_before_anything_starts(vk: VmkitEnv) -> None:
    booted(vk)
    image = vk.root / "vm1.save"
    vk.ok("save", "vm1", str(image))
    data = image.read_bytes()
    truncated = vk.root / "truncated.save"
    truncated.write_bytes(data[: len(data) // 3])
    foreign = vk.root / "foreign.save"
    foreign.write_bytes(b"\x7fELF" + b"\0" * 8192)
    libvirt = vk.root / "libvirt.save"
    libvirt.write_bytes(b"LibvirtQemudSave" + b"\0" * 8192)
    before = store_rows(vk)
    for path, why in [
        (truncated, "truncated"),
        (foreign, "not a vmkit save image"),
        (libvirt, "libvirt save image"),
        (vk.root / "missing.save", "cannot read"),
    ]:
        vk.fails(2, "restore", str(path), match=why)
        assert all_pids_of(vk.root) == []
    assert store_rows(vk) == before
    assert vk.ok("domstate", "--reason", "vm1").strip() == "shut off (saved)"


def test_save_needs_a_running_domain(vk: VmkitEnv) -> None:
    vk.ok("define", str(vk.domain_xml("vm1")))
    vk.fails(5, "save", "vm1", str(vk.root / "x.save"), match="not running")
    vk.fails(5, "managedsave", "vm1", match="not running")
    assert not (vk.root / "x.save").exists()


def test_disk_full_during_save_changes_nothing(vk: VmkitEnv) -> None:
    booted(vk)
    with small_tmpfs(vk, 16) as small:
        before = store_rows(vk)
        vk.fails(1, "save", "vm1", str(small / "vm1.save"), match="No space left on device")
        assert list(small.iterdir()) == []
        assert store_rows(vk) == before
        assert vk.ok("domstate", "--reason", "vm1").strip() == "running (booted)"
        assert vk.guest("vm1", "echo still-running") == "still-running"


@pytest.mark.parametrize("machine", ["q35", "pc"])
def test_hot_plugged_devices_keep_their_place_across_restore(vk: VmkitEnv, machine: str) -> None:
    """A disk and a NIC attached live are where the guest saw them after a restore: the guest
    still uses them, and it releases them when they are detached afterwards (a restored QEMU
    with another PCI layout leaves the unplug pending for ever)."""
    vk.ok("define", str(vk.domain_xml("vm1", machine=machine)))
    vk.ok("start", "vm1")
    vk.wait_booted("vm1")
    disk = vk.root / "hot.raw"
    with disk.open("wb") as f:
        f.truncate(8 << 20)
    vk.ok("attach-disk", "vm1", str(disk), "vdb", "--live")
    vk.ok("attach-interface", "vm1", "user", "--model", "virtio", "--live")
    mac = vk.json("domiflist", "vm1")[0]["mac"]
    deadline = time.monotonic() + 30
    while "vdb" not in vk.guest("vm1", "ls /sys/block") and time.monotonic() < deadline:
        time.sleep(0.5)
    vk.guest(
        "vm1", "echo across-restore | dd of=/dev/vdb bs=512 count=1 conv=sync,fsync 2>/dev/null"
    )
    image = vk.root / "vm1.save"
    vk.ok("save", "vm1", str(image))
    vk.ok("restore", str(image))
    assert "across-restore" in vk.guest("vm1", "dd if=/dev/vdb bs=512 count=1 2>/dev/null")
    vk.ok("detach-interface", "vm1", "user", "--mac", mac, "--live", timeout=60)
    vk.ok("detach-disk", "vm1", "vdb", "--live", timeout=60)
    assert "vdb" not in vk.guest("vm1", "ls /sys/block")
    assert vk.json("domiflist", "vm1") == []
