"""Parsers for the text QEMU prints for `--version`, `-machine help`, `-cpu help`,
`-device help` and `-accel help`.

Pure functions from text to typed values; no process is run here (qemu_info.py runs QEMU and
caches). The formats are those of qemu-system-x86_64 7.x/8.x; unknown lines are skipped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from vmkit.errors import QemuError


@dataclass(frozen=True)
class MachineType:
    """One `-machine help` line. An alias (pc, q35) names its `canonical` versioned machine."""

    name: str
    description: str
    canonical: str | None = None  # "(alias of pc-i440fx-7.2)"
    is_default: bool = False  # "(default)"
    deprecated: bool = False  # "(deprecated)"


@dataclass(frozen=True)
class CpuModel:
    """One `-cpu help` model."""

    name: str
    description: str
    alias_of: str | None = None  # "(alias of Broadwell-v3)"
    machine_alias: bool = False  # "(alias configured by machine type)": version chosen by machine


@dataclass(frozen=True)
class DeviceType:
    """One `-device help` line."""

    name: str
    category: str  # "Network devices"
    bus: str | None = None  # PCI, usb-bus, ...
    aliases: tuple[str, ...] = ()
    description: str = ""


_VERSION = re.compile(r"QEMU emulator version (\d+)\.(\d+)(?:\.(\d+))?")


def parse_version(text: str) -> tuple[int, int, int]:
    """(7, 2, 22) from "QEMU emulator version 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)"."""
    m = _VERSION.search(text)
    if not m:
        first = text.strip().splitlines()[0] if text.strip() else "nothing"
        raise QemuError(f"cannot read QEMU's version from its --version output: {first}")
    return int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)


def parse_version_text(text: str) -> str:
    """The version as QEMU words it: "7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)"."""
    first = text.strip().splitlines()[0] if text.strip() else ""
    return first.removeprefix("QEMU emulator version ").strip()


_MACHINE_SUFFIX = re.compile(r"\s*\((alias of (\S+)|default|deprecated)\)$")


def parse_machines(text: str) -> dict[str, MachineType]:
    """Every machine name of `-machine help`, aliases included, in QEMU's order."""
    machines: dict[str, MachineType] = {}
    for line in text.splitlines():
        if not line.strip() or line.startswith("Supported machines") or line[0].isspace():
            continue
        name, _, rest = line.partition(" ")
        rest = rest.strip()
        canonical, default, deprecated = None, False, False
        while m := _MACHINE_SUFFIX.search(rest):
            if m.group(2):
                canonical = m.group(2)
            elif m.group(1) == "default":
                default = True
            else:
                deprecated = True
            rest = rest[: m.start()]
        machines[name] = MachineType(name, rest.strip(), canonical, default, deprecated)
    return machines


_CPU_ALIAS = re.compile(r"\(alias of (\S+)\)$")


def parse_cpu_help(text: str) -> tuple[dict[str, CpuModel], tuple[str, ...]]:
    """(models, CPUID flag names) from `-cpu help`."""
    models: dict[str, CpuModel] = {}
    flags: list[str] = []
    section = ""
    for line in text.splitlines():
        if line.startswith("Available CPUs"):
            section = "models"
        elif line.startswith("Recognized CPUID flags"):
            section = "flags"
        elif section == "flags" and line[:1].isspace():
            flags.extend(line.split())
        elif section == "models" and line.strip():
            body = line.removeprefix("x86 ").strip()
            name, _, desc = body.partition(" ")
            desc = desc.strip()
            alias = _CPU_ALIAS.search(desc)
            models[name] = CpuModel(
                name,
                "" if alias or desc.startswith("(alias") else desc,
                alias.group(1) if alias else None,
                desc == "(alias configured by machine type)",
            )
    return models, tuple(flags)


_DEVICE_NAME = re.compile(r'^name "([^"]+)"')
_DEVICE_BUS = re.compile(r", bus ([^,]+)")
_DEVICE_ALIAS = re.compile(r', alias "([^"]+)"')
_DEVICE_DESC = re.compile(r', desc "((?:[^"\\]|\\.)*)"')


def parse_devices(text: str) -> dict[str, DeviceType]:
    """Every device of `-device help`, keyed by name."""
    devices: dict[str, DeviceType] = {}
    category = ""
    for line in text.splitlines():
        m = _DEVICE_NAME.match(line)
        if not m:
            if line.rstrip().endswith(":"):
                category = line.rstrip()[:-1]
            continue
        bus = _DEVICE_BUS.search(line)
        desc = _DEVICE_DESC.search(line)
        devices[m.group(1)] = DeviceType(
            name=m.group(1),
            category=category,
            bus=bus.group(1).strip() if bus else None,
            aliases=tuple(_DEVICE_ALIAS.findall(line)),
            description=desc.group(1) if desc else "",
        )
    return devices


def parse_accelerators(text: str) -> tuple[str, ...]:
    """("tcg", "kvm") from `-accel help`."""
    return tuple(
        line.strip()
        for line in text.splitlines()
        if line.strip() and not line.startswith("Accelerators") and " " not in line.strip()
    )
