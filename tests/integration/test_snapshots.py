"""Snapshots on real guests: every kind vmkit creates is reverted to and deleted.

The guest's data disk is an ext4 qcow2 image (mkfs.ext4 on a raw file, then qemu-img convert),
which the tiny guest mounts at /mnt. Data written after a snapshot is gone after reverting to it
and back after reverting to the later branch.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from vmkit_cli import VmkitEnv, all_pids_of, ext4_qcow2, image_snapshots, small_tmpfs, store_rows

pytestmark = pytest.mark.integration


def disk_xml(path: Path, fmt: str = "qcow2", dev: str = "vda") -> str:
    return (
        f"<disk type='file' device='disk'><driver name='qemu' type='{fmt}'/>"
        f"<source file='{path}'/><target dev='{dev}' bus='virtio'/></disk>"
    )


def with_disk(vk: VmkitEnv, name: str = "vm1", *, start: bool = True) -> Path:
    disk = ext4_qcow2(vk.root / f"{name}.qcow2")
    vk.ok("define", str(vk.domain_xml(name, devices=disk_xml(disk))))
    if start:
        vk.ok("start", name)
        vk.wait_booted(name)
    return disk


def files(vk: VmkitEnv, name: str = "vm1") -> list[str]:
    return vk.guest(name, "ls /mnt").split()


def write(vk: VmkitEnv, fname: str, name: str = "vm1") -> None:
    vk.guest(name, f"echo {fname} > /mnt/{fname}; sync")


def source_of(vk: VmkitEnv, name: str = "vm1") -> str:
    xml = vk.ok("dumpxml", name)
    return xml.split("<source file='", 1)[1].split("'", 1)[0]


def test_internal_snapshots_branch_and_come_back(vk: VmkitEnv) -> None:
    disk = with_disk(vk)
    write(vk, "a")
    assert vk.ok("snapshot-create-as", "vm1", "s1", "--description", "first") == (
        "Domain snapshot s1 created\n"
    )
    write(vk, "b")
    vk.ok("snapshot-create-as", "vm1", "s2")
    assert image_snapshots(disk) == ["s1", "s2"]
    assert vk.ok("snapshot-revert", "vm1", "s1") == "Domain snapshot s1 reverted\n\n"
    assert vk.ok("domstate", "--reason", "vm1").strip() == "running (from snapshot)"
    assert files(vk) == ["a", "lost+found"]
    write(vk, "c")
    vk.ok("snapshot-create-as", "vm1", "s3")  # a second branch under s1
    vk.ok("snapshot-revert", "vm1", "s2")
    assert files(vk) == ["a", "b", "lost+found"]
    assert vk.ok("snapshot-current", "vm1", "--name") == "s2\n\n"
    assert vk.ok("snapshot-list", "vm1", "--tree") == ("s1\n  |\n  +- s2\n  +- s3\n    \n\n")
    info = vk.ok("snapshot-info", "vm1", "s1")
    assert "Location:       internal" in info and "Children:       2" in info
    xml = vk.ok("snapshot-dumpxml", "vm1", "s1")
    assert "<description>first</description>" in xml and "<memory snapshot='internal'/>" in xml
    vk.ok("snapshot-delete", "vm1", "s1", "--children")
    assert vk.ok("snapshot-list", "vm1", "--name") == "\n"
    assert image_snapshots(disk) == []
    assert files(vk) == ["a", "b", "lost+found"]


def test_snapshot_of_a_shut_off_domain(vk: VmkitEnv) -> None:
    disk = with_disk(vk, start=False)
    vk.ok("snapshot-create-as", "vm1", "clean")
    assert "State:          shutoff" in vk.ok("snapshot-info", "vm1", "clean")
    vk.ok("start", "vm1")
    vk.wait_booted("vm1")
    write(vk, "later")
    vk.ok("snapshot-revert", "vm1", "clean")  # the domain is stopped: the snapshot has no memory
    assert vk.ok("domstate", "--reason", "vm1").strip() == "shut off (from snapshot)"
    vk.ok("start", "vm1")
    vk.wait_booted("vm1", count=2)
    assert files(vk) == ["lost+found"]
    vk.ok("destroy", "vm1")
    vk.ok("snapshot-delete", "vm1", "clean")
    assert image_snapshots(disk) == []


def test_snapshot_create_from_xml_and_revert_paused(vk: VmkitEnv) -> None:
    with_disk(vk)
    xml = vk.root / "snap.xml"
    xml.write_text(
        "<domainsnapshot><name>fromxml</name><description>d</description></domainsnapshot>"
    )
    assert vk.ok("snapshot-create", "vm1", str(xml)) == (
        f"Domain snapshot fromxml created from '{xml}'\n"
    )
    vk.ok("snapshot-revert", "vm1", "--current", "--paused")
    assert vk.ok("domstate", "--reason", "vm1").strip() == "paused (from snapshot)"


def test_external_disk_only_snapshots(vk: VmkitEnv) -> None:
    disk = with_disk(vk)
    write(vk, "a")
    vk.ok("snapshot-create-as", "vm1", "e1", "--disk-only")
    assert source_of(vk) == str(vk.root / "vm1.e1")
    write(vk, "b")
    vk.ok("snapshot-create-as", "vm1", "e2", "--disk-only")
    write(vk, "c")
    info = vk.ok("snapshot-info", "vm1", "e2")
    assert "State:          disk-snapshot" in info and "Location:       external" in info
    vk.ok("snapshot-revert", "vm1", "e1", "--running")
    vk.wait_booted("vm1", count=2)
    assert files(vk) == ["a", "lost+found"]
    vk.ok("snapshot-revert", "vm1", "e2", "--running")
    vk.wait_booted("vm1", count=3)
    assert files(vk) == ["a", "b", "lost+found"]
    write(vk, "d")
    vk.ok("snapshot-delete", "vm1", "e1")  # the overlay of e1 is committed into vm1.qcow2
    assert not (vk.root / "vm1.e1").exists()
    vk.ok("snapshot-delete", "vm1", "e2")  # and the live overlay too: back on the original
    assert source_of(vk) == str(disk)
    assert sorted(p.name for p in vk.root.glob("vm1.*")) == ["vm1.qcow2", "vm1.xml"]
    assert files(vk) == ["a", "b", "d", "lost+found"]
    vk.ok("destroy", "vm1")
    vk.ok("start", "vm1")
    vk.wait_booted("vm1", count=4)
    assert files(vk) == ["a", "b", "d", "lost+found"]


def test_external_snapshots_of_a_shut_off_domain(vk: VmkitEnv) -> None:
    disk = with_disk(vk, start=False)
    vk.ok("snapshot-create-as", "vm1", "x1", "--disk-only")
    assert source_of(vk) == str(vk.root / "vm1.x1")
    vk.ok("start", "vm1")
    vk.wait_booted("vm1")
    write(vk, "a")
    vk.ok("destroy", "vm1")
    vk.ok("snapshot-revert", "vm1", "x1")
    vk.ok("start", "vm1")
    vk.wait_booted("vm1", count=2)
    assert files(vk) == ["lost+found"]
    vk.ok("destroy", "vm1")
    vk.ok("snapshot-delete", "vm1", "x1")
    assert source_of(vk) == str(disk)


def test_memory_snapshot_of_a_diskless_domain(vk: VmkitEnv) -> None:
    vk.ok("define", str(vk.domain_xml("vm1")))
    vk.ok("start", "vm1")
    vk.wait_booted("vm1")
    vk.guest("vm1", "echo one > /tmp/one")
    vk.ok("snapshot-create-as", "vm1", "m1")
    vk.guest("vm1", "echo two > /tmp/two")
    xml = vk.ok("snapshot-dumpxml", "vm1", "m1")
    memory = xml.split("<memory snapshot='external' file='", 1)[1].split("'", 1)[0]
    assert Path(memory).exists()
    vk.ok("snapshot-revert", "vm1", "m1")
    assert vk.ok("domstate", "--reason", "vm1").strip() == "running (from snapshot)"
    assert vk.guest("vm1", "ls /tmp").split() == ["one"]
    vk.ok("destroy", "vm1")
    vk.ok("snapshot-revert", "vm1", "m1")  # also from shut off
    assert vk.guest("vm1", "ls /tmp").split() == ["one"]
    vk.ok("snapshot-delete", "vm1", "m1")
    assert not Path(memory).exists()


def test_definition_snapshot_of_a_shut_off_diskless_domain(vk: VmkitEnv) -> None:
    vk.ok("define", str(vk.domain_xml("vm1", memory_mib=160)))
    vk.ok("snapshot-create-as", "vm1", "def1")
    vk.ok("setmaxmem", "vm1", "200M")
    vk.ok("snapshot-revert", "vm1", "def1")
    assert "163840 KiB" in vk.ok("dominfo", "vm1")
    vk.ok("snapshot-delete", "vm1", "def1")


def test_snapshot_requests_that_are_refused(vk: VmkitEnv) -> None:
    with_disk(vk)
    vk.ok("snapshot-create-as", "vm1", "s1")
    vk.ok("define", str(vk.domain_xml("other")))
    vk.fails(3, "snapshot-revert", "other", "s1", match="belongs to domain 'vm1'")
    vk.fails(2, "snapshot-create-as", "vm1", "q", "--quiesce", match="guest agent")
    vk.fails(4, "snapshot-create-as", "vm1", "s1", match="already has a snapshot named 's1'")
    vk.fails(2, "snapshot-create-as", "vm1", "a/b", match="must not contain '/'")
    vk.fails(3, "snapshot-info", "vm1", "nosuch", match="no domain snapshot with matching name")
    vk.fails(3, "snapshot-current", "other", match="does not have a current snapshot")
    raw = vk.root / "raw.img"
    subprocess.run(["truncate", "-s", "8M", str(raw)], check=True)
    vk.ok("define", str(vk.domain_xml("rawvm", devices=disk_xml(raw, "raw"))))
    vk.fails(2, "snapshot-create-as", "rawvm", "r1", match="is raw: use --disk-only")
    assert vk.ok("snapshot-list", "rawvm", "--name") == "\n"
    assert sorted(vk.ok("snapshot-list", "vm1", "--name").split()) == ["s1"]


def test_disk_full_during_snapshot_changes_nothing(vk: VmkitEnv) -> None:
    with small_tmpfs(vk, 24) as small:
        disk = small / "vm1.qcow2"
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(disk), "16M"], check=True)
        vk.ok("define", str(vk.domain_xml("vm1", devices=disk_xml(disk))))
        vk.ok("start", "vm1")
        vk.wait_booted("vm1")
        before = store_rows(vk)
        vk.fails(1, "snapshot-create-as", "vm1", "big", match="snapshot-save failed")
        assert image_snapshots(disk) == []
        subprocess.run(
            ["dd", "if=/dev/zero", f"of={small}/fill", "bs=1M", "count=64"],
            capture_output=True,
            check=False,
        )
        vk.fails(1, "snapshot-create-as", "vm1", "ext", "--disk-only", match="No space left")
        assert sorted(p.name for p in small.iterdir()) == ["fill", "vm1.qcow2"]
        assert store_rows(vk) == before
        assert vk.ok("domstate", "--reason", "vm1").strip() == "running (booted)"
        assert vk.guest("vm1", "echo alive") == "alive"
        assert all_pids_of(vk.root) != []
