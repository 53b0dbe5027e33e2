"""Where the host layer reads the kernel's view of the machine: /proc, /sys, /dev and /etc.

Every reader in `vmkit.host` takes a `HostRoots` so unit tests can point it at a fake tree
(`HostRoots.under(Path("tests/data/host/intel"))`). This module only names paths and reads small
text files; it never writes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class HostRoots:
    """The four trees the host layer reads; defaults are the live system's."""

    proc: Path = Path("/proc")
    sys: Path = Path("/sys")
    dev: Path = Path("/dev")
    etc: Path = Path("/etc")

    @classmethod
    def under(cls, root: Path) -> HostRoots:
        """A fake system laid out as root/proc, root/sys, root/dev, root/etc."""
        return cls(root / "proc", root / "sys", root / "dev", root / "etc")


def read_text(path: Path, default: str = "") -> str:
    """The file's text, or `default` when it is missing or unreadable (sysfs is full of both)."""
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return default


def read_int(path: Path, default: int = 0) -> int:
    """A sysfs file holding one integer; `default` when missing or not a number."""
    text = read_text(path).strip()
    try:
        return int(text)
    except ValueError:
        return default


def parse_cpu_list(text: str) -> list[int]:
    """Expand a kernel cpu list ("0-3,8,10-11") into [0, 1, 2, 3, 8, 10, 11]."""
    cpus: list[int] = []
    for part in text.strip().split(","):
        if not part:
            continue
        first, _, last = part.partition("-")
        try:
            lo = int(first)
            hi = int(last) if last else lo
        except ValueError:
            continue
        cpus.extend(range(lo, hi + 1))
    return cpus


def format_cpu_list(cpus: list[int]) -> str:
    """The kernel/libvirt short form of a cpu set: [0, 1, 2, 5] -> "0-2,5"."""
    parts: list[str] = []
    ordered = sorted(set(cpus))
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        parts.append(str(ordered[i]) if i == j else f"{ordered[i]}-{ordered[j]}")
        i = j + 1
    return ",".join(parts)
