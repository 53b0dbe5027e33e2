"""Disks of domains: attach-disk, detach-disk, change-media, domblklist, domblkinfo, domblkstat,
and the check that no two running domains write one image.

A disk plugged into a running QEMU gets exactly the block nodes and device id a start would
give it (`vdb-storage` + `vdb-format`, `virtio-disk1`, `scsi0-0-0-1`, ...: the argv builder of
vmkit.qemu.argv_disks makes them, for a domain holding just that disk), so that it can be
detached after a restart as well as before. Hot-plug: `blockdev-add` x2 + `device_add`; unplug:
`device_del`, the wait for DEVICE_DELETED of that id, `blockdev-del` x2. Whatever fails
midway is undone before the error is raised, and the store is only written after QEMU agreed.
Media change: open the tray, remove the medium and delete its nodes, add and insert the new one,
close the tray.
"""

from __future__ import annotations

import copy
import dataclasses
import os
import re
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vmkit.engine import states
from vmkit.engine.context import Context
from vmkit.engine.domains import locked_lookup, lookup
from vmkit.engine.hotplug import (
    DETACH_TIMEOUT,
    NOT_RUNNING,
    Edit,
    Flags,
    Monitor,
    begin_edit,
    check_config,
    commit_edit,
    family_of,
    open_monitor,
    pci_bus_props,
    peripherals,
    refuse_microvm,
    unplug,
)
from vmkit.engine.runtime import is_active
from vmkit.errors import (
    Conflict,
    InvalidConfig,
    NotFound,
    QemuError,
    QmpError,
    StorageError,
    VmkitError,
    WrongState,
)
from vmkit.model.devices import Disk, DiskBus, DiskDevice, DiskType
from vmkit.model.domain import Domain
from vmkit.state.records import DOMAIN

if TYPE_CHECKING:
    from vmkit.qemu.argv_context import DeviceArg
    from vmkit.storage.qemuimg import QemuImg
    from vmkit.xml.device import Device

HOTPLUG_BUSES = (DiskBus.VIRTIO, DiskBus.SCSI, DiskBus.USB)
_QCOW2_MAGIC = b"QFI\xfb"
_USB_ID_RE = re.compile(r"^usb\d*$")


class MediaAction(StrEnum):
    EJECT = "eject"
    INSERT = "insert"
    UPDATE = "update"


# building a disk from attach-disk's options ---------------------------------------------------


@dataclass(frozen=True)
class DiskArgs:
    """attach-disk's options, as virsh names them."""

    source: str
    target: str
    driver: str | None = None
    subdriver: str | None = None
    cache: str | None = None
    io: str | None = None
    type: str | None = None  # disk | cdrom | floppy
    mode: str | None = None  # readonly | shareable
    targetbus: str | None = None
    serial: str | None = None
    sourcetype: str | None = None  # file | block (default: what the source is)


def disk_xml(a: DiskArgs) -> str:
    """The `<disk>` XML attach-disk's options describe (what virsh builds, --print-xml)."""
    from vmkit.xml.xmlutil import Elem, render_xml

    if a.mode not in (None, "readonly", "shareable"):
        raise InvalidConfig(f"--mode '{a.mode}' is not supported (readonly, shareable)")
    source_type = a.sourcetype or ("block" if _is_block(a.source) else "file")
    el = Elem("disk", type=source_type, device=a.type or "disk")
    if a.driver or a.subdriver or a.cache or a.io:
        el.sub("driver", name=a.driver, type=a.subdriver, cache=a.cache, io=a.io)
    if a.source:
        el.sub("source", **{"dev" if source_type == "block" else "file": a.source})
    el.sub("target", dev=a.target, bus=a.targetbus)
    if a.mode:
        el.sub(a.mode)
    if a.serial is not None:
        el.sub("serial", a.serial)
    return render_xml(el)


def disk_from_args(a: DiskArgs) -> Disk:
    """attach-disk's options -> a Disk, checked like the same `<disk>` in a domain."""
    from vmkit.xml.device import parse_disk

    return parse_disk(disk_xml(a), source="attach-disk options")


def _is_block(path: str) -> bool:
    try:
        return stat.S_ISBLK(os.stat(path).st_mode)
    except (OSError, ValueError):
        return False


def _check_source(disk: Disk, what: str) -> None:
    """The source exists, is what `type` says, and is not a qcow2 image about to be read raw."""
    src = disk.source
    if src is None:
        return
    try:
        st = os.stat(src)
    except OSError as exc:
        raise InvalidConfig(
            f"cannot access storage file '{src}' of {what}: {exc.strerror}", value=src
        ) from exc
    if disk.type is DiskType.BLOCK and not stat.S_ISBLK(st.st_mode):
        raise InvalidConfig(f"'{src}' of {what} is not a block device", value=src)
    if disk.type is DiskType.FILE and not stat.S_ISREG(st.st_mode):
        raise InvalidConfig(
            f"'{src}' of {what} is not a regular file (a block device needs type 'block')",
            value=src,
        )
    if disk.driver_type is None and disk.type is DiskType.FILE and _looks_qcow2(src):
        raise InvalidConfig(
            f"'{src}' of {what} is a qcow2 image, but no format was given and the default is "
            "raw (the guest would see qcow2's metadata): pass --subdriver qcow2 "
            "(<driver type='qcow2'/>), or --subdriver raw to use its bytes as they are",
            value=src,
        )


def _looks_qcow2(path: str) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(4) == _QCOW2_MAGIC
    except OSError:
        return False


# two domains, one image ------------------------------------------------------------------------


def check_disk_conflicts(ctx: Context, dom: Domain, disks: Sequence[Disk] | None = None) -> None:
    """Refuse a disk of `dom` (default: all of them) whose image another running domain, or
    another disk of `dom`, uses: QEMU's image locking would fail later and less clearly. Sharing
    is fine when both disks are <shareable/>, or both are read-only (cdroms, <readonly/>)."""
    mine = [d for d in (dom.devices.disks if disks is None else disks) if d.source]
    if not mine:
        return
    own = [("", d) for d in dom.devices.disks if d.source]
    users = own + _running_users(ctx, exclude=dom.uuid)
    for disk in mine:
        assert disk.source is not None
        key = _file_key(disk.source)
        for other_name, other in users:
            if other is disk or other.source is None or _file_key(other.source) != key:
                continue
            if _may_share(disk, other):
                continue
            where = f"running domain '{other_name}'" if other_name else f"domain '{dom.name}'"
            raise Conflict(
                "disk",
                disk.target_dev,
                f"disk '{disk.target_dev}' of domain '{dom.name}': '{disk.source}' is in use "
                f"by {where} (disk '{other.target_dev}'); an image may be used twice only when "
                "both disks are <shareable/> or both are read-only",
            )


def _running_users(ctx: Context, *, exclude: str) -> list[tuple[str, Disk]]:
    """(domain name, disk) of every disk with a source in the other running domains."""
    from vmkit.qemu.process import process_state
    from vmkit.xml.domain import parse_domain

    found: list[tuple[str, Disk]] = []
    for entry in ctx.store.domains():
        rt = entry.runtime
        if entry.uuid == exclude or rt is None or rt.pid is None or rt.pid_start is None:
            continue
        if rt.state == states.STARTING or process_state(rt.pid, rt.pid_start) != "running":
            continue
        try:
            other = parse_domain(rt.live_xml or entry.definition.xml)
        except InvalidConfig:
            continue
        found += [(entry.name, d) for d in other.devices.disks if d.source]
    return found


def _file_key(path: str) -> tuple[int, int] | str:
    try:
        st = os.stat(path)
    except OSError:
        return os.path.realpath(path)
    return (st.st_dev, st.st_ino)


def _may_share(a: Disk, b: Disk) -> bool:
    return (a.shareable and b.shareable) or (_read_only(a) and _read_only(b))


def _read_only(d: Disk) -> bool:
    return d.readonly or d.device is DiskDevice.CDROM


# what QEMU gets for one disk -----------------------------------------------------------------


@dataclass
class _Parts:
    """blockdev-add arguments (file node, then format node) and the -device(s) of one disk."""

    blockdevs: list[dict[str, Any]]
    devices: list[DeviceArg]

    @property
    def nodes(self) -> list[str]:
        return [str(b["node-name"]) for b in self.blockdevs]

    @property
    def top_id(self) -> str:
        """The device to unplug (usb-bot for a USB cdrom: its scsi-cd goes with it)."""
        return str(self.devices[0].props["id"])

    @property
    def media_id(self) -> str:
        """The device that holds the medium (a USB cdrom's scsi-cd)."""
        return str(self.devices[-1].props["id"])


def _qemu_parts(dom: Domain, disk: Disk) -> _Parts:
    """What the argv builder gives `disk` in `dom` (node names, device ids), as QMP arguments."""
    from vmkit.model.devices import ControllerType, Devices
    from vmkit.qemu.argv_context import ArgvOptions, Ctx, DeviceArg, RuntimePaths
    from vmkit.qemu.argv_disks import disk_items

    ctrls = [c for c in dom.devices.controllers if c.type is not ControllerType.PCI]
    one = Domain(name=dom.name, uuid=dom.uuid, os=dom.os, features=dom.features)
    one.devices = Devices(disks=[disk], controllers=ctrls)
    nowhere = Path("/nonexistent")
    ctx = Ctx(one, ArgvOptions(accel="tcg"), RuntimePaths(*[nowhere] * 4), family_of(dom))
    parts = _Parts([], [])
    for item in disk_items(ctx):
        if isinstance(item, DeviceArg):
            if item.xpath == "/domain/devices/disk[1]":
                parts.devices.append(item)
        elif item[0] == "-blockdev":
            parts.blockdevs.append(_blockdev_args(item[1]))
    return parts


def _blockdev_args(text: str) -> dict[str, Any]:
    """`-blockdev` option text (render_opts: ',,' escapes, on/off, dotted keys) -> QMP dict."""
    args: dict[str, Any] = {}
    for part in _split_opts(text):
        key, _, value = part.partition("=")
        typed: str | bool = {"on": True, "off": False}.get(value, value)
        *heads, last = key.split(".")
        where = args
        for head in heads:
            where = where.setdefault(head, {})
        where[last] = typed
    return args


def _split_opts(text: str) -> list[str]:
    parts, cur, i = [], [], 0
    while i < len(text):
        if text[i] == "," and text[i + 1 : i + 2] == ",":
            cur.append(",")
            i += 2
        elif text[i] == ",":
            parts.append("".join(cur))
            cur, i = [], i + 1
        else:
            cur.append(text[i])
            i += 1
    parts.append("".join(cur))
    return parts


def _device_add_args(mon: Monitor, dom: Domain, dev: DeviceArg, what: str) -> dict[str, Any]:
    from vmkit.qemu.argv_context import Slot

    args: dict[str, Any] = {"driver": dev.driver, **dev.props}
    if dev.slot is Slot.PORT:
        args.update(pci_bus_props(mon, dom, dev.address, what))
    return args


# hot-plug and unplug ---------------------------------------------------------------------------


def _check_hotpluggable(dom: Domain, disk: Disk, what: str) -> None:
    refuse_microvm(dom, what)
    if disk.target_bus not in HOTPLUG_BUSES:
        raise WrongState(
            f"{what} is on the {disk.target_bus} bus, which cannot be hot-plugged or unplugged "
            "(virtio, scsi and usb can): use --config and restart the domain",
            state=str(disk.target_bus),
            required="virtio, scsi or usb",
        )


def _check_controllers(mon: Monitor, parts: _Parts, what: str, dom: Domain) -> None:
    """The bus each device plugs into exists (a SCSI or USB controller)."""
    have = peripherals(mon)
    ours = {str(d.props["id"]) for d in parts.devices}
    for dev in parts.devices:
        bus = dev.props.get("bus")
        ctrl = str(bus).rsplit(".", 1)[0] if isinstance(bus, str) else None
        if ctrl is not None and ctrl not in ours and ctrl not in have and ctrl != "usb":
            raise WrongState(
                f"domain '{dom.name}' has no controller '{ctrl}' for {what}: add the "
                "controller with --config and restart the domain",
                state="no controller",
                required=ctrl,
            )
        if dev.driver in ("usb-storage", "usb-bot") and not any(map(_USB_ID_RE.match, have)):
            raise WrongState(
                f"domain '{dom.name}' has no USB controller for {what}: add "
                "<controller type='usb'/> with --config and restart the domain",
                state="no USB controller",
                required="a USB controller",
            )


def _plug(mon: Monitor, dom: Domain, disk: Disk, what: str) -> None:
    """blockdev-add the nodes and device_add the device(s); undo all on the first failure."""
    parts = _qemu_parts(dom, disk)
    _check_controllers(mon, parts, what, dom)
    nodes: list[str] = []
    plugged: list[str] = []
    try:
        for args in parts.blockdevs:
            mon.execute("blockdev-add", args)
            nodes.append(str(args["node-name"]))
        for dev in parts.devices:
            mon.execute("device_add", _device_add_args(mon, dom, dev, what))
            plugged.append(str(dev.props["id"]))
    except QmpError as exc:
        if plugged:
            _quietly(lambda: unplug(mon, plugged[0], timeout=10.0, what=what))
        _delete_nodes(mon, nodes)
        raise QemuError(f"cannot attach {what}: {exc.desc}") from exc


def _unplug_disk(mon: Monitor, dom: Domain, disk: Disk, timeout: float, what: str) -> list[str]:
    """device_del + wait, then blockdev-del; returns the nodes QEMU would not delete."""
    parts = _qemu_parts(dom, disk)
    unplug(mon, parts.top_id, timeout=timeout, what=what)
    return _delete_nodes(mon, parts.nodes)


def _delete_nodes(mon: Monitor, nodes: Sequence[str]) -> list[str]:
    """blockdev-del format node, then file node; a node that is not there is fine."""
    problems: list[str] = []
    for node in reversed(nodes):
        try:
            mon.execute("blockdev-del", {"node-name": node})
        except QmpError as exc:
            if "not found" not in exc.desc.lower():
                problems.append(f"{node}: {exc.desc}")
    return problems


def _quietly(action: Any) -> None:
    """Best-effort undo: its failure must not hide the error being reported."""
    try:
        action()
    except VmkitError:
        pass


def _find_disk(dom: Domain, name: str, scope: str) -> Disk:
    """The disk whose target (vdb) or source path is `name`."""
    for disk in dom.devices.disks:
        if disk.target_dev == name:
            return disk
    real = os.path.realpath(name) if name.startswith("/") else None
    for disk in dom.devices.disks:
        if disk.source is not None and real and os.path.realpath(disk.source) == real:
            return disk
    raise NotFound(
        "disk",
        name,
        f"No disk found whose source path or target is '{name}' in the {scope} configuration "
        f"of domain '{dom.name}'",
    )


def _scope_name(edit: Edit, dom: Domain) -> str:
    return "live" if dom is edit.live else "persistent"


# attach, detach ------------------------------------------------------------------------------


def attach_disk(ctx: Context, key: str, disk: Disk, flags: Flags) -> None:
    """attach-disk / attach-device <disk>; a cdrom or floppy on a taken drive changes media."""
    from vmkit.model.validate import bus_for_target, validate_domain

    uuid = locked_lookup(ctx, key).uuid
    with ctx.lock(DOMAIN, uuid):
        edit = begin_edit(lookup(ctx, uuid), flags)
        if _is_media_change(edit, disk):
            _change_media(ctx, edit, disk.target_dev, disk.source, MediaAction.UPDATE, False)
            return
        what = f"disk '{disk.target_dev}' of domain '{edit.name}'"
        disk = copy.deepcopy(disk)
        disk.target_bus = disk.target_bus or bus_for_target(disk.target_dev)
        for dom in edit.targets():
            if any(d.target_dev == disk.target_dev for d in dom.devices.disks):
                raise Conflict(
                    "disk",
                    disk.target_dev,
                    f"target '{disk.target_dev}' already exists in the "
                    f"{_scope_name(edit, dom)} configuration of domain '{edit.name}'",
                )
            dom.devices.disks.append(copy.deepcopy(disk))
            validate_domain(dom)
        if edit.config is not None:
            check_config(edit.config)
        _check_source(disk, what)
        if edit.live is None:
            commit_edit(ctx, edit, "disk-attached", disk.target_dev)
            return
        _attach_live(ctx, edit, edit.live.devices.disks[-1], what)


def _attach_live(ctx: Context, edit: Edit, disk: Disk, what: str) -> None:
    live = edit.live
    assert live is not None
    _check_hotpluggable(live, disk, what)
    check_disk_conflicts(ctx, live, [disk])
    with open_monitor(edit.entry) as mon:
        _plug(mon, live, disk, what)
        try:
            commit_edit(ctx, edit, "disk-attached", disk.target_dev)
        except BaseException:
            _quietly(lambda: _unplug_disk(mon, live, disk, 10.0, what))
            raise


def _is_media_change(edit: Edit, disk: Disk) -> bool:
    """attach-disk --type cdrom on a cdrom drive that exists: libvirt changes its media."""
    if disk.device not in (DiskDevice.CDROM, DiskDevice.FLOPPY):
        return False
    found = [d for dom in edit.targets() for d in dom.devices.disks]
    return any(d.target_dev == disk.target_dev and d.device is disk.device for d in found)


def detach_disk(
    ctx: Context, key: str, name: str, flags: Flags, *, timeout: float = DETACH_TIMEOUT
) -> Disk:
    """detach-disk: remove the disk whose target or source is `name`; returns it."""
    uuid = locked_lookup(ctx, key).uuid
    with ctx.lock(DOMAIN, uuid):
        edit = begin_edit(lookup(ctx, uuid), flags)
        found = [(dom, _find_disk(dom, name, _scope_name(edit, dom))) for dom in edit.targets()]
        disk = found[0][1]
        what = f"disk '{disk.target_dev}' of domain '{edit.name}'"
        problems: list[str] = []
        if edit.live is not None:
            _check_hotpluggable(edit.live, disk, what)
            with open_monitor(edit.entry) as mon:
                problems = _unplug_disk(mon, edit.live, disk, timeout, what)
        for dom, d in found:
            dom.devices.disks = [x for x in dom.devices.disks if x is not d]
        commit_edit(ctx, edit, "disk-detached", disk.target_dev)
        if problems:
            raise QemuError(
                f"{what} was detached, but QEMU kept its block nodes: {'; '.join(problems)}"
            )
        return disk


class DiskHandler:
    """attach-device / detach-device for `<disk>`."""

    def attach(self, ctx: Context, key: str, device: Device, flags: Flags) -> None:
        assert isinstance(device, Disk)
        attach_disk(ctx, key, device, flags)

    def detach(
        self, ctx: Context, key: str, device: Device, flags: Flags, *, timeout: float
    ) -> None:
        assert isinstance(device, Disk)
        detach_disk(ctx, key, device.target_dev, flags, timeout=timeout)


# change-media --------------------------------------------------------------------------------


def change_media(
    ctx: Context,
    key: str,
    name: str,
    action: MediaAction,
    source: str | None,
    flags: Flags,
    *,
    force: bool = False,
) -> MediaAction:
    """change-media: eject, insert or update the medium of a cdrom or floppy drive."""
    uuid = locked_lookup(ctx, key).uuid
    with ctx.lock(DOMAIN, uuid):
        edit = begin_edit(lookup(ctx, uuid), flags)
        _change_media(ctx, edit, name, source, action, force)
    return action


def _change_media(
    ctx: Context, edit: Edit, name: str, source: str | None, action: MediaAction, force: bool
) -> None:
    if action is MediaAction.EJECT:
        source = None
    elif action is MediaAction.INSERT and not source:
        raise InvalidConfig(f"no source given to insert into '{name}' of domain '{edit.name}'")
    drives = [_find_disk(dom, name, _scope_name(edit, dom)) for dom in edit.targets()]
    for drive in drives:
        _check_media(drive, action, edit.name)
    what = f"drive '{drives[0].target_dev}' of domain '{edit.name}'"
    kind = DiskType.BLOCK if source and _is_block(source) else DiskType.FILE
    if source:
        _check_source(dataclasses.replace(drives[0], source=source, type=kind), what)
    if edit.live is not None:
        live = drives[0]
        if source:
            new = dataclasses.replace(live, source=source, type=kind)
            check_disk_conflicts(ctx, edit.live, [new])
        with open_monitor(edit.entry) as mon:
            _swap_media(mon, edit.live, live, source, kind, force, what)
    for drive in drives:
        drive.source, drive.type = source, kind
    if edit.config is not None:
        check_config(edit.config)
    commit_edit(ctx, edit, "media-changed", f"{name}: {source or 'ejected'}")


def _check_media(drive: Disk, action: MediaAction, dom_name: str) -> None:
    dev = drive.target_dev
    if drive.device not in (DiskDevice.CDROM, DiskDevice.FLOPPY):
        raise InvalidConfig(
            f"The disk device '{dev}' of domain '{dom_name}' is not removable (only cdrom "
            "and floppy drives have media)",
            value=dev,
        )
    if action is MediaAction.INSERT and drive.source is not None:
        raise Conflict("disk", dev, f"The disk device '{dev}' already has media")
    if action is MediaAction.EJECT and drive.source is None:
        raise WrongState(
            f"The disk device '{dev}' doesn't have media", state="empty", required="media"
        )


def _swap_media(
    mon: Monitor,
    dom: Domain,
    drive: Disk,
    source: str | None,
    kind: DiskType,
    force: bool,
    what: str,
) -> None:
    """Tray open, old medium out (its nodes deleted), new medium in, tray closed."""
    old = _qemu_parts(dom, drive)
    new = _qemu_parts(dom, dataclasses.replace(drive, source=source, type=kind))
    dev_id = old.media_id
    if not force:
        _check_tray_unlocked(mon, dev_id, what)
    removed = False
    try:
        mon.execute("blockdev-open-tray", {"id": dev_id, "force": True})
        if drive.source is not None:
            mon.execute("blockdev-remove-medium", {"id": dev_id})
            removed = True
            _delete_nodes(mon, old.nodes)
        if source is not None:
            _insert(mon, dev_id, new)
    except QmpError as exc:
        if removed:
            _quietly(lambda: _insert(mon, dev_id, old))
        raise QemuError(f"cannot change the media of {what}: {exc.desc}") from exc
    finally:
        _quietly(lambda: mon.execute("blockdev-close-tray", {"id": dev_id}))


def _insert(mon: Monitor, dev_id: str, parts: _Parts) -> None:
    added: list[str] = []
    try:
        for args in parts.blockdevs:
            mon.execute("blockdev-add", args)
            added.append(str(args["node-name"]))
        mon.execute("blockdev-insert-medium", {"id": dev_id, "node-name": parts.nodes[-1]})
    except QmpError:
        _delete_nodes(mon, added)
        raise


def _check_tray_unlocked(mon: Monitor, dev_id: str, what: str) -> None:
    for dev in mon.execute("query-block"):
        if dev.get("qdev") == dev_id and dev.get("locked"):
            raise WrongState(
                f"the guest has locked the tray of {what}: use --force to change the media anyway",
                state="locked",
                required="unlocked",
            )


# domblklist, domblkinfo, domblkstat ----------------------------------------------------------


def list_disks(ctx: Context, key: str, *, inactive: bool = False) -> list[Disk]:
    """The disks of the live XML of a running domain (the persistent one with `inactive`)."""
    from vmkit.xml.domain import parse_domain

    return parse_domain(_xml_of(ctx, key, inactive=inactive)).devices.disks


def _xml_of(ctx: Context, key: str, *, inactive: bool) -> str:
    entry = lookup(ctx, key)
    rt = entry.runtime
    if not inactive and is_active(entry) and rt is not None and rt.live_xml:
        return rt.live_xml
    return entry.definition.xml


@dataclass(frozen=True)
class BlockInfo:
    """domblkinfo: Capacity (guest-visible size), Allocation (on the host), Physical (file)."""

    target: str
    capacity: int
    allocation: int
    physical: int


def block_info(
    ctx: Context, key: str, name: str | None = None, *, qemu_img: QemuImg | None = None
) -> list[BlockInfo]:
    """domblkinfo of the disk `name` (target or source), or of every disk."""
    from vmkit.storage.qemuimg import QemuImg
    from vmkit.xml.domain import parse_domain

    dom = parse_domain(_xml_of(ctx, key, inactive=False))
    disks = dom.devices.disks if name is None else [_find_disk(dom, name, "current")]
    img = qemu_img or QemuImg()
    return [_one_info(img, d, dom.name) for d in disks]


def _one_info(img: QemuImg, disk: Disk, dom_name: str) -> BlockInfo:
    if disk.source is None:
        return BlockInfo(disk.target_dev, 0, 0, 0)
    fmt = str(disk.driver_type or "raw")
    try:
        info = img.info(disk.source, fmt=fmt)
        st = os.stat(disk.source)
    except (StorageError, OSError) as exc:
        raise StorageError(
            f"cannot read disk '{disk.target_dev}' of domain '{dom_name}' ({disk.source}): {exc}"
        ) from exc
    if stat.S_ISBLK(st.st_mode):
        return BlockInfo(disk.target_dev, info.virtual_size, info.virtual_size, info.virtual_size)
    alloc = st.st_blocks * 512
    return BlockInfo(disk.target_dev, info.virtual_size, alloc, st.st_size)


STAT_FIELDS = (
    ("rd_req", "rd_operations"),
    ("rd_bytes", "rd_bytes"),
    ("wr_req", "wr_operations"),
    ("wr_bytes", "wr_bytes"),
    ("flush_operations", "flush_operations"),
    ("rd_total_times", "rd_total_time_ns"),
    ("wr_total_times", "wr_total_time_ns"),
    ("flush_total_times", "flush_total_time_ns"),
)


def block_stats(ctx: Context, key: str, name: str | None = None) -> dict[str, int]:
    """domblkstat: virsh's counters (rd_req, ...) of one disk, or summed over all disks."""
    from vmkit.xml.domain import parse_domain

    entry = lookup(ctx, key)
    rt = entry.runtime
    if not is_active(entry) or rt is None:
        raise WrongState(f"{NOT_RUNNING}: '{entry.name}'", state="shut off", required="running")
    dom = parse_domain(rt.live_xml or entry.definition.xml)
    disks = dom.devices.disks if name is None else [_find_disk(dom, name, "live")]
    with open_monitor(entry) as mon:
        reply = mon.execute("query-blockstats")
    totals = {field: 0 for field, _ in STAT_FIELDS}
    for disk in disks:
        stats = _stats_of(reply, _qemu_parts(dom, disk))
        for field, qmp_name in STAT_FIELDS:
            totals[field] += int(stats.get(qmp_name, 0))
    return totals


def _stats_of(reply: list[dict[str, Any]], parts: _Parts) -> dict[str, Any]:
    """The stats of the disk's device (qdev is its id, or a path under it) or format node."""
    ids = {str(d.props["id"]) for d in parts.devices}
    nodes = set(parts.nodes)
    for entry in reply:
        qdev = str(entry.get("qdev", ""))
        owner = qdev.removeprefix("/machine/peripheral/").split("/")[0]
        if owner in ids or entry.get("node-name") in nodes:
            return dict(entry.get("stats", {}))
    return {}
