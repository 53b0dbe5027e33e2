"""The host CPU as /proc/cpuinfo describes it: vendor, signature, flags, frequency.

Pure parsing (`parse_cpuinfo`) plus one reader (`read_cpuinfo`) over a `HostRoots`; it never
runs a program. The flag names are the kernel's (`vmx`, `svm`, `ept`, `npt`, `sse4_1`, ...).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from vmkit.host.roots import HostRoots, read_text


@dataclass(frozen=True)
class CpuInfo:
    """What the first processor block of /proc/cpuinfo says, plus the number of blocks."""

    arch: str  # uname machine: x86_64
    vendor: str  # vendor_id: GenuineIntel, AuthenticAMD
    model_name: str  # model name: "AMD EPYC"
    family: int  # cpu family
    model: int  # model
    stepping: int  # stepping
    microcode: int | None  # microcode, 0x... in the file
    mhz: float  # cpu MHz
    flags: frozenset[str]  # flags, plus "vmx flags" of newer kernels (ept, vpid, ...)
    count: int  # processor blocks
    phys_bits: int | None  # "address sizes: 48 bits physical"

    @property
    def virt_flag(self) -> str | None:
        """ "vmx" (Intel VT-x) or "svm" (AMD-V) when the CPU offers hardware virtualization."""
        for flag in ("vmx", "svm"):
            if flag in self.flags:
                return flag
        return None

    @property
    def paging_flag(self) -> str | None:
        """ "ept" (Intel) or "npt" (AMD) when the CPU offers hardware-assisted paging."""
        for flag in ("ept", "npt"):
            if flag in self.flags:
                return flag
        return None

    @property
    def vendor_short(self) -> str:
        """Intel, AMD or the raw vendor_id, as libvirt's <vendor> says it."""
        return {"GenuineIntel": "Intel", "AuthenticAMD": "AMD", "HygonGenuine": "Hygon"}.get(
            self.vendor, self.vendor
        )


_FIELD = re.compile(r"^([^:]+?)\s*:\s?(.*)$")


def _to_int(text: str, base: int = 10) -> int | None:
    try:
        return int(text.strip(), base)
    except ValueError:
        return None


def parse_cpuinfo(text: str, arch: str = "x86_64") -> CpuInfo:
    """Parse /proc/cpuinfo text; fields missing from the file become 0 / "" / None."""
    blocks = [b for b in text.split("\n\n") if b.strip()]
    first: dict[str, str] = {}
    for line in blocks[0].splitlines() if blocks else []:
        m = _FIELD.match(line)
        if m:
            first.setdefault(m.group(1).strip(), m.group(2).strip())
    count = sum(1 for b in blocks if re.search(r"^processor\s*:", b, re.MULTILINE))
    micro = first.get("microcode", "")
    phys = re.match(r"(\d+) bits physical", first.get("address sizes", ""))
    try:
        mhz = float(first.get("cpu MHz", "0"))
    except ValueError:
        mhz = 0.0
    return CpuInfo(
        arch=arch,
        vendor=first.get("vendor_id", ""),
        model_name=first.get("model name", ""),
        family=_to_int(first.get("cpu family", "")) or 0,
        model=_to_int(first.get("model", "")) or 0,
        stepping=_to_int(first.get("stepping", "")) or 0,
        microcode=_to_int(micro, 16 if micro.startswith("0x") else 10) if micro else None,
        mhz=mhz,
        flags=frozenset(first.get("flags", "").split() + first.get("vmx flags", "").split()),
        count=count,
        phys_bits=int(phys.group(1)) if phys else None,
    )


def read_arch(roots: HostRoots) -> str:
    """The machine architecture: /proc/sys/kernel/arch, else uname."""
    return read_text(roots.proc / "sys/kernel/arch").strip() or os.uname().machine


def read_cpuinfo(roots: HostRoots | None = None) -> CpuInfo:
    """Parse roots.proc/cpuinfo (an empty CpuInfo when the file is missing)."""
    roots = roots or HostRoots()
    return parse_cpuinfo(read_text(roots.proc / "cpuinfo"), read_arch(roots))


def read_meminfo(roots: HostRoots | None = None) -> dict[str, int]:
    """/proc/meminfo as {field: kB} ("MemTotal": 24684096, ...)."""
    roots = roots or HostRoots()
    out: dict[str, int] = {}
    for line in read_text(roots.proc / "meminfo").splitlines():
        name, _, rest = line.partition(":")
        value = _to_int(rest.split()[0]) if rest.split() else None
        if value is not None:
            out[name.strip()] = value
    return out
