"""CLI for storage volumes: vol-create-as, vol-create, vol-clone, vol-delete, vol-resize, vol-info,
vol-list, vol-dumpxml, vol-path, vol-upload, vol-download, vol-wipe, and vmkit's vol-import.

A volume is named by name (with `--pool`, or the pool as the next positional argument, as virsh
allows), by key or by path. Messages are virsh's ("Vol x created"). Long copies (clone, import,
upload, download) draw a progress bar on stderr when it is a terminal, and nothing otherwise.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from typing import Any, TextIO

from vmkit.cli.output import emit, emit_json
from vmkit.cli.pool_cmds import ensure_default
from vmkit.engine import pools, vol_transfer, volumes
from vmkit.engine.context import Context
from vmkit.model.storage import Volume, parse_size
from vmkit.storage import format_vol_info, format_vol_list

Handler = Callable[[Context, argparse.Namespace], int]
Progress = Callable[[float], None]
FORMATS = ("raw", "qcow2", "qcow", "qed", "vmdk", "vdi", "vpc", "vhd")

# commands taking VOL [extra positionals] [--pool P]: the extra positionals, in order
_BY_VOL: dict[str, tuple[str, ...]] = {
    "vol-clone": ("newname",),
    "vol-delete": (),
    "vol-resize": ("capacity",),
    "vol-info": (),
    "vol-dumpxml": (),
    "vol-path": (),
    "vol-upload": ("file",),
    "vol-download": ("file",),
    "vol-wipe": (),
}
_HELP = {
    "newname": "name of the new volume",
    "capacity": "new capacity: 10G, +1G (grow by), -1G (shrink by, with --shrink)",
    "file": "local file ('-' for stdin/stdout)",
}


def add_arguments(name: str, p: argparse.ArgumentParser) -> None:
    if name in _BY_VOL:
        p.add_argument("vol", help="volume name, key or path")
        for extra in _BY_VOL[name]:
            p.add_argument(extra, help=_HELP[extra])
        p.add_argument("pool_pos", nargs="?", metavar="pool", help="pool name or uuid")
        p.add_argument("--pool", help="pool name or uuid")
        _vol_options(name, p)
        return
    p.add_argument("pool", help="pool name or uuid")
    if name == "vol-create-as":
        _create_as_arguments(p)
    elif name == "vol-create":
        p.add_argument("file", help="volume XML file ('-' for stdin)")
        p.add_argument("--prealloc-metadata", action="store_true", help="preallocate metadata")
    elif name == "vol-list":
        p.add_argument("--details", action="store_true", help="display extended details")
    elif name == "vol-import":
        p.add_argument("file", help="the image to import")
        p.add_argument("name", help="name of the new volume")
        p.add_argument("--format", default="qcow2", choices=FORMATS, help="format of the volume")
        p.add_argument("--source-format", help="format of the image (probed when not given)")


def _create_as_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", help="name of the volume")
    p.add_argument("capacity", help="size of the volume, as a scaled integer (default bytes)")
    p.add_argument("--allocation", help="initial allocation size (raw volumes)")
    p.add_argument("--format", default="raw", choices=FORMATS, help="file format type")
    p.add_argument("--backing-vol", help="the backing volume (name in the pool, or a path)")
    p.add_argument("--backing-vol-format", help="format of the backing volume")
    p.add_argument("--prealloc-metadata", action="store_true", help="preallocate metadata")
    p.add_argument("--print-xml", action="store_true", help="print the XML, create nothing")


def _vol_options(name: str, p: argparse.ArgumentParser) -> None:
    if name == "vol-clone":
        p.add_argument(
            "--linked",
            action="store_true",
            help="vmkit: a qcow2 copy-on-write overlay on the volume instead of a copy",
        )
    elif name == "vol-resize":
        # '-1G' (shrink by 1G) is a size, not an option: argparse's own test only knows '-1'
        p._negative_number_matcher = re.compile(r"^[-+]?[0-9]+(\.[0-9]+)?\s*[a-zA-Z]*$")
        p.add_argument("--shrink", action="store_true", help="allow the volume to shrink")
        p.add_argument("--delta", action="store_true", help="capacity is a change, not a size")
    elif name == "vol-info":
        p.add_argument("--bytes", action="store_true", help="sizes in bytes")
    elif name in ("vol-upload", "vol-download"):
        p.add_argument("--offset", default="0", help="byte offset in the volume")
        p.add_argument("--length", help="number of bytes to transfer")
        p.add_argument("--sparse", action="store_true", help="accepted for virsh habits")
    elif name == "vol-wipe":
        p.add_argument("--algorithm", default="zero", help="wiping algorithm (only 'zero')")


def run(name: str, args: argparse.Namespace) -> int:
    with Context.open() as ctx:
        ensure_default(ctx)
        return _HANDLERS[name](ctx, args)


def _pool_of(args: argparse.Namespace) -> str | None:
    pool: str | None = args.pool or args.pool_pos
    return pool


def _say(args: argparse.Namespace, text: str, data: dict[str, Any]) -> int:
    emit_json(data) if args.json else emit(text + "\n\n")
    return 0


def _vol_json(vol: Volume, pool: str | None = None) -> dict[str, Any]:
    data = asdict(vol)
    for key in ("type",):
        data[key] = None if data[key] is None else str(data[key])
    return {"pool": pool, **data} if pool is not None else data


# ---------------------------------------------------------------------------------------------
# progress


class ProgressBar:
    """A one-line text bar: `Cloning   [##########          ]  50%`, redrawn in place."""

    WIDTH = 30

    def __init__(self, label: str, stream: TextIO) -> None:
        self._label = label
        self._stream = stream
        self._last: int | None = None

    def __call__(self, percent: float) -> None:
        shown = max(0, min(100, int(percent)))
        if shown == self._last:
            return
        self._last = shown
        filled = self.WIDTH * shown // 100
        bar = "#" * filled + " " * (self.WIDTH - filled)
        self._stream.write(f"\r{self._label:<11} [{bar}] {shown:3d}%")
        self._stream.flush()

    def close(self) -> None:
        if self._last is not None:
            self._stream.write("\n")
            self._stream.flush()


@contextmanager
def progress_bar(label: str, args: argparse.Namespace) -> Iterator[Progress | None]:
    """A bar on stderr when it is a terminal (and the output is not JSON), else None."""
    if args.json or not sys.stderr.isatty():
        yield None
        return
    bar = ProgressBar(label, sys.stderr)
    try:
        yield bar
    finally:
        bar.close()


# ---------------------------------------------------------------------------------------------
# create, clone, import


def _create_as(ctx: Context, args: argparse.Namespace) -> int:
    spec = volumes.CreateArgs(
        name=args.name,
        capacity=args.capacity,
        fmt=args.format,
        allocation=args.allocation,
        backing=args.backing_vol,
        backing_format=args.backing_vol_format,
        prealloc_metadata=args.prealloc_metadata,
    )
    if args.print_xml:
        from vmkit.xml.storage import render_volume

        entry = pools.active_pool(ctx, args.pool)
        xml = render_volume(volumes.volume_from_args(entry, spec))
        emit_json({"xml": xml}) if args.json else emit(xml)
        return 0
    vol = volumes.create_as(ctx, args.pool, spec)
    return _say(args, f"Vol {vol.name} created", _vol_json(vol, args.pool))


def _create(ctx: Context, args: argparse.Namespace) -> int:
    from vmkit.cli.domain_cmds import read_xml_arg

    data, source = read_xml_arg(args.file)
    vol = volumes.create_from_xml(
        ctx, args.pool, data, source, prealloc_metadata=args.prealloc_metadata
    )
    return _say(args, f"Vol {vol.name} created from {source}", _vol_json(vol, args.pool))


def _clone(ctx: Context, args: argparse.Namespace) -> int:
    with progress_bar("Cloning", args) as progress:
        vol = volumes.clone(
            ctx, args.vol, args.newname, _pool_of(args), linked=args.linked, progress=progress
        )
    source = os.path.basename(args.vol)
    return _say(args, f"Vol {vol.name} cloned from {source}", _vol_json(vol))


def _import(ctx: Context, args: argparse.Namespace) -> int:
    with progress_bar("Importing", args) as progress:
        vol = volumes.import_volume(
            ctx,
            args.pool,
            args.file,
            args.name,
            fmt=args.format,
            src_format=args.source_format,
            progress=progress,
        )
    return _say(args, f"Vol {vol.name} imported from {args.file}", _vol_json(vol, args.pool))


# ---------------------------------------------------------------------------------------------
# delete, resize, wipe


def _delete(ctx: Context, args: argparse.Namespace) -> int:
    ref = volumes.delete(ctx, args.vol, _pool_of(args))
    data = {"name": ref.name, "pool": ref.entry.name, "path": str(ref.path), "deleted": True}
    return _say(args, f"Vol {args.vol} deleted", data)


def _resize(ctx: Context, args: argparse.Namespace) -> int:
    vol = volumes.resize(
        ctx, args.vol, args.capacity, _pool_of(args), shrink=args.shrink, delta=args.delta
    )
    text = f"Size of volume '{vol.name}' successfully changed to {args.capacity}"
    return _say(args, text, _vol_json(vol))


def _wipe(ctx: Context, args: argparse.Namespace) -> int:
    vol = vol_transfer.wipe(ctx, args.vol, _pool_of(args), algorithm=args.algorithm)
    return _say(args, f"Vol {args.vol} wiped", _vol_json(vol))


# ---------------------------------------------------------------------------------------------
# transfers


def _range(args: argparse.Namespace) -> tuple[int, int | None]:
    offset = parse_size(args.offset)
    length = None if args.length is None else parse_size(args.length)
    return offset, length


def _upload(ctx: Context, args: argparse.Namespace) -> int:
    offset, length = _range(args)
    pool = _pool_of(args)
    with progress_bar("Uploading", args) as progress:
        if args.file == "-":
            done = vol_transfer.upload(
                ctx, args.vol, sys.stdin.buffer, pool, offset=offset, length=length
            )
        else:
            done = vol_transfer.upload_file(
                ctx, args.vol, args.file, pool, offset=offset, length=length, progress=progress
            )
    if args.json:
        emit_json({"vol": args.vol, "file": args.file, "bytes": done})
    return 0


def _download(ctx: Context, args: argparse.Namespace) -> int:
    offset, length = _range(args)
    pool = _pool_of(args)
    if args.file == "-":
        if args.json:
            from vmkit.errors import InvalidConfig

            raise InvalidConfig("--json cannot be combined with downloading to stdout")
        vol_transfer.download(ctx, args.vol, sys.stdout.buffer, pool, offset=offset, length=length)
        return 0
    with progress_bar("Downloading", args) as progress:
        done = vol_transfer.download_file(
            ctx, args.vol, args.file, pool, offset=offset, length=length, progress=progress
        )
    if args.json:
        emit_json({"vol": args.vol, "file": args.file, "bytes": done})
    return 0


# ---------------------------------------------------------------------------------------------
# queries


def _info(ctx: Context, args: argparse.Namespace) -> int:
    vol = volumes.info(ctx, args.vol, _pool_of(args))
    if args.json:
        emit_json(_vol_json(vol))
    else:
        emit(format_vol_info(vol, in_bytes=args.bytes))
    return 0


def _list(ctx: Context, args: argparse.Namespace) -> int:
    vols = volumes.list_volumes(ctx, args.pool)
    if args.json:
        emit_json([_vol_json(v, args.pool) for v in vols])
    else:
        emit(format_vol_list(vols, details=args.details))
    return 0


def _dumpxml(ctx: Context, args: argparse.Namespace) -> int:
    xml = volumes.dumpxml(ctx, args.vol, _pool_of(args))
    emit_json({"xml": xml}) if args.json else emit(xml)
    return 0


def _path(ctx: Context, args: argparse.Namespace) -> int:
    path = volumes.path_of(ctx, args.vol, _pool_of(args))
    return _say(args, path, {"vol": args.vol, "path": path})


_HANDLERS: dict[str, Handler] = {
    "vol-create-as": _create_as,
    "vol-create": _create,
    "vol-clone": _clone,
    "vol-delete": _delete,
    "vol-resize": _resize,
    "vol-info": _info,
    "vol-list": _list,
    "vol-dumpxml": _dumpxml,
    "vol-path": _path,
    "vol-upload": _upload,
    "vol-download": _download,
    "vol-wipe": _wipe,
    "vol-import": _import,
}
