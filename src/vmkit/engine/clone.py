"""`vmkit clone` (virt-clone's job): a new domain from an existing one, with its own disks.

The clone gets a new name, a new uuid and new MAC addresses (tap names are cleared). Each
writable disk with an image is copied with `qemu-img convert` (same format), or, with `linked`,
becomes a qcow2 overlay backed by the original's image. Read-only and shareable disks and
cdroms are shared, as virt-clone does. New image paths come from `files` (one per cloned disk,
in order) or, with `auto`, from virt-clone's rule (`<dir>/<new name><ext>` when the image is
named after the original domain, else `<image>-clone<ext>`, then `-1`, `-2`, ...).

The original must be shut off, or paused for a full copy (virt-clone's rule; its images are
read with -U while QEMU holds them). A linked clone needs a shut-off original without snapshots,
and freezes the original's images: the original goes on in its own new qcow2 overlay
(`<image stem>-overlay.qcow2`), so neither domain ever writes the shared base (a write by the
original would silently corrupt every clone). On any failure every file made is removed and
nothing is defined.
"""

from __future__ import annotations

import contextlib
import os
import uuid as uuid_mod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from vmkit.engine import states
from vmkit.engine.context import Context
from vmkit.engine.domains import define, locked_lookup, lookup
from vmkit.engine.runtime import is_active
from vmkit.engine.snapshot_plan import snapshottable
from vmkit.errors import CommandFailed, Conflict, InvalidConfig, VmkitError, WrongState
from vmkit.model.devices import Disk, DiskFormat, DiskType
from vmkit.model.domain import Domain
from vmkit.state.records import DOMAIN, SNAPSHOT, DomainEntry
from vmkit.storage.qemuimg import (
    ProgressCallback,
    ProgressParser,
    QemuImg,
    convert_argv,
    remove_on_failure,
)

# Called with each new image's file name as it is made; returns what gets the copy's
# percentages (0.0 .. 100.0), or None.
Progress = Callable[[str], ProgressCallback | None]


@dataclass(frozen=True)
class ClonedDisk:
    target: str
    source: str  # the original's image
    file: str  # the clone's image


@dataclass(frozen=True)
class CloneResult:
    name: str
    uuid: str
    disks: list[ClonedDisk]
    original_overlays: list[ClonedDisk]  # linked: where the original now writes


def clone_domain(
    ctx: Context,
    original: str,
    name: str,
    *,
    files: Sequence[str] = (),
    auto: bool = False,
    linked: bool = False,
    progress: Progress | None = None,
) -> CloneResult:
    """Clone domain `original` as `name`; see the module docstring for the rules."""
    uuid = locked_lookup(ctx, original).uuid
    with ctx.lock(DOMAIN, uuid):
        entry = lookup(ctx, uuid)
        _check_state(ctx, entry, linked)
        if ctx.store.find(DOMAIN, name) is not None:
            raise Conflict(
                "domain",
                name,
                f"Invalid name for new guest: Guest name '{name}' is already in use.",
            )
        dom = _source_domain(entry)
        disks = [d for d in dom.devices.disks if snapshottable(d) and not d.shareable]
        paths = _new_paths(dom, name, disks, files, auto)
        made: list[str] = []
        definition = None
        try:
            cloned = _make_images(
                disks, paths, linked, forced=is_active(entry), made=made, progress=progress
            )
            moved = _freeze_original(disks, made) if linked else []
            new = _clone_definition(dom, name, cloned, linked)
            definition = define(ctx, new, f"clone of '{entry.name}'")
            if moved:
                _move_original(ctx, entry, moved)
        except BaseException:
            if definition is not None:
                with contextlib.suppress(VmkitError):
                    ctx.store.undefine(DOMAIN, definition.uuid)
            for path in made:
                Path(path).unlink(missing_ok=True)
            raise
        ctx.store.log_event(DOMAIN, definition.uuid, name, "cloned", entry.name)
        return CloneResult(definition.name, definition.uuid, cloned, moved)


def _source_domain(entry: DomainEntry) -> Domain:
    """The definition to clone: what a paused domain runs with, else its definition."""
    from vmkit.xml.domain import parse_domain

    rt = entry.runtime
    xml = rt.live_xml if is_active(entry) and rt is not None and rt.live_xml else None
    return parse_domain(xml or entry.definition.xml)


def _check_state(ctx: Context, entry: DomainEntry, linked: bool) -> None:
    rt = entry.runtime
    if is_active(entry) and (linked or rt is None or rt.state != states.DomainState.PAUSED):
        need = "shut off" if linked else "paused or shut off"
        raise WrongState(
            f"Domain '{entry.name}' with devices to clone must be {need}"
            + (" for a linked clone (its images become the clone's base)" if linked else ""),
            state=rt.state if rt is not None else "",
            required=need,
        )
    if linked and ctx.store.list(SNAPSHOT, parent=entry.uuid):
        raise WrongState(
            f"cannot make a linked clone of domain '{entry.name}': it has snapshots, and "
            "reverting one would rewrite the images the clone is based on",
            state="has snapshots",
            required="no snapshots",
        )


def _new_paths(
    dom: Domain, name: str, disks: list[Disk], files: Sequence[str], auto: bool
) -> list[str]:
    if len(files) > len(disks):
        raise InvalidConfig(
            f"{len(files)} --file given, but domain '{dom.name}' has {len(disks)} disk(s) to clone"
        )
    if len(files) < len(disks) and not auto:
        missing = disks[len(files)].target_dev
        raise InvalidConfig(f"--file is required for cloning disk '{missing}' (or --auto-clone)")
    taken: set[str] = set()
    out: list[str] = []
    for i, disk in enumerate(disks):
        assert disk.source is not None
        path = (
            os.path.abspath(files[i])
            if i < len(files)
            else _auto_path(disk.source, dom.name, name, taken)
        )
        if "\x00" in path or path in taken or os.path.lexists(path):
            raise Conflict(
                "file",
                path,
                f"Disk path '{path}' already exists or is given twice: "
                "cloning onto existing storage is not supported",
            )
        if not os.path.isdir(os.path.dirname(path)):
            raise InvalidConfig(f"directory of new disk image {path} does not exist", value=path)
        taken.add(path)
        out.append(path)
    return out


def _auto_path(source: str, orig_name: str, new_name: str, taken: set[str]) -> str:
    """virt-clone's name for a cloned image (virtinst's generate_clone_disk_path)."""
    path, suffix = source, ""
    if "." in source and len(source.rsplit(".", 1)[1]) <= 7:
        path, ext = source.rsplit(".", 1)
        suffix = "." + ext
    dirname, base = os.path.split(path)
    stem = new_name if base == orig_name else base + "-clone"
    candidate = os.path.join(dirname, stem + suffix)
    n = 0
    while os.path.lexists(candidate) or candidate in taken:
        n += 1
        candidate = os.path.join(dirname, f"{stem}-{n}{suffix}")
    return candidate


def _make_images(
    disks: list[Disk],
    paths: list[str],
    linked: bool,
    *,
    forced: bool,
    made: list[str],
    progress: Progress | None,
) -> list[ClonedDisk]:
    img = QemuImg()
    out: list[ClonedDisk] = []
    for disk, path in zip(disks, paths, strict=True):
        assert disk.source is not None
        fmt = str(disk.driver_type or DiskFormat.RAW)
        report = progress(os.path.basename(path)) if progress is not None else None
        made.append(path)
        if linked:
            img.create(path, "qcow2", None, backing=disk.source, backing_format=fmt)
        else:
            _copy(img, disk.source, path, fmt, forced, report)
        if report is not None:
            report(100.0)
        out.append(ClonedDisk(disk.target_dev, disk.source, path))
    return out


def _copy(
    img: QemuImg, src: str, dst: str, fmt: str, forced: bool, report: ProgressCallback | None
) -> None:
    argv = convert_argv(
        src, dst, dst_format=fmt, src_format=fmt, force_share=forced, progress=report is not None
    )
    parser = ProgressParser(report) if report is not None else None
    with remove_on_failure(dst):
        done = img.runner.run(argv, on_stdout=parser.feed if parser is not None else None)
        if done.rc != 0:
            raise CommandFailed(argv, done.rc, done.stderr or done.stdout)


def _freeze_original(disks: list[Disk], made: list[str]) -> list[ClonedDisk]:
    """New overlays for the original's images (they become read-only bases)."""
    img = QemuImg()
    out: list[ClonedDisk] = []
    for disk in disks:
        assert disk.source is not None
        src = Path(disk.source)
        path = src.with_name(f"{src.stem}-overlay.qcow2")
        n = 0
        while path.exists() or str(path) in made:
            n += 1
            path = src.with_name(f"{src.stem}-overlay-{n}.qcow2")
        fmt = str(disk.driver_type or DiskFormat.RAW)
        made.append(str(path))
        img.create(path, "qcow2", None, backing=disk.source, backing_format=fmt)
        out.append(ClonedDisk(disk.target_dev, disk.source, str(path)))
    return out


def _clone_definition(dom: Domain, name: str, cloned: list[ClonedDisk], linked: bool) -> str:
    from vmkit.xml.domain import render_domain

    dom.name = name
    dom.uuid = str(uuid_mod.uuid4())
    dom.id = None
    for nic in dom.devices.interfaces:
        nic.mac_address = None  # define generates new ones
        nic.target_dev = None
    by_target = {c.target: c for c in cloned}
    for disk in dom.devices.disks:
        c = by_target.get(disk.target_dev)
        if c is not None and disk.source == c.source:
            disk.source = c.file
            disk.type = DiskType.FILE  # a copy of a block device is a file
            if linked:
                disk.driver_type = DiskFormat.QCOW2
    text: str = render_domain(dom, inactive=True)
    return text


def _move_original(ctx: Context, entry: DomainEntry, moved: list[ClonedDisk]) -> None:
    from vmkit.engine.snapshot_meta import switch_sources

    d = ctx.store.lookup_domain(entry.uuid).definition
    xml = switch_sources(d.xml, {m.target: (m.source, m.file, "qcow2") for m in moved})
    ctx.store.define(DOMAIN, d.uuid, d.name, xml, persistent=d.persistent)
