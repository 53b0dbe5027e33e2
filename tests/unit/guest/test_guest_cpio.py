"""The newc writer: what the kernel's initramfs unpacker reads."""

from __future__ import annotations

import stat

import pytest
from fakedeb import read_newc

from vmkit.guest.cpio import Archive


def test_members_sorted_with_parents_first() -> None:
    archive = Archive()
    archive.add_file("/etc/acpi/PWRF/00000080", b"#!/bin/sh\npoweroff\n", 0o755)
    archive.add_symlink("sbin", "bin")
    archive.add_file("bin/busybox", b"\x7fELF", 0o755)
    archive.add_char_device("dev/console", 5, 1)
    members = read_newc(archive.to_bytes())
    assert [m[0] for m in members] == [
        "bin",
        "bin/busybox",
        "dev",
        "dev/console",
        "etc",
        "etc/acpi",
        "etc/acpi/PWRF",
        "etc/acpi/PWRF/00000080",
        "sbin",
    ]
    by_name = {m[0]: m for m in members}
    assert by_name["etc"][1] == stat.S_IFDIR | 0o755
    assert by_name["etc/acpi/PWRF/00000080"][1:3] == (
        stat.S_IFREG | 0o755,
        b"#!/bin/sh\npoweroff\n",
    )
    assert by_name["sbin"][1:3] == (stat.S_IFLNK | 0o777, b"bin")
    assert by_name["dev/console"][1] == stat.S_IFCHR | 0o600
    assert by_name["dev/console"][3] == (5, 1)


def test_same_input_same_bytes() -> None:
    def build() -> bytes:
        archive = Archive()
        archive.add_file("b", b"1")
        archive.add_file("a/c", b"22")
        return archive.to_bytes()

    assert build() == build()


def test_file_under_a_file_is_refused() -> None:
    archive = Archive()
    archive.add_file("etc", b"")
    with pytest.raises(ValueError, match="not a folder"):
        archive.add_file("etc/passwd", b"")


def test_escaping_paths_are_refused() -> None:
    archive = Archive()
    for bad in ("", "/", "../etc/passwd", "a/../../b"):
        with pytest.raises(ValueError, match="bad archive path"):
            archive.add_file(bad, b"")
