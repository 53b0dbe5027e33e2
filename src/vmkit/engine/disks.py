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
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from vmkit.engine import states
from vmkit.engine.context import Context
from vmkit.engine.domains import locked_lookup, lookup
from vmkit.engine.hotplug import (
    DETACH_TIMEOUT,
    NOT_RUNNING,
    Edit,
    Flags,
    begin_edit,
    block_parts,
    block_stats_of,
    check_config,
    commit_edit,
    open_monitor,
    plug_block,
    quietly,
    refuse_microvm,
    swap_media,
    unplug_block,
)
from vmkit.engine.runtime import is_active
from vmkit.errors import Conflict, InvalidConfig, NotFound, QemuError, StorageError, WrongState
from vmkit.model.devices import Disk, DiskBus, DiskDevice, DiskType
from vmkit.model.domain import Domain
from vmkit.state.records import DOMAIN

if TYPE_CHECKING:
    from vmkit.storage.qemuimg import QemuImg
    from vmkit.xml.device import Device

HOTPLUG_BUSES = (DiskBus.VIRTIO, DiskBus.SCSI, DiskBus.USB)
_QCOW2_MAGIC = b"QFI\xfb"


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
    el = Elem("disk", type=source_type, device=a.type)
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
            itself = not other_name and other.target_dev == disk.target_dev
            if itself or other.source is None or _file_key(other.source) != key:
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


# hot-plug and unplug ---------------------------------------------------------------------------


def _check_hotpluggable(dom: Domain, disk: Disk, what: str) -> None:
    from vmkit.model.validate import bus_for_target

    refuse_microvm(dom, what)
    bus = disk.target_bus or bus_for_target(disk.target_dev)
    if bus not in HOTPLUG_BUSES:
        raise WrongState(
            f"{what} is on the {bus} bus, which cannot be hot-plugged or unplugged "
            "(virtio, scsi and usb can): use --config and restart the domain",
            state=str(bus),
            required="virtio, scsi or usb",
        )


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
                    f"{edit.scope_name(dom)} configuration of domain '{edit.name}'",
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
        plug_block(mon, live, disk, what)
        try:
            commit_edit(ctx, edit, "disk-attached", disk.target_dev)
        except BaseException:
            quietly(lambda: unplug_block(mon, live, disk, 10.0, what))
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
        found = [(dom, _find_disk(dom, name, edit.scope_name(dom))) for dom in edit.targets()]
        disk = found[0][1]
        what = f"disk '{disk.target_dev}' of domain '{edit.name}'"
        problems: list[str] = []
        if edit.live is not None:
            _check_hotpluggable(edit.live, disk, what)
            with open_monitor(edit.entry) as mon:
                problems = unplug_block(mon, edit.live, disk, timeout, what)
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
    drives = [_find_disk(dom, name, edit.scope_name(dom)) for dom in edit.targets()]
    for drive in drives:
        _check_media(drive, action, edit.name)
    what = f"drive '{drives[0].target_dev}' of domain '{edit.name}'"
    kind = drives[0].type
    if source:
        kind = DiskType.BLOCK if _is_block(source) else DiskType.FILE
        _check_source(dataclasses.replace(drives[0], source=source, type=kind), what)
    if edit.live is not None:
        new = dataclasses.replace(drives[0], source=source, type=kind)
        if source:
            check_disk_conflicts(ctx, edit.live, [new])
        with open_monitor(edit.entry) as mon:
            swap_media(mon, edit.live, drives[0], new, force=force, what=what)
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
        stats = block_stats_of(reply, block_parts(dom, disk))
        for field, qmp_name in STAT_FIELDS:
            totals[field] += int(stats.get(qmp_name, 0))
    return totals
