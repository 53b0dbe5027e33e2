"""CLI for a domain's disks and devices: attach-disk, detach-disk, attach-device, detach-device,
change-media, domblklist, domblkinfo, domblkstat.

Text output follows virsh's messages and layouts; `--json` prints the same facts as JSON. The
engine (vmkit.engine.disks, vmkit.engine.hotplug) is imported inside the handlers.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from vmkit.cli.output import emit, emit_json, fields, table
from vmkit.cli.scope_flags import add_scope_flags, scope_flags
from vmkit.engine.context import Context
from vmkit.errors import InvalidConfig

_CACHE_MODES = ("default", "none", "writethrough", "writeback", "directsync", "unsafe")
_HUMAN_STATS = {
    "rd_req": "number of read operations:",
    "rd_bytes": "number of bytes read:",
    "wr_req": "number of write operations:",
    "wr_bytes": "number of bytes written:",
    "flush_operations": "number of flush operations:",
    "rd_total_times": "total duration of reads (ns):",
    "wr_total_times": "total duration of writes (ns):",
    "flush_total_times": "total duration of flushes (ns):",
}


def add_arguments(name: str, p: argparse.ArgumentParser) -> None:
    p.add_argument("domain", help="domain name, id or uuid")
    _ARGUMENTS[name](p)


def _attach_disk_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", help="source of disk device ('' for an empty cdrom or floppy)")
    p.add_argument("target", help="target of disk device (vdb, sda, hdc, fda, ...)")
    p.add_argument("--targetbus", choices=["virtio", "scsi", "sata", "usb", "ide", "fdc"])
    p.add_argument("--driver", help="driver of disk device (qemu)")
    p.add_argument("--subdriver", help="format of the image: raw or qcow2 (default raw)")
    p.add_argument("--cache", choices=_CACHE_MODES, help="cache mode of disk device")
    p.add_argument("--io", choices=["native", "threads", "io_uring"], help="io policy")
    p.add_argument("--type", choices=["disk", "cdrom", "floppy"], help="target device type")
    p.add_argument("--mode", choices=["readonly", "shareable"], help="mode of device reading")
    p.add_argument("--sourcetype", choices=["file", "block"], help="type of source")
    p.add_argument("--serial", help="serial of disk device")
    p.add_argument("--print-xml", action="store_true", help="print XML document rather than attach")
    add_scope_flags(p)


def _detach_disk_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("target", help="target of disk device (or its source path)")
    add_scope_flags(p)
    _timeout_flag(p)


def _device_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", help="XML file of the device ('-' for stdin)")
    add_scope_flags(p)


def _detach_device_args(p: argparse.ArgumentParser) -> None:
    _device_args(p)
    _timeout_flag(p)


def _change_media_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("path", help="fully-qualified path or target of disk device")
    p.add_argument("source", nargs="?", help="source of the media")
    p.add_argument("--eject", action="store_true", help="eject the media")
    for flag, what in (("--insert", "insert the media"), ("--update", "update the media")):
        p.add_argument(flag, nargs="?", const=True, metavar="SOURCE", help=what)
    p.add_argument("--force", action="store_true", help="change media even if the tray is locked")
    p.add_argument("--live", action="store_true", help="alter live configuration")
    p.add_argument("--config", action="store_true", help="alter persistent configuration")
    p.add_argument("--current", action="store_true", help="alter current configuration")


def _domblklist_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--inactive", action="store_true", help="get inactive rather than running")
    p.add_argument("--details", action="store_true", help="additionally display the type")


def _domblkinfo_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("device", nargs="?", help="block device (target or source path)")
    p.add_argument("--human", action="store_true", help="human friendly output")
    p.add_argument("--all", action="store_true", help="display all block devices info")


def _domblkstat_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("device", nargs="?", help="block device (default: all, summed)")
    p.add_argument("--human", action="store_true", help="print a more human readable output")


def _timeout_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--timeout",
        type=float,
        default=30.0,
        help="seconds to wait for the guest to release the device (default 30)",
    )


_ARGUMENTS: dict[str, Callable[[argparse.ArgumentParser], None]] = {
    "attach-disk": _attach_disk_args,
    "detach-disk": _detach_disk_args,
    "attach-device": _device_args,
    "detach-device": _detach_device_args,
    "change-media": _change_media_args,
    "domblklist": _domblklist_args,
    "domblkinfo": _domblkinfo_args,
    "domblkstat": _domblkstat_args,
}


def run(name: str, args: argparse.Namespace) -> int:
    with Context.open() as ctx:
        return _HANDLERS[name](ctx, args)


def _done(args: argparse.Namespace, message: str, **facts: object) -> int:
    emit_json({"domain": args.domain, **facts}) if args.json else emit(message + "\n\n")
    return 0


def _attach_disk(ctx: Context, args: argparse.Namespace) -> int:
    from vmkit.engine import disks

    spec = disks.DiskArgs(
        source=args.source,
        target=args.target,
        driver=args.driver,
        subdriver=args.subdriver,
        cache=args.cache,
        io=args.io,
        type=args.type,
        mode=args.mode,
        targetbus=args.targetbus,
        serial=args.serial,
        sourcetype=args.sourcetype,
    )
    if args.print_xml:
        xml = disks.disk_xml(spec)
        emit_json({"xml": xml}) if args.json else emit(xml + "\n")
        return 0
    disks.attach_disk(ctx, args.domain, disks.disk_from_args(spec), scope_flags(args))
    return _done(args, "Disk attached successfully", target=args.target, attached=True)


def _detach_disk(ctx: Context, args: argparse.Namespace) -> int:
    from vmkit.engine import disks

    disk = disks.detach_disk(ctx, args.domain, args.target, scope_flags(args), timeout=args.timeout)
    return _done(args, "Disk detached successfully", target=disk.target_dev, detached=True)


def _attach_device(ctx: Context, args: argparse.Namespace) -> int:
    from vmkit.cli.domain_cmds import read_xml_arg
    from vmkit.engine import hotplug
    from vmkit.xml.device import device_tag

    data, source = read_xml_arg(args.file)
    dev = hotplug.attach_device(ctx, args.domain, data, source, scope_flags(args))
    return _done(args, "Device attached successfully", device=device_tag(dev), attached=True)


def _detach_device(ctx: Context, args: argparse.Namespace) -> int:
    from vmkit.cli.domain_cmds import read_xml_arg
    from vmkit.engine import hotplug
    from vmkit.xml.device import device_tag

    data, source = read_xml_arg(args.file)
    flags = scope_flags(args)
    dev = hotplug.detach_device(ctx, args.domain, data, source, flags, timeout=args.timeout)
    return _done(args, "Device detached successfully", device=device_tag(dev), detached=True)


def _change_media(ctx: Context, args: argparse.Namespace) -> int:
    from vmkit.engine.disks import MediaAction, change_media

    chosen = [a for a in ("eject", "insert", "update") if getattr(args, a)]
    if len(chosen) > 1:
        raise InvalidConfig(f"Options --{chosen[0]} and --{chosen[1]} are mutually exclusive")
    given = [v for v in (args.insert, args.update) if isinstance(v, str)]
    if given and args.source is not None:
        raise InvalidConfig(f"two sources given: '{args.source}' and '{given[0]}'")
    source = args.source if args.source is not None else (given[0] if given else None)
    if chosen == ["eject"] and source is not None:
        raise InvalidConfig(f"--eject takes no source (got '{source}')")
    action = MediaAction(chosen[0]) if chosen else MediaAction.UPDATE
    change_media(
        ctx, args.domain, args.path, action, source or None, scope_flags(args), force=args.force
    )
    message = {
        MediaAction.EJECT: "Successfully ejected media.",
        MediaAction.INSERT: "Successfully inserted media.",
        MediaAction.UPDATE: "Successfully updated media.",
    }[action]
    return _done(args, message, path=args.path, action=str(action), source=source)


def _domblklist(ctx: Context, args: argparse.Namespace) -> int:
    from vmkit.engine.disks import list_disks

    disks = list_disks(ctx, args.domain, inactive=args.inactive)
    rows = [
        {"type": str(d.type), "device": str(d.device), "target": d.target_dev, "source": d.source}
        for d in disks
    ]
    if args.json:
        emit_json(rows)
        return 0
    keys = ["type", "device", "target", "source"] if args.details else ["target", "source"]
    cells = [[r[k] or "-" for k in keys] for r in rows]
    emit(table([k.capitalize() for k in keys], cells) + "\n")
    return 0


def _domblkinfo(ctx: Context, args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from vmkit.engine.disks import block_info

    if args.device is None and not args.all:
        raise InvalidConfig("command 'domblkinfo' requires <device> option (or --all)")
    infos = block_info(ctx, args.domain, None if args.all else args.device)
    if args.json:
        emit_json([asdict(i) for i in infos] if args.all else asdict(infos[0]))
        return 0

    def size(n: int) -> str:
        return _pretty(n) if args.human else str(n)

    if not args.all:
        i = infos[0]
        pairs = [("Capacity", size(i.capacity)), ("Allocation", size(i.allocation))]
        emit(fields([*pairs, ("Physical", size(i.physical))]) + "\n")
        return 0
    cells = [[i.target, size(i.capacity), size(i.allocation), size(i.physical)] for i in infos]
    emit(table(["Target", "Capacity", "Allocation", "Physical"], cells) + "\n")
    return 0


def _pretty(n: int) -> str:
    """virsh's vshPrettyCapacity: three decimals, binary units."""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if value < 1024:
            return f"{value:.3f} {unit}"
        value /= 1024
    return f"{value:.3f} EiB"


def _domblkstat(ctx: Context, args: argparse.Namespace) -> int:
    from vmkit.engine.disks import block_stats

    stats = block_stats(ctx, args.domain, args.device)
    device = args.device or ""
    if args.json:
        emit_json({"device": device, **stats})
    elif args.human:
        lines = [f" {_HUMAN_STATS[k]:<31} {v}" for k, v in stats.items()]
        emit(f"Device: {device}\n" + "\n".join(lines) + "\n\n")
    else:
        emit("".join(f"{device} {k} {v}\n" for k, v in stats.items()) + "\n")
    return 0


_HANDLERS: dict[str, Callable[[Context, argparse.Namespace], int]] = {
    "attach-disk": _attach_disk,
    "detach-disk": _detach_disk,
    "attach-device": _attach_device,
    "detach-device": _detach_device,
    "change-media": _change_media,
    "domblklist": _domblklist,
    "domblkinfo": _domblkinfo,
    "domblkstat": _domblkstat,
}
