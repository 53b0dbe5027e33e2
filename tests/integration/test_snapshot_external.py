"""An external snapshot with memory and an external disk of a running guest: created, reverted
to and deleted (the kind libvirt cannot delete).

The guest mounts its ext4 qcow2 data disk at /mnt; /tmp is in its RAM. vmkit's documented
choice on delete (engine/snapshots.py, snapshot_chain.py): the memory image is removed and the
overlay is committed into the frozen image, which keeps its name, so the domain ends on its
original image holding everything written since.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from vmkit_cli import VmkitEnv, ext4_qcow2, image_info

pytestmark = pytest.mark.integration


def disk_xml(path: Path) -> str:
    return (
        "<disk type='file' device='disk'><driver name='qemu' type='qcow2'/>"
        f"<source file='{path}'/><target dev='vda' bus='virtio'/></disk>"
    )


def source_of(vk: VmkitEnv, *flags: str) -> str:
    xml = vk.ok("dumpxml", "vm1", *flags)
    return xml.split("<source file='", 1)[1].split("'", 1)[0]


def backing_of(path: Path | str) -> str | None:
    found = image_info(path).get("full-backing-filename")
    return str(found) if found else None


def ls(vk: VmkitEnv, where: str) -> list[str]:
    return vk.guest("vm1", f"ls {where}").split()


def test_external_memory_and_disk_snapshot_revert_and_delete(vk: VmkitEnv) -> None:
    disk = ext4_qcow2(vk.root / "vm1.qcow2")
    memory, overlay = vk.root / "snaps" / "s1.mem", vk.root / "vm1-s1.qcow2"
    vk.ok("define", str(vk.domain_xml("vm1", devices=disk_xml(disk))))
    vk.ok("start", "vm1")
    vk.wait_booted("vm1")
    vk.guest("vm1", "echo ram > /tmp/before; echo disk > /mnt/before; sync")

    out = vk.ok(
        "snapshot-create-as",
        "vm1",
        "s1",
        "--memspec",
        f"file={memory}",
        "--diskspec",
        f"vda,snapshot=external,file={overlay}",
    )
    assert out == "Domain snapshot s1 created\n"
    assert memory.is_file() and overlay.is_file()
    assert source_of(vk) == str(overlay) and backing_of(overlay) == str(disk)
    info = vk.ok("snapshot-info", "vm1", "s1")
    assert "State:          running" in info and "Location:       external" in info
    xml = vk.ok("snapshot-dumpxml", "vm1", "s1")
    assert f"<memory snapshot='external' file='{memory}'/>" in xml
    assert vk.ok("domstate", "vm1").strip() == "running"

    vk.guest("vm1", "echo ram > /tmp/after; echo disk > /mnt/after; sync")
    assert ls(vk, "/mnt") == ["after", "before", "lost+found"]

    assert vk.ok("snapshot-revert", "vm1", "s1") == "Domain snapshot s1 reverted\n\n"
    assert vk.ok("domstate", "--reason", "vm1").strip() == "running (from snapshot)"
    assert ls(vk, "/tmp") == ["before"]  # the guest's memory came back
    assert ls(vk, "/mnt") == ["before", "lost+found"]  # and its disk as it was
    assert not overlay.exists()  # the overlay left behind held only discarded writes
    assert backing_of(source_of(vk)) == str(disk)  # a fresh overlay over the frozen image
    vk.guest("vm1", "echo disk > /mnt/later; sync")

    assert vk.ok("snapshot-delete", "vm1", "s1") == "Domain snapshot s1 deleted\n\n"
    assert not memory.exists()
    assert source_of(vk) == str(disk) and source_of(vk, "--inactive") == str(disk)
    assert backing_of(disk) is None
    assert sorted(p.name for p in vk.root.glob("vm1*")) == ["vm1.qcow2", "vm1.xml"]
    assert vk.ok("snapshot-list", "vm1", "--name") == "\n"
    assert vk.ok("domstate", "vm1").strip() == "running"
    assert ls(vk, "/mnt") == ["before", "later", "lost+found"]
    vk.guest("vm1", "echo disk > /mnt/last; sync")

    vk.ok("destroy", "vm1")  # the image alone holds the data: a fresh boot sees all of it
    vk.ok("start", "vm1")
    vk.wait_booted("vm1", count=2)
    assert ls(vk, "/mnt") == ["before", "last", "later", "lost+found"]


def test_a_line_of_memory_snapshots_deleted_running_and_shut_off(vk: VmkitEnv) -> None:
    disk = ext4_qcow2(vk.root / "vm1.qcow2")
    vk.ok("define", str(vk.domain_xml("vm1", devices=disk_xml(disk))))
    vk.ok("start", "vm1")
    vk.wait_booted("vm1")
    vk.guest("vm1", "echo a > /mnt/a; sync")
    vk.ok("snapshot-create-as", "vm1", "s1", "--memspec", f"file={vk.root / 's1.mem'}")
    assert source_of(vk) == str(vk.root / "vm1.s1")  # disks follow the memory: external
    vk.guest("vm1", "echo b > /mnt/b; sync; echo ram > /tmp/s2")
    vk.ok("snapshot-create-as", "vm1", "s2", "--memspec", "snapshot=external")
    xml = vk.ok("snapshot-dumpxml", "vm1", "s2")
    s2_memory = Path(xml.split("<memory snapshot='external' file='", 1)[1].split("'", 1)[0])
    assert s2_memory.is_file() and source_of(vk) == str(vk.root / "vm1.s2")
    vk.guest("vm1", "echo c > /mnt/c; sync")

    vk.ok("snapshot-delete", "vm1", "s1")  # the middle image is committed into vm1.qcow2
    assert not (vk.root / "s1.mem").exists() and not (vk.root / "vm1.s1").exists()
    assert backing_of(vk.root / "vm1.s2") == str(disk)
    assert f"<source file='{disk}'/>" in vk.ok("snapshot-dumpxml", "vm1", "s2")
    assert ls(vk, "/mnt") == ["a", "b", "c", "lost+found"]

    vk.ok("snapshot-revert", "vm1", "s2")  # s2's memory over its disk, now in vm1.qcow2
    assert ls(vk, "/tmp") == ["s2"] and ls(vk, "/mnt") == ["a", "b", "lost+found"]
    vk.guest("vm1", "echo d > /mnt/d; sync")
    vk.ok("destroy", "vm1")
    vk.ok("snapshot-delete", "vm1", "s2")  # shut off: qemu-img commit
    assert not s2_memory.exists()
    assert source_of(vk) == str(disk) and backing_of(disk) is None
    assert sorted(p.name for p in vk.root.glob("vm1*")) == ["vm1.qcow2", "vm1.xml"]
    vk.ok("start", "vm1")
    vk.wait_booted("vm1", count=2)
    assert ls(vk, "/mnt") == ["a", "b", "d", "lost+found"]
