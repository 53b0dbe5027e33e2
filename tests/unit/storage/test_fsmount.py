"""fsmount's reading of /proc/self/mountinfo fields (octal escapes) and of loop devices."""

from __future__ import annotations

from pathlib import Path

from vmkit.storage import fsmount


def test_mountinfo_escapes_are_undone() -> None:
    assert fsmount._unescape("/tmp/a\\040b\\134c") == "/tmp/a b\\c"
    assert fsmount._unescape("/plain") == "/plain"


def test_nothing_is_mounted_on_a_fresh_directory(tmp_path: Path) -> None:
    assert fsmount.mounted_source(str(tmp_path)) is None
    assert fsmount.mounted_source("/proc") == "proc"


def test_same_device_by_path(tmp_path: Path) -> None:
    image = tmp_path / "x.img"
    image.write_bytes(b"")
    assert fsmount.same_device(str(image), str(image))
    assert not fsmount.same_device("/dev/loop-vmkit-none", str(image))
