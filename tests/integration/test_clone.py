"""`vmkit clone` on real guests: a full clone and a linked clone boot, have their own identity,
and never write the original's images."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest
from vmkit_cli import VmkitEnv, ext4_qcow2, on_a_terminal

pytestmark = pytest.mark.integration

NIC = "<interface type='user'><model type='virtio'/></interface>"


TO_VM2 = ("clone", "--original", "vm1", "--name", "vm2")  # the clone most tests make


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def original(vk: VmkitEnv) -> Path:
    disk = ext4_qcow2(vk.root / "vm1.qcow2")
    devices = (
        f"<disk type='file' device='disk'><driver name='qemu' type='qcow2'/>"
        f"<source file='{disk}'/><target dev='vda' bus='virtio'/></disk>{NIC}"
    )
    vk.ok("define", str(vk.domain_xml("vm1", devices=devices)))
    return disk


def facts(vk: VmkitEnv, name: str) -> tuple[str, str, str]:
    xml = vk.ok("dumpxml", name)
    source = xml.split("<source file='", 1)[1].split("'", 1)[0]
    mac = xml.split("<mac address='", 1)[1].split("'", 1)[0]
    return vk.uuid(name), mac, source


def test_linked_clone_boots_and_leaves_the_base_alone(vk: VmkitEnv) -> None:
    base = original(vk)
    out = vk.ok(*TO_VM2, "--linked", "--auto-clone")
    assert out.endswith("Clone 'vm2' created successfully.\n")
    uuid1, mac1, src1 = facts(vk, "vm1")
    uuid2, mac2, src2 = facts(vk, "vm2")
    assert uuid1 != uuid2 and mac1 != mac2
    assert src2 == str(vk.root / "vm2.qcow2")
    assert src1 == str(vk.root / "vm1-overlay.qcow2")  # the original no longer writes the base
    frozen = digest(base)
    vk.ok("start", "vm2")
    vk.wait_booted("vm2")
    vk.guest("vm2", "echo from-clone > /mnt/clone; sync")
    vk.ok("start", "vm1")  # both at once: neither holds the base for writing
    vk.wait_booted("vm1")
    vk.guest("vm1", "echo from-original > /mnt/original; sync")
    assert vk.guest("vm1", "ls /mnt").split() == ["lost+found", "original"]
    assert vk.guest("vm2", "ls /mnt").split() == ["clone", "lost+found"]
    vk.ok("destroy", "vm1")
    vk.ok("destroy", "vm2")
    assert digest(base) == frozen


def test_full_clone_copies_the_disk(vk: VmkitEnv) -> None:
    base = original(vk)
    copy = vk.root / "copy.qcow2"
    vk.ok(*TO_VM2, "--file", str(copy))
    assert facts(vk, "vm2")[2] == str(copy)
    assert facts(vk, "vm1")[2] == str(base)
    info = subprocess.run(
        ["qemu-img", "info", str(copy)], capture_output=True, text=True, check=True
    ).stdout
    assert "backing file" not in info
    before = digest(base)
    vk.ok("start", "vm2")
    vk.wait_booted("vm2")
    vk.guest("vm2", "echo x > /mnt/x; sync")
    vk.ok("destroy", "vm2")
    assert digest(base) == before


def test_paused_original_can_be_copied(vk: VmkitEnv) -> None:
    original(vk)
    vk.ok("start", "vm1")
    vk.wait_booted("vm1")
    vk.fails(
        5,
        *TO_VM2,
        "--auto-clone",
        match="must be paused or shut off",
    )
    vk.ok("suspend", "vm1")
    vk.fails(
        5,
        *TO_VM2,
        "--auto-clone",
        "--linked",
        match="must be shut off",
    )
    vk.ok(*TO_VM2, "--auto-clone")
    assert (vk.root / "vm2.qcow2").exists()


def test_clone_refusals_leave_nothing_behind(vk: VmkitEnv) -> None:
    original(vk)
    vk.ok("define", str(vk.domain_xml("taken")))
    vk.fails(
        4, "clone", "--original", "vm1", "--name", "taken", "--auto-clone", match="already in use"
    )
    vk.fails(2, *TO_VM2, match="--file is required")
    (vk.root / "exists.qcow2").write_bytes(b"")
    vk.fails(
        4,
        *TO_VM2,
        "--file",
        str(vk.root / "exists.qcow2"),
        match="already exists",
    )
    vk.fails(
        2,
        *TO_VM2,
        "--file",
        "/a.q",
        "--file",
        "/b.q",
        match="2 --file given",
    )
    vk.fails(3, "clone", "--original", "nosuch", "--name", "vm2", "--auto-clone")
    vk.ok("snapshot-create-as", "vm1", "s1")
    vk.fails(
        5,
        *TO_VM2,
        "--linked",
        "--auto-clone",
        match="has snapshots",
    )
    assert sorted(vk.ok("list", "--all", "--name").split()) == ["taken", "vm1"]
    assert sorted(p.name for p in vk.root.glob("*.qcow2")) == ["exists.qcow2", "vm1.qcow2"]


def test_full_clone_draws_a_bar_on_a_terminal_and_nothing_in_scripts(vk: VmkitEnv) -> None:
    original(vk)
    proc, drawn = on_a_terminal(vk.env, *TO_VM2, "--auto-clone")
    assert proc.returncode == 0
    assert b"Allocating 'vm2.qcow2'" in drawn and b"100%" in drawn
    assert proc.stdout == b"\nClone 'vm2' created successfully.\n"
    out = vk.ok("clone", "--original", "vm1", "--name", "vm3", "--auto-clone")
    assert out == "\nClone 'vm3' created successfully.\n"  # piped: no progress lines
