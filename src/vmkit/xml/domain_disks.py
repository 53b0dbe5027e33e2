"""`<disk>` and `<controller>` of a domain XML <-> vmkit.model.devices.

Strict readers and writers in libvirt's order; runtime-only parts (alias, source index) are
written unless `inactive`. Cross-device checks belong to vmkit.model.validate.
"""

from __future__ import annotations

import re

from vmkit.model.devices import (
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
from vmkit.xml.domain_devinfo import (
    path_attr,
    read_boot,
    read_info,
    reindent,
    with_info,
)
from vmkit.xml.xmlutil import Elem, Node

CONTROLLER_MODELS: dict[ControllerType, tuple[str, ...]] = {
    ControllerType.IDE: (),
    ControllerType.FDC: (),
    ControllerType.SATA: (),
    ControllerType.SCSI: ("virtio-scsi", "lsilogic"),
    ControllerType.USB: ("qemu-xhci", "nec-xhci", "piix3-uhci", "ehci", "none"),
    ControllerType.PCI: ("pci-root", "pcie-root", "pcie-root-port"),
    ControllerType.VIRTIO_SERIAL: (),
}
_ROOT_PCI_MODELS = ("pci-root", "pcie-root")

# disks ---------------------------------------------------------------------------------------


def read_disk(node: Node) -> Disk:
    disk = Disk()
    disk.type = node.enum_attr("type", DiskType) or DiskType.FILE
    disk.device = node.enum_attr("device", DiskDevice) or DiskDevice.DISK
    driver = node.child("driver")
    if driver is not None:
        disk.driver_name = driver.choice_attr("name", ("qemu",))
        disk.driver_type = driver.enum_attr("type", DiskFormat)
        disk.driver_cache = driver.enum_attr("cache", DiskCache)
        disk.driver_io = driver.enum_attr("io", DiskIo)
        disk.driver_discard = driver.choice_attr("discard", ("unmap", "ignore"))
        driver.finish()
    source = node.child("source")
    if source is not None:
        _read_disk_source(source, disk)
    backing = node.raw_children("backingStore")
    disk.backing_store = backing[0] if backing else None
    target = node.req_child("target")
    disk.target_dev = target.req_attr("dev")
    disk.target_bus = target.enum_attr("bus", DiskBus)
    disk.target_tray = target.choice_attr("tray", ("open", "closed"))
    target.finish()
    disk.readonly = node.flag_child("readonly")
    disk.shareable = node.flag_child("shareable")
    serial = node.child("serial")
    if serial is not None:
        disk.serial = _disk_serial(serial)
    disk.boot_order = read_boot(node)
    disk.alias, disk.address = read_info(node)
    node.finish()
    return disk


def _read_disk_source(source: Node, disk: Disk) -> None:
    want, other = ("file", "dev") if disk.type == DiskType.FILE else ("dev", "file")
    if source.has(other):
        raise source.error(
            f"attribute '{other}' of <source> does not fit <disk type='{disk.type}'>; use '{want}'",
            attr=other,
        )
    disk.source = path_attr(source, want)
    disk.source_index = source.int_attr("index", minimum=1)
    source.finish()


_SERIAL_RE = re.compile(r"^[A-Za-z0-9_.+\- ]+$")


def _disk_serial(node: Node) -> str:
    value = node.text()
    if not _SERIAL_RE.match(value):
        raise node.error(
            f"invalid disk serial '{value}': expected letters, digits, ' ', '.', '_', '+' or '-'"
        )
    node.finish()
    return value


def render_disk(disk: Disk, inactive: bool) -> Elem:
    el = Elem("disk", type=disk.type.value, device=disk.device.value)
    driver = Elem(
        "driver",
        name=disk.driver_name,
        type=disk.driver_type,
        cache=disk.driver_cache,
        io=disk.driver_io,
        discard=disk.driver_discard,
    )
    if not driver.is_empty():
        el.add(driver)
    if disk.source is not None:
        attr = "file" if disk.type == DiskType.FILE else "dev"
        src = el.sub("source").set(**{attr: disk.source})
        src.put("index", None if inactive else disk.source_index)
    if disk.backing_store is not None:
        el.raw(reindent(disk.backing_store, 3))
    el.sub("target", dev=disk.target_dev, bus=disk.target_bus, tray=disk.target_tray)
    if disk.readonly:
        el.sub("readonly")
    if disk.shareable:
        el.sub("shareable")
    if disk.serial is not None:
        el.sub("serial", disk.serial)
    return with_info(el, disk.alias, disk.address, inactive, disk.boot_order)


# controllers ---------------------------------------------------------------------------------


def read_controllers(nodes: list[Node]) -> list[Controller]:
    """Controllers; a missing index gets the lowest free one of its type, like libvirt."""
    read = [read_controller(n) for n in nodes]
    taken = {(c.type, c.index) for c, explicit in read if explicit}
    out = []
    for ctl, explicit in read:
        if not explicit:
            index = 0 if ctl.model in _ROOT_PCI_MODELS or ctl.type != ControllerType.PCI else 1
            while (ctl.type, index) in taken:
                index += 1
            ctl.index = index
            taken.add((ctl.type, index))
        out.append(ctl)
    return out


def read_controller(node: Node) -> tuple[Controller, bool]:
    kind = node.enum_attr("type", ControllerType)
    if kind is None:
        raise node.error("missing required attribute 'type' in <controller>", attr="type")
    ctl = Controller(type=kind)
    index = node.int_attr("index", minimum=0)
    ctl.index = index or 0
    ctl.model = node.choice_attr("model", CONTROLLER_MODELS[kind])
    ctl.ports = node.int_attr("ports", minimum=1)
    model = node.child("model")
    if model is not None:
        ctl.model_name = model.name_attr("name", required=True)
        model.finish()
    target = node.child("target")
    if target is not None:
        ctl.target_chassis = target.int_attr("chassis", minimum=0, maximum=255)
        ctl.target_port = target.int_attr("port", minimum=0, maximum=255)
        target.finish()
    ctl.alias, ctl.address = read_info(node)
    node.finish()
    return ctl, index is not None


def render_controller(ctl: Controller, inactive: bool) -> Elem:
    el = Elem("controller", type=ctl.type.value, index=ctl.index, model=ctl.model, ports=ctl.ports)
    if ctl.model_name is not None:
        el.sub("model", name=ctl.model_name)
    if ctl.target_chassis is not None or ctl.target_port is not None:
        port = None if ctl.target_port is None else f"{ctl.target_port:#x}"
        el.sub("target", chassis=ctl.target_chassis, port=port)
    return with_info(el, ctl.alias, ctl.address, inactive)
