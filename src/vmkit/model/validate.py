"""Semantic checks of a Domain: names, uuid, memory, vcpus, topology, devices, boot order, MACs.

Pure: raises vmkit.errors.InvalidConfig naming the XPath and value; changes nothing. Checks that
need the host (machine types QEMU has) take what they need as arguments.
"""

from __future__ import annotations

import re
import uuid as uuid_mod
from collections.abc import Collection

from vmkit.errors import InvalidConfig
from vmkit.model.devices import DiskBus, DiskDevice
from vmkit.model.domain import Domain

NAME_MAX = 200
_MAC_RE = re.compile(r"^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$")
_DEV_PREFIX_BUS = {"vd": DiskBus.VIRTIO, "sd": DiskBus.SCSI, "hd": DiskBus.IDE, "fd": DiskBus.FDC}
_TARGET_DEV_RE = re.compile(r"^(vd|sd|hd|fd|xvd|ubd)[a-z]{1,3}$")
_BUSES_FOR_DEVICE = {
    DiskDevice.DISK: {DiskBus.VIRTIO, DiskBus.IDE, DiskBus.SATA, DiskBus.SCSI, DiskBus.USB},
    DiskDevice.CDROM: {DiskBus.IDE, DiskBus.SATA, DiskBus.SCSI, DiskBus.USB},
    DiskDevice.FLOPPY: {DiskBus.FDC},
}


def check_name(name: str, *, kind: str = "domain", xpath: str = "/domain/name") -> None:
    """A name that is safe in paths and on command lines."""
    if not name or not name.strip():
        raise InvalidConfig(f"{kind} name must not be empty", xpath=xpath, value=name)
    if len(name) > NAME_MAX:
        raise InvalidConfig(
            f"{kind} name is {len(name)} characters long; at most {NAME_MAX} are allowed",
            xpath=xpath,
            value=name,
        )
    if "/" in name:
        raise InvalidConfig(f"{kind} name '{name}' must not contain '/'", xpath=xpath, value=name)
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise InvalidConfig(
            f"{kind} name {name!r} must not contain control characters", xpath=xpath, value=name
        )
    if name.startswith("-"):
        raise InvalidConfig(
            f"{kind} name '{name}' must not start with '-'", xpath=xpath, value=name
        )
    if name in (".", ".."):
        raise InvalidConfig(f"{kind} name '{name}' is not allowed", xpath=xpath, value=name)


def check_uuid(value: str, *, xpath: str = "/domain/uuid") -> str:
    """Return the canonical form of a uuid, or fail naming it."""
    try:
        return str(uuid_mod.UUID(value))
    except ValueError:
        raise InvalidConfig(f"malformed uuid '{value}'", xpath=xpath, value=value) from None


def check_mac(mac: str, *, xpath: str) -> None:
    """A well-formed unicast MAC address."""
    if not _MAC_RE.match(mac):
        raise InvalidConfig(f"malformed MAC address '{mac}'", xpath=xpath, value=mac)
    if int(mac[:2], 16) & 1:
        raise InvalidConfig(
            f"MAC address '{mac}' is multicast; a NIC needs a unicast address",
            xpath=xpath,
            value=mac,
        )


def bus_for_target(dev: str) -> DiskBus | None:
    """The bus libvirt derives from a target name prefix (vda -> virtio, sda -> scsi, ...)."""
    return _DEV_PREFIX_BUS.get(dev[:2])


def validate_domain(dom: Domain, *, machines: Collection[str] | None = None) -> None:
    """Check everything that can be checked without the host; `machines` adds the machine check."""
    check_name(dom.name)
    check_uuid(dom.uuid)
    _check_memory(dom)
    _check_vcpus(dom)
    if machines is not None and dom.os.machine and dom.os.machine not in machines:
        raise InvalidConfig(
            f"machine type '{dom.os.machine}' is not supported by this QEMU",
            xpath="/domain/os/type/@machine",
            value=dom.os.machine,
        )
    _check_disks(dom)
    _check_interfaces(dom)
    _check_boot(dom)


def _check_memory(dom: Domain) -> None:
    if dom.memory_kib <= 0:
        raise InvalidConfig("memory must be greater than 0", xpath="/domain/memory", value=0)
    cur = dom.current_memory_kib
    if cur is not None and (cur <= 0 or cur > dom.memory_kib):
        raise InvalidConfig(
            f"currentMemory ({cur} KiB) must be between 1 and memory ({dom.memory_kib} KiB)",
            xpath="/domain/currentMemory",
            value=cur,
        )
    mx = dom.max_memory_kib
    if mx is not None and mx < dom.memory_kib:
        raise InvalidConfig(
            f"maxMemory ({mx} KiB) is less than memory ({dom.memory_kib} KiB)",
            xpath="/domain/maxMemory",
            value=mx,
        )


def _check_vcpus(dom: Domain) -> None:
    v = dom.vcpu
    if v.count < 1:
        raise InvalidConfig(
            f"vcpu count must be at least 1, got {v.count}", xpath="/domain/vcpu", value=v.count
        )
    if v.current is not None and not 1 <= v.current <= v.count:
        raise InvalidConfig(
            f"current vcpus ({v.current}) must be between 1 and the maximum ({v.count})",
            xpath="/domain/vcpu/@current",
            value=v.current,
        )
    topo = dom.cpu.topology if dom.cpu else None
    if topo is not None:
        product = topo.sockets * topo.dies * topo.cores * topo.threads
        if min(topo.sockets, topo.dies, topo.cores, topo.threads) < 1 or product != v.count:
            raise InvalidConfig(
                f"CPU topology sockets={topo.sockets} dies={topo.dies} cores={topo.cores} "
                f"threads={topo.threads} gives {product} vcpus, but vcpu is {v.count}",
                xpath="/domain/cpu/topology",
                value=product,
            )


def _check_disks(dom: Domain) -> None:
    seen: set[str] = set()
    for i, disk in enumerate(dom.devices.disks, start=1):
        xp = f"/domain/devices/disk[{i}]"
        dev = disk.target_dev
        if not _TARGET_DEV_RE.match(dev):
            raise InvalidConfig(
                f"disk target dev '{dev}' is not a valid name (e.g. vda, sda, hdc, fda)",
                xpath=xp + "/target/@dev",
                value=dev,
            )
        if dev in seen:
            raise InvalidConfig(
                f"target dev '{dev}' is used by more than one disk",
                xpath=xp + "/target/@dev",
                value=dev,
            )
        seen.add(dev)
        bus = disk.target_bus or bus_for_target(dev)
        if bus is None or bus not in _BUSES_FOR_DEVICE[disk.device]:
            raise InvalidConfig(
                f"bus '{bus}' is not supported for a {disk.device} device (disk '{dev}')",
                xpath=xp + "/target/@bus",
                value=str(bus),
            )
        if disk.source is not None and "\x00" in disk.source:
            raise InvalidConfig(
                f"disk '{dev}' source path contains a NUL character",
                xpath=xp + "/source",
                value=disk.source,
            )
        if disk.source is None and disk.device == DiskDevice.DISK:
            raise InvalidConfig(
                f"disk '{dev}' has no source; only cdrom and floppy drives may be empty",
                xpath=xp + "/source",
            )


def _check_interfaces(dom: Domain) -> None:
    macs: set[str] = set()
    for i, nic in enumerate(dom.devices.interfaces, start=1):
        xp = f"/domain/devices/interface[{i}]"
        if nic.mac_address is not None:
            check_mac(nic.mac_address, xpath=xp + "/mac/@address")
            if nic.mac_address.lower() in macs:
                raise InvalidConfig(
                    f"MAC address '{nic.mac_address}' is used by more than one interface",
                    xpath=xp + "/mac/@address",
                    value=nic.mac_address,
                )
            macs.add(nic.mac_address.lower())


def _check_boot(dom: Domain) -> None:
    orders: dict[int, str] = {}
    devices: list[tuple[str, int | None]] = [
        (f"disk '{d.target_dev}'", d.boot_order) for d in dom.devices.disks
    ]
    devices += [
        (f"interface {n.mac_address or n.target_dev or i}", n.boot_order)
        for i, n in enumerate(dom.devices.interfaces, start=1)
    ]
    for what, order in devices:
        if order is None:
            continue
        if order < 1:
            raise InvalidConfig(f"boot order of {what} must be >= 1", xpath="boot/@order")
        if order in orders:
            raise InvalidConfig(
                f"boot order {order} is used by both {orders[order]} and {what}",
                xpath="/domain/devices//boot/@order",
                value=order,
            )
        orders[order] = what
    if orders and dom.os.boot_devs:
        raise InvalidConfig(
            "per-device boot elements cannot be used together with <os><boot dev=...>",
            xpath="/domain/os/boot",
        )
