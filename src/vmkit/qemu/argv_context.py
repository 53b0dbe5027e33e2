"""What every part of the argv builder shares: inputs, the machine family, -device values.

`Ctx` bundles the domain, the options and the runtime paths of one build with the machine
family (pc, q35, microvm) they imply. `DeviceArg` is one `-device` whose PCI bus and address
the planner in argv_pci.py fills in before it is rendered. `render_opts` writes QEMU's
`key=value,...` syntax with commas doubled, so that any path or string survives.

Pure: no I/O. This module does not know about any particular device.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum, StrEnum
from pathlib import Path
from typing import Literal

from vmkit.errors import InvalidConfig
from vmkit.model.devices import Address
from vmkit.model.domain import Domain

OptValue = str | int | bool
_ID_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,127}$")
_MACHINE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


@dataclass(frozen=True)
class RuntimePaths:
    """Where one run of a domain keeps its sockets and logs."""

    qmp_socket: Path
    console_socket: Path
    console_log: Path
    run_dir: Path


HOTPLUG_PORTS = 4  # q35: spare pcie-root-ports a start leaves free for hot-plug


@dataclass(frozen=True)
class ArgvOptions:
    """What the host decides for a run: accelerator, binary, vhost, TSC, taps, spare ports."""

    accel: Literal["kvm", "tcg"]
    binary: str = "qemu-system-x86_64"
    vhost_net: bool = False  # never vhost=on unless /dev/vhost-net exists
    tsc_khz: int | None = None  # host TSC kHz, for microvm's kernel command line
    taps: Mapping[int, str] = field(default_factory=dict)  # interface index -> tap name
    hotplug_ports: int = HOTPLUG_PORTS  # q35: free pcie-root-ports left for hot-plug
    root_ports: int = 0  # q35: at least this many root ports (restore: as many as QEMU had)
    now: datetime | None = None  # start time for <clock offset='variable'>; None: the clock


class Family(StrEnum):
    """The machine families vmkit drives; versioned names map onto them."""

    PC = "pc"
    Q35 = "q35"
    MICROVM = "microvm"


def machine_family(machine: str) -> Family:
    """pc / pc-i440fx-X / pc-X.Y -> PC, q35 / pc-q35-X -> Q35, microvm -> MICROVM."""
    xpath = "/domain/os/type/@machine"
    if not _MACHINE_RE.match(machine):
        raise InvalidConfig(f"malformed machine type '{machine}'", xpath=xpath, value=machine)
    if machine == "microvm":
        return Family.MICROVM
    if machine == "q35" or machine.startswith("pc-q35-"):
        return Family.Q35
    if machine == "pc" or machine.startswith("pc-i440fx-") or re.match(r"^pc-\d", machine):
        return Family.PC
    raise InvalidConfig(
        f"machine type '{machine}' is not supported (use pc, q35, microvm or a versioned "
        "pc-i440fx-*/pc-q35-* name)",
        xpath=xpath,
        value=machine,
    )


@dataclass
class Ctx:
    """One build: its inputs and the machine family."""

    dom: Domain
    opts: ArgvOptions
    paths: RuntimePaths
    family: Family
    boot: dict[int, int] = field(default_factory=dict)  # id(disk or interface) -> bootindex

    def boot_index(self, device: object) -> int | None:
        """The bootindex of a disk or interface: its own boot order or from <os><boot>."""
        return self.boot.get(id(device))

    @property
    def microvm(self) -> bool:
        return self.family is Family.MICROVM

    def virtio(self, pci_name: str, mmio_name: str) -> str:
        """The virtio device name for this machine: PCI on pc/q35, virtio-mmio on microvm."""
        return mmio_name if self.microvm else pci_name

    def pci_address(self, addr: Address | None, xpath: str) -> Address | None:
        """The XML address of a device that is PCI on pc/q35 and virtio-mmio on microvm."""
        if self.microvm:
            if addr is not None and addr.type == "pci":
                raise InvalidConfig(
                    "the microvm machine type has no PCI bus; remove the PCI address",
                    xpath=xpath + "/address",
                )
            expect_address(addr, ("virtio-mmio",), xpath)
            return None  # virtio-mmio slots are QEMU's to assign
        return expect_address(addr, ("pci",), xpath)

    def refuse_on_microvm(self, what: str, xpath: str) -> None:
        if self.microvm:
            raise InvalidConfig(f"{what} is not available on the microvm machine type", xpath=xpath)


class Slot(Enum):
    """Where a PCI device goes when the XML gives it no address."""

    NONE = "none"  # not a PCI device (ISA, USB, SCSI, virtio-serial, virtio-mmio, ...)
    ROOT = "root"  # bus 0 (integrated on q35): video
    PORT = "port"  # q35: a pcie-root-port of its own (hot-pluggable); pc: bus 0


@dataclass
class DeviceArg:
    """One `-device`: driver, properties, and what the PCI planner needs."""

    driver: str
    props: dict[str, OptValue]
    xpath: str
    slot: Slot = Slot.NONE
    address: Address | None = None
    bus_props: dict[str, OptValue] = field(default_factory=dict)  # set by the PCI planner

    def render(self) -> list[str]:
        return ["-device", render_opts(self.driver, {**self.bus_props, **self.props})]


Item = DeviceArg | tuple[str, ...]


def render_opts(head: str | None, props: Mapping[str, OptValue | None]) -> str:
    """`head,key=value,...` in QEMU's syntax; None values are left out, bools are on/off."""
    parts = [escape(head)] if head is not None else []
    for key, value in props.items():
        if value is None:
            continue
        text = _text(value)
        parts.append(f"{key}={escape(text)}")
    return ",".join(parts)


def _text(value: OptValue) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(value)


def escape(value: str) -> str:
    """Double commas, QEMU's escape inside a `key=value,...` option string."""
    return value.replace(",", ",,")


def render_items(items: Iterable[Item]) -> list[str]:
    out: list[str] = []
    for item in items:
        out.extend(item.render() if isinstance(item, DeviceArg) else item)
    return out


def device_id(alias: str | None, default: str) -> str:
    """libvirt's rule: a user alias (`ua-` prefix) names the device, otherwise vmkit's own."""
    if alias and alias.startswith("ua-") and _ID_RE.match(alias):
        return alias
    return default


def check_path(path: str, xpath: str) -> str:
    """A host path that can reach QEMU: absolute, no NUL, no newline."""
    if not path.startswith("/") or "\x00" in path or "\n" in path:
        raise InvalidConfig(f"'{path}' is not a usable absolute path", xpath=xpath, value=path)
    return path


def int_attr(addr: Address, name: str, xpath: str, default: int = 0) -> int:
    """An integer attribute of an `<address>` (decimal or 0x-hex)."""
    text = addr.attrs.get(name)
    if text is None:
        return default
    try:
        return int(text, 0)
    except ValueError:
        raise InvalidConfig(
            f"address attribute {name}='{text}' is not a number",
            xpath=f"{xpath}/address/@{name}",
            value=text,
        ) from None


def expect_address(addr: Address | None, types: Iterable[str], xpath: str) -> Address | None:
    """`addr` if it is one of `types` (None passes); otherwise an error naming the element."""
    allowed = tuple(types)
    if addr is None or addr.type in allowed:
        return addr
    want = " or ".join(f"'{t}'" for t in allowed) or "no address"
    raise InvalidConfig(
        f"address type '{addr.type}' is not valid here (expected {want})",
        xpath=f"{xpath}/address/@type",
        value=addr.type,
    )
