"""Test doubles for the guest builder: synthetic kernel modules, a fake apt/dpkg runner, and a
newc reader to look inside the archives it packs."""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence
from pathlib import Path

from vmkit.guest.apt import CommandResult

RELEASE = "6.1.0-56-cloud-amd64"
KERNEL = f"linux-image-{RELEASE}"
POLICY = f"""{KERNEL}:
  Installed: (none)
  Candidate: 6.1.192-2
  Version table:
     6.1.192-2 500
        500 http://deb.debian.org/debian-security bookworm-security/main amd64 Packages
"""
# name -> (path under /lib/modules/RELEASE, depends)
MODULES: Mapping[str, tuple[str, str]] = {
    "virtio_ring": ("kernel/drivers/virtio/virtio_ring.ko", ""),
    "virtio": ("kernel/drivers/virtio/virtio.ko", ""),
    "virtio_pci_modern_dev": ("kernel/drivers/virtio/virtio_pci_modern_dev.ko", ""),
    "virtio_pci_legacy_dev": ("kernel/drivers/virtio/virtio_pci_legacy_dev.ko", ""),
    "virtio_pci": (
        "kernel/drivers/virtio/virtio_pci.ko",
        "virtio_ring,virtio_pci_modern_dev,virtio_pci_legacy_dev,virtio",
    ),
    "virtio_mmio": ("kernel/drivers/virtio/virtio_mmio.ko", "virtio,virtio_ring"),
    "virtio_blk": ("kernel/drivers/block/virtio_blk.ko", "virtio,virtio_ring"),
    "failover": ("kernel/net/core/failover.ko", ""),
    "net_failover": ("kernel/drivers/net/net_failover.ko", "failover"),
    "virtio_net": ("kernel/drivers/net/virtio_net.ko", "virtio_ring,virtio,net_failover"),
    "virtio_console": ("kernel/drivers/char/virtio_console.ko", "virtio,virtio_ring"),
    "button": ("kernel/drivers/acpi/button.ko", ""),
    "evdev": ("kernel/drivers/input/evdev.ko", ""),
}


def make_module(modinfo: Mapping[str, str]) -> bytes:
    """A minimal little-endian ELF64 file whose .modinfo section holds `modinfo`."""
    info = b"".join(f"{key}={value}".encode() + b"\0" for key, value in modinfo.items())
    names = b"\0.modinfo\0.shstrtab\0"
    info_at = 64
    names_at = info_at + len(info)
    shoff = names_at + len(names)
    header = b"\x7fELF" + bytes([2, 1, 1]) + b"\0" * 9
    header += struct.pack("<HHIQQQIHHHHHH", 1, 62, 1, 0, 0, shoff, 0, 64, 0, 0, 64, 3, 2)

    def section(name: int, kind: int, offset: int, size: int) -> bytes:
        return struct.pack("<IIQQQQIIQQ", name, kind, 0, 0, offset, size, 0, 0, 1, 0)

    sections = section(0, 0, 0, 0)
    sections += section(1, 1, info_at, len(info))
    sections += section(10, 3, names_at, len(names))
    return header + info + names + sections


class FakeDebian:
    """A `CommandRunner` that plays apt-cache, apt-get, dpkg-deb and busybox --list."""

    def __init__(self, *, stale_lists: bool = False, fail_unpack: bool = False) -> None:
        self.calls: list[list[str]] = []
        self.stale_lists = stale_lists
        self.fail_unpack = fail_unpack

    def __call__(self, argv: Sequence[str], *, cwd: Path | None = None) -> CommandResult:
        argv = list(argv)
        self.calls.append(argv)
        if argv[:2] == ["apt-cache", "pkgnames"]:
            names = (
                [] if self.stale_lists else [KERNEL, f"{KERNEL}-dbg", "linux-image-6.1.0-9-amd64"]
            )
            return CommandResult(0, "".join(f"{n}\n" for n in names), "")
        if argv[:2] == ["apt-cache", "policy"]:
            return CommandResult(0, POLICY, "")
        if argv[-1] == "update":
            self.stale_lists = False
            return CommandResult(0, "Reading package lists...\n", "")
        if "download" in argv:
            return self._download(argv[-1], cwd)
        if argv[0] == "dpkg-deb":
            return self._unpack(Path(argv[2]), Path(argv[3]))
        if argv[-1] == "--list":
            return CommandResult(0, "busybox\nsh\ninit\nmount\nudhcpc\n", "")
        return CommandResult(127, "", f"unexpected command {argv}")

    def _download(self, package: str, cwd: Path | None) -> CommandResult:
        if self.stale_lists:
            return CommandResult(100, "", f"E: Unable to locate package {package}\n")
        assert cwd is not None
        version = "1%3a1.35.0-4" if package == "busybox-static" else "6.1.192-2"
        (cwd / f"{package}_{version}_amd64.deb").write_bytes(package.encode())
        return CommandResult(0, "", "")

    def _unpack(self, deb: Path, dest: Path) -> CommandResult:
        if self.fail_unpack:
            return CommandResult(2, "", "dpkg-deb: error: unexpected end of file\n")
        if deb.read_bytes() == b"busybox-static":
            (dest / "bin").mkdir(parents=True)
            (dest / "bin" / "busybox").write_bytes(b"\x7fELF busybox")
            return CommandResult(0, "", "")
        (dest / "boot").mkdir(parents=True)
        (dest / "boot" / f"vmlinuz-{RELEASE}").write_bytes(b"bzImage" * 100)
        moddir = dest / "lib" / "modules" / RELEASE
        for name, (path, depends) in MODULES.items():
            (moddir / path).parent.mkdir(parents=True, exist_ok=True)
            (moddir / path).write_bytes(make_module({"name": name, "depends": depends}))
        (moddir / "modules.builtin").write_text("kernel/fs/ext4/ext4.ko\n")
        return CommandResult(0, "", "")


def read_newc(data: bytes) -> list[tuple[str, int, bytes, tuple[int, int]]]:
    """(name, mode, data, rdev) of each member, checking magic and 4-byte alignment."""
    members: list[tuple[str, int, bytes, tuple[int, int]]] = []
    offset = 0
    while True:
        assert offset % 4 == 0
        header = data[offset : offset + 110]
        assert header[:6] == b"070701"
        fields = [int(header[6 + 8 * i : 14 + 8 * i], 16) for i in range(13)]
        mode, size, rdev, namesize = fields[1], fields[6], (fields[9], fields[10]), fields[11]
        name = data[offset + 110 : offset + 110 + namesize - 1].decode()
        offset += 110 + namesize
        offset += -offset % 4
        body = data[offset : offset + size]
        offset += size + (-size % 4)
        if name == "TRAILER!!!":
            assert offset == len(data)
            return members
        members.append((name, mode, body, rdev))
