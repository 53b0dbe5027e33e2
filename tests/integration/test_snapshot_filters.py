"""snapshot-list's filters and snapshot-delete's --children-only / --metadata, through the CLI.

No guest boots: the domain stays shut off and its qcow2 disk takes internal disk-only snapshots
(`qemu-img snapshot`). The tree is built as virsh users build branches: a -> b -> c, then a
revert to a and a new snapshot d under it:

    a
    +- b
    |  +- c
    +- d

Expected lists follow virsh: --from lists direct children unless --descendants (implied by
--tree, which also shows the start); --roots, --parent and --tree exclude one another, and
--roots cannot be combined with --from / --current.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from vmkit_cli import VmkitEnv, image_snapshots

pytestmark = pytest.mark.integration


def qcow2_domain(vk: VmkitEnv, name: str = "vm1") -> Path:
    """A shut-off domain with an empty 16 MiB qcow2 disk (nothing boots from it)."""
    disk = vk.root / f"{name}.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(disk), "16M"], check=True)
    devices = (
        "<disk type='file' device='disk'><driver name='qemu' type='qcow2'/>"
        f"<source file='{disk}'/><target dev='vda' bus='virtio'/></disk>"
    )
    vk.ok("define", str(vk.domain_xml(name, devices=devices)))
    return disk


def names(vk: VmkitEnv, *flags: str) -> list[str]:
    out = vk.ok("snapshot-list", "vm1", "--name", *flags)
    assert out.endswith("\n"), out
    return out.split()


def build_tree(vk: VmkitEnv) -> None:
    """a -> b -> c, then revert to a and take d: a second branch under a."""
    for snap in ("a", "b", "c"):
        vk.ok("snapshot-create-as", "vm1", snap)
    vk.ok("snapshot-revert", "vm1", "a")
    vk.ok("snapshot-create-as", "vm1", "d")


def test_list_filters_on_a_branched_tree(vk: VmkitEnv) -> None:
    disk = qcow2_domain(vk)
    build_tree(vk)
    assert image_snapshots(disk) == ["a", "b", "c", "d"]
    parents = {s["name"]: s["parent"] for s in vk.json("snapshot-list", "vm1")}
    assert parents == {"a": None, "b": "a", "c": "b", "d": "a"}
    assert vk.ok("snapshot-current", "vm1", "--name") == "d\n\n"
    assert names(vk) == ["a", "b", "c", "d"]
    assert names(vk, "--roots") == ["a"]
    assert names(vk, "--leaves") == ["c", "d"]
    assert names(vk, "--no-leaves") == ["a", "b"]
    assert names(vk, "--from", "a") == ["b", "d"]
    assert names(vk, "--from", "a", "--descendants") == ["b", "c", "d"]
    assert names(vk, "--from", "a", "--leaves") == ["d"]
    assert names(vk, "--from", "a", "--descendants", "--leaves") == ["c", "d"]
    assert names(vk, "--from", "b") == ["c"]
    assert names(vk, "--from", "c", "--descendants") == []
    assert names(vk, "--current", "--descendants") == []  # d is current and has no children
    vk.ok("snapshot-current", "vm1", "b")
    assert names(vk, "--current") == ["c"]
    table = vk.ok("snapshot-list", "vm1", "--parent", "--from", "a").splitlines()
    assert [row.split()[0] for row in table[2:] if row.strip()] == ["b", "d"]
    assert [row.split()[-1] for row in table[2:] if row.strip()] == ["a", "a"]
    assert vk.ok("snapshot-list", "vm1", "--tree") == (
        "a\n  |\n  +- b\n  |   |\n  |   +- c\n  |     \n  +- d\n    \n\n"
    )
    assert vk.ok("snapshot-list", "vm1", "--tree", "--from", "b") == "b\n  |\n  +- c\n    \n\n"
    assert json.loads(vk.ok("snapshot-list", "vm1", "--json", "--roots"))[0]["name"] == "a"


def test_list_option_combinations_virsh_refuses(vk: VmkitEnv) -> None:
    qcow2_domain(vk)
    vk.ok("snapshot-create-as", "vm1", "a")
    for pair in (("--roots", "--tree"), ("--roots", "--parent"), ("--parent", "--tree")):
        vk.fails(2, "snapshot-list", "vm1", *pair, match="mutually exclusive")
    vk.fails(2, "snapshot-list", "vm1", "--tree", "--name", match="mutually exclusive")
    vk.fails(2, "snapshot-list", "vm1", "--roots", "--from", "a", match="mutually exclusive")
    vk.fails(2, "snapshot-list", "vm1", "--roots", "--current", match="mutually exclusive")
    vk.fails(2, "snapshot-list", "vm1", "--tree", "--leaves", match="--leaves and --tree")
    vk.fails(2, "snapshot-list", "vm1", "--descendants", match="requires either --from")
    vk.fails(3, "snapshot-list", "vm1", "--from", "nosuch", match="matching name 'nosuch'")


def test_delete_metadata_keeps_the_internal_snapshot(vk: VmkitEnv) -> None:
    disk = qcow2_domain(vk)
    build_tree(vk)
    assert vk.ok("snapshot-delete", "vm1", "b", "--metadata") == "Domain snapshot b deleted\n\n"
    assert names(vk) == ["a", "c", "d"]
    parents = {s["name"]: s["parent"] for s in vk.json("snapshot-list", "vm1")}
    assert parents == {"a": None, "c": "a", "d": "a"}  # c moved up to b's parent
    vk.fails(3, "snapshot-info", "vm1", "b", match="matching name 'b'")
    assert image_snapshots(disk) == ["a", "b", "c", "d"]  # the image still holds b
    vk.ok("snapshot-delete", "vm1", "d", "--metadata")  # the current one: a becomes current
    assert vk.ok("snapshot-current", "vm1", "--name") == "a\n\n"
    assert image_snapshots(disk) == ["a", "b", "c", "d"]


def test_delete_children_only_keeps_the_parent(vk: VmkitEnv) -> None:
    disk = qcow2_domain(vk)
    build_tree(vk)
    vk.fails(2, "snapshot-delete", "vm1", "a", "--children", "--children-only", match="exclusive")
    assert names(vk) == ["a", "b", "c", "d"]
    out = vk.ok("snapshot-delete", "vm1", "a", "--children-only")
    assert out == "Domain snapshot a children deleted\n\n"
    assert names(vk) == ["a"]
    assert image_snapshots(disk) == ["a"]
    info = vk.ok("snapshot-info", "vm1", "a")
    assert "Current:        yes" in info  # d (current) went: its kept ancestor is current
    assert "Children:       0" in info
    vk.ok("snapshot-delete", "vm1", "a", "--children-only")  # no children: nothing to do
    assert names(vk) == ["a"]


def test_delete_children_only_with_metadata(vk: VmkitEnv) -> None:
    disk = qcow2_domain(vk)
    build_tree(vk)
    vk.ok("snapshot-delete", "vm1", "b", "--children-only", "--metadata")
    assert names(vk) == ["a", "b", "d"]
    assert image_snapshots(disk) == ["a", "b", "c", "d"]
    vk.ok("snapshot-delete", "vm1", "a", "--children")
    assert names(vk) == []
    assert image_snapshots(disk) == ["c"]  # only the one vmkit no longer knows about
