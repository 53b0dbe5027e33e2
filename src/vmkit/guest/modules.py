"""Kernel modules of the guest: which .ko files go in, and the order /init loads them in.

Reads a module's dependencies straight from its ELF `.modinfo` section, so the host needs no
depmod; writes the `modules.dep` that busybox modprobe reads inside the guest. Pure except for
`ModuleTree`, which reads an unpacked kernel package. It must not know how the guest boots.
"""

from __future__ import annotations

import lzma
import struct
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from vmkit.guest.errors import GuestBuildError

# Load order that worked (PLATFORM.md "Tiny guest"); button + evdev before acpid starts.
REQUIRED_MODULES = (
    "virtio_ring",
    "virtio",
    "virtio_pci_modern_dev",
    "virtio_pci_legacy_dev",
    "virtio_pci",
    "virtio_mmio",
    "virtio_blk",
    "failover",
    "net_failover",
    "virtio_net",
    "virtio_console",
    "button",
    "evdev",
)
# Loaded when the kernel has them as modules (the Debian cloud kernel has neither).
OPTIONAL_MODULES = ("e1000", "ahci")

_MODULE_SUFFIXES = (".ko", ".ko.xz")


def module_name(filename: str) -> str:
    """`virtio-net.ko` -> `virtio_net` (the kernel treats - and _ alike)."""
    for suffix in _MODULE_SUFFIXES:
        if filename.endswith(suffix):
            filename = filename[: -len(suffix)]
            break
    return filename.replace("-", "_")


def read_modinfo(elf: bytes) -> dict[str, list[str]]:
    """The key=value pairs of a module's `.modinfo` section (a key may repeat)."""
    if elf[:4] != b"\x7fELF" or elf[4] != 2 or elf[5] != 1:
        raise ValueError("not a little-endian 64-bit ELF file")
    shoff = struct.unpack_from("<Q", elf, 0x28)[0]
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", elf, 0x3A)

    def section(index: int) -> tuple[int, int, int]:  # (name offset, file offset, size)
        header = shoff + index * shentsize
        name = struct.unpack_from("<I", elf, header)[0]
        offset, size = struct.unpack_from("<QQ", elf, header + 0x18)
        return name, offset, size

    _, names_at, _ = section(shstrndx)
    for index in range(shnum):
        name, offset, size = section(index)
        end = elf.index(b"\0", names_at + name)
        if elf[names_at + name : end] == b".modinfo":
            info: dict[str, list[str]] = {}
            for item in elf[offset : offset + size].split(b"\0"):
                key, sep, value = item.decode("utf-8", "replace").partition("=")
                if sep:
                    info.setdefault(key, []).append(value)
            return info
    return {}


def module_depends(info: Mapping[str, Sequence[str]]) -> list[str]:
    """The modules a module needs loaded first, from its modinfo `depends=a,b`."""
    return [
        module_name(dep) for value in info.get("depends", ()) for dep in value.split(",") if dep
    ]


def plan_load_order(wanted: Iterable[str], depends: Callable[[str], Sequence[str]]) -> list[str]:
    """`wanted` in order, each preceded by its not yet listed dependencies (depth first)."""
    order: list[str] = []
    visiting: set[str] = set()

    def visit(name: str) -> None:
        if name in order:
            return
        if name in visiting:
            raise GuestBuildError(f"kernel module dependency cycle through {name}")
        visiting.add(name)
        for dep in depends(name):
            visit(dep)
        visiting.discard(name)
        order.append(name)

    for name in wanted:
        visit(name)
    return order


def render_modules_dep(
    order: Sequence[str], paths: Mapping[str, str], depends: Callable[[str], Sequence[str]]
) -> str:
    """modules.dep for `order`: `path: deps...`, deps listed so that the last loads first."""
    lines = []
    for name in order:
        needed = plan_load_order(depends(name), depends)
        deps = " ".join(paths[dep] for dep in reversed(needed))
        lines.append(f"{paths[name]}:{' ' + deps if deps else ''}")
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class GuestModule:
    """A module picked for the guest: its name, path under /lib/modules/RELEASE, its bytes."""

    name: str
    path: str  # kernel/drivers/net/virtio_net.ko
    data: bytes


class ModuleTree:
    """The modules of an unpacked kernel package: /lib/modules/RELEASE under some root."""

    def __init__(self, moddir: Path) -> None:
        if not (moddir / "kernel").is_dir():
            raise GuestBuildError(f"no kernel modules under {moddir}")
        self.moddir = moddir
        self._files: dict[str, Path] = {}
        for path in sorted((moddir / "kernel").rglob("*.ko*")):
            self._files.setdefault(module_name(path.name), path)
        builtin = moddir / "modules.builtin"
        lines = builtin.read_text().splitlines() if builtin.exists() else []
        self.builtin = {module_name(line.rsplit("/", 1)[-1]) for line in lines if line}
        self._data: dict[str, bytes] = {}

    def has(self, name: str) -> bool:
        return name in self._files

    def data(self, name: str) -> bytes:
        """The uncompressed .ko of module `name`."""
        if name not in self._data:
            path = self._files[name]
            raw = path.read_bytes()
            self._data[name] = lzma.decompress(raw) if path.name.endswith(".xz") else raw
        return self._data[name]

    def depends(self, name: str) -> list[str]:
        if name not in self._files:
            raise GuestBuildError(f"kernel module {name} is needed but not in {self.moddir}")
        try:
            return module_depends(read_modinfo(self.data(name)))
        except (ValueError, struct.error, lzma.LZMAError) as exc:
            raise GuestBuildError(f"cannot read kernel module {self._files[name]}: {exc}") from exc

    def relpath(self, name: str) -> str:
        path = self._files[name].relative_to(self.moddir).as_posix()
        return path[: -len(".xz")] if path.endswith(".xz") else path

    def select(self, required: Iterable[str], optional: Iterable[str]) -> list[GuestModule]:
        """The modules to ship, in load order: required ones (error if absent), optional if
        present; built-in ones are skipped."""
        wanted = []
        for name in required:
            if name in self.builtin:
                continue
            if not self.has(name):
                raise GuestBuildError(
                    f"kernel module {name} is neither in {self.moddir} nor built in"
                )
            wanted.append(name)
        wanted += [name for name in optional if self.has(name)]
        order = plan_load_order(wanted, self.depends)
        return [GuestModule(name, self.relpath(name), self.data(name)) for name in order]

    def modules_dep(self, modules: Sequence[GuestModule]) -> str:
        paths = {module.name: module.path for module in modules}
        return render_modules_dep([m.name for m in modules], paths, self.depends)
