"""clone's image names follow virt-clone (virtinst's generate_clone_disk_path)."""

from __future__ import annotations

from pathlib import Path

from vmkit.engine.clone import _auto_path


def test_image_named_after_the_domain_takes_the_new_name(tmp_path: Path) -> None:
    assert _auto_path(f"{tmp_path}/vm1.qcow2", "vm1", "vm2", set()) == f"{tmp_path}/vm2.qcow2"


def test_other_images_get_clone_suffix(tmp_path: Path) -> None:
    assert _auto_path(f"{tmp_path}/disk.img", "vm1", "vm2", set()) == f"{tmp_path}/disk-clone.img"
    assert _auto_path(f"{tmp_path}/disk", "vm1", "vm2", set()) == f"{tmp_path}/disk-clone"


def test_long_suffix_is_part_of_the_name(tmp_path: Path) -> None:
    src = f"{tmp_path}/disk.verylongext"
    assert _auto_path(src, "vm1", "vm2", set()) == f"{tmp_path}/disk.verylongext-clone"


def test_taken_names_get_a_number(tmp_path: Path) -> None:
    (tmp_path / "vm2.qcow2").write_bytes(b"")
    taken = {f"{tmp_path}/vm2-1.qcow2"}
    assert _auto_path(f"{tmp_path}/vm1.qcow2", "vm1", "vm2", taken) == f"{tmp_path}/vm2-2.qcow2"
