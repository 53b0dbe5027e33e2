"""`<disk>` and the storage controllers -> `-blockdev` (file node + format node) and `-device`.

Each disk with a source gets two nodes named after its target: `vda-storage` (file /
host_device / host_cdrom) and `vda-format` (raw / qcow2), which the device's `drive=` names.
An empty cdrom or floppy is a device without a drive. Device ids are libvirt's aliases
(`virtio-disk0`, `ide0-1-0`, `sata0-0-2`, `scsi0-0-0-1`, `fdc0-0-0`, `usb-disk3`) unless a
user alias (`ua-...`) is given.

Cache modes map to `cache.direct`/`cache.no-flush` on the nodes and `write-cache` on the
device, as libvirt does: none (on/off/on), writethrough (off/off/off), writeback (off/off/on),
directsync (on/off/off), unsafe (off/on/on); `default` leaves QEMU's default (writeback).

Buses: virtio -> virtio-blk-pci (virtio-blk-device on microvm); ide -> pc's built-in IDE
(ide.0/ide.1, two units each) or q35's built-in AHCI ports; sata -> q35's built-in AHCI
(`ide.0`..`ide.5`) as controller 0, an `ahci` device otherwise; scsi -> virtio-scsi (default),
lsi53c895a, pvscsi, mptsas1068 or megasas, with scsi-hd/scsi-cd; usb -> usb-storage (usb-bot
+ scsi-cd for a cdrom); fdc -> pc's built-in floppy controller, an `isa-fdc` on q35.
Controllers a disk needs but the XML does not declare are added, like libvirt's defaults.

Pure: no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from vmkit.errors import InvalidConfig
from vmkit.model.devices import (
    Address,
    Controller,
    ControllerType,
    Disk,
    DiskBus,
    DiskCache,
    DiskDevice,
    DiskFormat,
    DiskIo,
    DiskType,
)
from vmkit.model.validate import bus_for_target
from vmkit.qemu.argv_context import (
    Ctx,
    DeviceArg,
    Family,
    Item,
    OptValue,
    Slot,
    check_path,
    device_id,
    expect_address,
    int_attr,
    render_opts,
)
from vmkit.qemu.argv_devices import usb_bus_props

_NAME_RE = re.compile(r"^(vd|sd|hd|fd|xvd|ubd)([a-z]{1,3})$")
# cache mode -> (cache.direct, cache.no-flush, write-cache)
_CACHE = {
    DiskCache.NONE: (True, False, True),
    DiskCache.WRITETHROUGH: (False, False, False),
    DiskCache.WRITEBACK: (False, False, True),
    DiskCache.DIRECTSYNC: (True, False, False),
    DiskCache.UNSAFE: (False, True, True),
}
_SCSI_MODELS = {
    "virtio-scsi": "virtio-scsi-pci",
    "lsilogic": "lsi53c895a",
    "vmpvscsi": "pvscsi",
    "lsisas1068": "mptsas1068",
    "lsisas1078": "megasas",
}
_UNITS = {DiskBus.IDE: 4, DiskBus.SATA: 6, DiskBus.SCSI: 7}  # units per controller
_STORAGE = {ControllerType.IDE, ControllerType.SATA, ControllerType.SCSI, ControllerType.FDC}
_BUS_CTRL = {
    DiskBus.IDE: ControllerType.IDE,
    DiskBus.SATA: ControllerType.SATA,
    DiskBus.SCSI: ControllerType.SCSI,
    DiskBus.FDC: ControllerType.FDC,
}


@dataclass(frozen=True)
class DriveAddr:
    """`<address type='drive'>`: where a disk sits on its controller."""

    controller: int = 0
    bus: int = 0
    target: int = 0
    unit: int = 0


@dataclass
class _Disk:
    disk: Disk
    xpath: str
    bus: DiskBus
    index: int  # from the target name: vda -> 0, vdb -> 1, vdaa -> 26
    addr: DriveAddr


def disk_index(dev: str) -> int:
    """libvirt's disk name -> index: the letters after the prefix in base 26 (a=0, aa=26)."""
    m = _NAME_RE.match(dev)
    if not m:
        raise InvalidConfig(f"disk target dev '{dev}' is not a valid name", value=dev)
    n = 0
    for ch in m.group(2):
        n = n * 26 + (ord(ch) - ord("a") + 1)
    return n - 1


def disk_items(ctx: Ctx) -> list[Item]:
    disks = [_describe(ctx, d, i) for i, d in enumerate(ctx.dom.devices.disks, start=1)]
    ctrls = _controllers(ctx, disks)
    items: list[Item] = []
    for kind, index, ctrl, xpath in ctrls:
        items += _controller_items(ctx, kind, index, ctrl, xpath, disks)
    scsi_models = {index: _scsi_model(ctrl) for kind, index, ctrl, _ in ctrls if kind == "scsi"}
    for d in disks:
        items += _blockdev_items(d)
        items += _disk_devices(ctx, d, scsi_models)
    return items


def _describe(ctx: Ctx, disk: Disk, i: int) -> _Disk:
    xpath = f"/domain/devices/disk[{i}]"
    bus = disk.target_bus or bus_for_target(disk.target_dev)
    if bus is None:
        raise InvalidConfig(
            f"cannot tell the bus of disk '{disk.target_dev}'", xpath=xpath + "/target/@bus"
        )
    if disk.driver_name not in (None, "qemu"):
        raise InvalidConfig(
            f"disk driver '{disk.driver_name}' is not supported (only 'qemu')",
            xpath=xpath + "/driver/@name",
            value=disk.driver_name,
        )
    index = disk_index(disk.target_dev)
    if bus in (DiskBus.VIRTIO, DiskBus.USB):
        if bus is DiskBus.VIRTIO:
            ctx.pci_address(disk.address, xpath)
        else:
            expect_address(disk.address, ("usb",), xpath)
        return _Disk(disk, xpath, bus, index, DriveAddr())
    addr = expect_address(disk.address, ("drive",), xpath)
    if addr is not None:
        drive = DriveAddr(
            *(int_attr(addr, k, xpath) for k in ("controller", "bus", "target", "unit"))
        )
    elif bus is DiskBus.FDC:
        drive = DriveAddr(unit=index)
    elif bus is DiskBus.IDE:
        drive = DriveAddr(index // 4, (index % 4) // 2, 0, index % 2)
    else:
        drive = DriveAddr(index // _UNITS[bus], 0, 0, index % _UNITS[bus])
    if bus is DiskBus.IDE and drive.controller:
        raise InvalidConfig(
            f"IDE disk '{disk.target_dev}' is outside the built-in IDE controller (hda-hdd)",
            xpath=xpath + ("/address" if addr else "/target/@dev"),
            value=disk.target_dev,
        )
    return _Disk(disk, xpath, bus, index, drive)


def _controllers(ctx: Ctx, disks: list[_Disk]) -> list[tuple[str, int, Controller | None, str]]:
    """Declared storage controllers in document order, then the ones disks need, by kind."""
    found: list[tuple[str, int, Controller | None, str]] = []
    seen: set[tuple[str, int]] = set()
    for i, ctrl in enumerate(ctx.dom.devices.controllers, start=1):
        if ctrl.type in _STORAGE:
            key = (str(ctrl.type), ctrl.index)
            if key in seen:
                raise InvalidConfig(
                    f"more than one {ctrl.type} controller has index {ctrl.index}",
                    xpath=f"/domain/devices/controller[{i}]/@index",
                    value=ctrl.index,
                )
            seen.add(key)
            found.append((*key, ctrl, f"/domain/devices/controller[{i}]"))
    needed = sorted(
        {(str(_BUS_CTRL[d.bus]), d.addr.controller) for d in disks if d.bus in _BUS_CTRL}
    )
    for key in needed:
        if key not in seen:
            found.append((*key, None, "/domain/devices"))
    return found


def _scsi_model(ctrl: Controller | None) -> str:
    return (ctrl.model if ctrl else None) or "virtio-scsi"


def _controller_items(
    ctx: Ctx, kind: str, index: int, ctrl: Controller | None, xpath: str, disks: list[_Disk]
) -> list[Item]:
    address = ctrl.address if ctrl else None
    ctx.refuse_on_microvm(f"a {kind} controller", xpath)
    if kind == "scsi":
        model = _scsi_model(ctrl)
        driver = _SCSI_MODELS.get(model)
        if driver is None:
            raise InvalidConfig(
                f"SCSI controller model '{model}' is not supported "
                f"({', '.join(sorted(_SCSI_MODELS))})",
                xpath=xpath + "/@model",
                value=model,
            )
        expect_address(address, ("pci",), xpath)
        return [DeviceArg(driver, {"id": f"scsi{index}"}, xpath, Slot.PORT, address)]
    if kind == "sata" and not (ctx.family is Family.Q35 and index == 0):
        expect_address(address, ("pci",), xpath)
        return [DeviceArg("ahci", {"id": f"sata{index}"}, xpath, Slot.PORT, address)]
    if kind == "ide" and index != 0:
        raise InvalidConfig(
            "only the built-in IDE controller (index 0) is available", xpath=xpath + "/@index"
        )
    if kind == "fdc":
        return _fdc_items(ctx, index, xpath, address, disks)
    _check_builtin(ctx, kind, xpath, address)
    return []


def _check_builtin(ctx: Ctx, kind: str, xpath: str, address: Address | None) -> None:
    """The built-in IDE (pc 00:01.1) or AHCI (q35 00:1f.2) cannot move."""
    fixed = {Family.PC: (1, 1), Family.Q35: (0x1F, 2)}[ctx.family]
    addr = expect_address(address, ("pci",), xpath)
    if addr is None:
        return
    where = (int_attr(addr, "bus", xpath), int_attr(addr, "slot", xpath))
    fn = int_attr(addr, "function", xpath)
    if where != (0, fixed[0]) or fn != fixed[1]:
        raise InvalidConfig(
            f"the built-in {kind} controller of a {ctx.family} machine is at "
            f"00:{fixed[0]:02x}.{fixed[1]}",
            xpath=xpath + "/address",
        )


def _fdc_items(
    ctx: Ctx, index: int, xpath: str, address: Address | None, disks: list[_Disk]
) -> list[Item]:
    if index != 0:
        raise InvalidConfig("only one floppy controller (index 0) is available", xpath=xpath)
    expect_address(address, ("isa",), xpath)
    boot: dict[str, OptValue] = {}
    for d in disks:
        order = ctx.boot_index(d.disk)
        if d.bus is DiskBus.FDC and order is not None:
            boot["bootindexA" if d.addr.unit == 0 else "bootindexB"] = order
    if ctx.family is Family.PC:
        return [("-global", f"isa-fdc.{k}={v}") for k, v in boot.items()]
    return [DeviceArg("isa-fdc", {"id": "fdc0", **boot}, xpath)]


def _blockdev_items(d: _Disk) -> list[Item]:
    disk = d.disk
    if disk.source is None:
        return []
    path = check_path(disk.source, d.xpath + "/source")
    if disk.type is DiskType.BLOCK:
        driver = "host_cdrom" if disk.device is DiskDevice.CDROM else "host_device"
    else:
        driver = "file"
    readonly = disk.readonly or disk.device is DiskDevice.CDROM
    cache = _cache_props(d)
    discard = _discard(d)
    storage: dict[str, OptValue | None] = {
        "driver": driver,
        "filename": path,
        "node-name": f"{disk.target_dev}-storage",
        "read-only": readonly,
        "aio": _aio(d),
        **cache,
        "discard": discard,
    }
    fmt: dict[str, OptValue | None] = {
        "driver": str(disk.driver_type or DiskFormat.RAW),
        "file": f"{disk.target_dev}-storage",
        "node-name": f"{disk.target_dev}-format",
        "read-only": readonly,
        **cache,
        "discard": discard,
    }
    return [("-blockdev", render_opts(None, storage)), ("-blockdev", render_opts(None, fmt))]


def _cache_props(d: _Disk) -> dict[str, OptValue | None]:
    cache = d.disk.driver_cache
    if cache is None or cache is DiskCache.DEFAULT:
        return {}
    direct, no_flush, _ = _CACHE[cache]
    return {"cache.direct": direct, "cache.no-flush": no_flush}


def _aio(d: _Disk) -> str | None:
    io = d.disk.driver_io
    if io is None:
        return None
    cache = d.disk.driver_cache
    if io is DiskIo.NATIVE and cache not in (DiskCache.NONE, DiskCache.DIRECTSYNC):
        raise InvalidConfig(
            f"io='native' needs cache='none' or 'directsync' (disk '{d.disk.target_dev}')",
            xpath=d.xpath + "/driver/@io",
            value=str(io),
        )
    return str(io)


def _discard(d: _Disk) -> str | None:
    discard = d.disk.driver_discard
    if discard not in (None, "unmap", "ignore"):
        raise InvalidConfig(
            f"discard '{discard}' is not supported (unmap, ignore)",
            xpath=d.xpath + "/driver/@discard",
            value=discard,
        )
    return discard


def _disk_devices(ctx: Ctx, d: _Disk, scsi_models: dict[int, str]) -> list[Item]:
    disk, a = d.disk, d.addr
    cd = disk.device is DiskDevice.CDROM
    props: dict[str, OptValue] = {}
    if d.bus is DiskBus.VIRTIO:
        driver = ctx.virtio("virtio-blk-pci", "virtio-blk-device")
        ident = device_id(disk.alias, f"virtio-disk{d.index}")
        slot = Slot.NONE if ctx.microvm else Slot.PORT
        return [_device(ctx, d, driver, props, ident, slot)]
    ctx.refuse_on_microvm(f"a {d.bus} disk", d.xpath + "/target/@bus")
    if d.bus is DiskBus.USB:
        return _usb_devices(ctx, d)
    if d.bus is DiskBus.FDC:
        return [_floppy(ctx, d)]
    if d.bus is DiskBus.SCSI:
        props.update(_scsi_props(d, scsi_models[a.controller]))
        ident = device_id(disk.alias, f"scsi{a.controller}-{a.bus}-{a.target}-{a.unit}")
        return [_device(ctx, d, "scsi-cd" if cd else "scsi-hd", props, ident)]
    if not cd and disk.readonly:
        raise InvalidConfig(
            f"a read-only {d.bus} hard disk is not supported (disk '{disk.target_dev}')",
            xpath=d.xpath + "/readonly",
        )
    props.update(_ide_props(ctx, d))
    ident = device_id(disk.alias, f"{d.bus}{a.controller}-{a.bus}-{a.unit}")
    return [_device(ctx, d, "ide-cd" if cd else "ide-hd", props, ident)]


def _device(
    ctx: Ctx,
    d: _Disk,
    driver: str,
    props: dict[str, OptValue],
    ident: str,
    slot: Slot = Slot.NONE,
    *,
    boot: bool = True,
) -> DeviceArg:
    """The -device of a disk; `ident` is its id as is (callers apply user aliases)."""
    disk = d.disk
    if disk.source is not None:
        props["drive"] = f"{disk.target_dev}-format"
        cache = disk.driver_cache
        if cache is not None and cache is not DiskCache.DEFAULT:
            props["write-cache"] = _CACHE[cache][2]
    if disk.shareable:
        props["share-rw"] = True
    props["id"] = ident
    if disk.serial is not None:
        props["serial"] = disk.serial
    index = ctx.boot_index(disk)
    if boot and index is not None:
        props["bootindex"] = index
    address = disk.address if disk.address and disk.address.type == "pci" else None
    return DeviceArg(driver, props, d.xpath, slot, address)


def _scsi_props(d: _Disk, model: str) -> dict[str, OptValue]:
    a = d.addr
    props: dict[str, OptValue] = {"bus": f"scsi{a.controller}.0"}
    if model == "lsilogic":
        if a.bus or a.target:
            raise InvalidConfig(
                "an lsilogic SCSI controller has one bus and one target per unit",
                xpath=d.xpath + "/address",
            )
        props["scsi-id"] = a.unit
        return props
    props.update({"channel": a.bus, "scsi-id": a.target, "lun": a.unit})
    return props


def _ide_props(ctx: Ctx, d: _Disk) -> dict[str, OptValue]:
    """IDE on pc: ide.BUS, UNIT; q35 and SATA: one AHCI port per disk (bus NAME.PORT)."""
    a = d.addr
    where = d.xpath + "/address"
    if d.bus is DiskBus.IDE and ctx.family is Family.PC:
        if a.controller or a.bus > 1 or a.unit > 1 or a.target:
            raise InvalidConfig(
                f"IDE disk '{d.disk.target_dev}' is outside the built-in IDE controller "
                "(two buses of two units: hda-hdd)",
                xpath=where,
            )
        return {"bus": f"ide.{a.bus}", "unit": a.unit}
    port = a.bus * 2 + a.unit if d.bus is DiskBus.IDE else a.unit
    if a.target or port > 5 or (d.bus is DiskBus.SATA and a.bus):
        raise InvalidConfig(
            f"disk '{d.disk.target_dev}' is outside its AHCI controller (ports 0-5)", xpath=where
        )
    if d.bus is DiskBus.IDE and a.controller:
        raise InvalidConfig("only the built-in AHCI controller takes IDE disks", xpath=where)
    builtin = ctx.family is Family.Q35 and a.controller == 0
    return {"bus": f"ide.{port}" if builtin else f"sata{a.controller}.{port}"}


def _floppy(ctx: Ctx, d: _Disk) -> DeviceArg:
    a = d.addr
    if a.controller or a.bus or a.target or a.unit > 1:
        raise InvalidConfig(
            f"floppy '{d.disk.target_dev}' is outside the floppy controller (units 0 and 1)",
            xpath=d.xpath + "/address",
        )
    if d.disk.serial is not None:
        raise InvalidConfig("a floppy drive has no serial number", xpath=d.xpath + "/serial")
    props: dict[str, OptValue] = {"unit": a.unit}
    if ctx.family is Family.Q35:
        props = {"bus": "fdc0.0", **props}
    ident = device_id(d.disk.alias, f"fdc0-0-{a.unit}")
    return _device(ctx, d, "floppy", props, ident, boot=False)  # bootindexA/B on the controller


def _usb_devices(ctx: Ctx, d: _Disk) -> list[Item]:
    bus = usb_bus_props(d.disk.address, d.xpath)
    ident = device_id(d.disk.alias, f"usb-disk{d.index}")
    if d.disk.device is not DiskDevice.CDROM:
        return [_device(ctx, d, "usb-storage", dict(bus), ident)]
    bot = DeviceArg("usb-bot", {**bus, "id": ident}, d.xpath)
    cd = _device(ctx, d, "scsi-cd", {"bus": f"{ident}.0", "scsi-id": 0, "lun": 0}, f"{ident}-cd")
    return [bot, cd]
