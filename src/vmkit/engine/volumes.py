"""Storage volumes: lookup, list, info, dumpxml, path, create (arguments or XML), clone, import,
delete and resize. Upload, download and wipe are in vol_transfer.py.

A volume is a regular file in an active pool's directory (libvirt's model: volumes are scanned,
not defined). It is named by name (with its pool), or by key or path (its absolute path, found
in whichever active pool holds it), as virsh does. vmkit remembers the format of the volumes it
writes (storage_refs) so that raw volumes are never probed. Destructive operations refuse a
volume that a domain uses, or that another volume uses as its backing file, and name them.
Long copies report progress (0..100) to the caller's callback.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from vmkit.engine.context import Context
from vmkit.engine.pools import PoolEntry, active_pool, all_pools, require_active, state_of
from vmkit.engine.storage_refs import (
    DomainUse,
    domain_users,
    forget_format,
    names,
    prune_formats,
    recorded_format,
    recorded_formats,
    remember_format,
)
from vmkit.errors import CommandFailed, Conflict, InvalidConfig, NotFound, StorageError
from vmkit.model.storage import (
    BackingStore,
    Pool,
    PoolState,
    Volume,
    check_volume_name,
    parse_size,
    resize_capacity,
    validate_volume,
)
from vmkit.state.records import VOLUME
from vmkit.storage import (
    QemuImg,
    RefreshResult,
    backing_users,
    clone_volume,
    create_volume,
    delete_volume,
    describe_volume,
    import_image,
    refresh_pool,
    resize_volume,
    volume_path,
)
from vmkit.storage.paths import is_in_pool
from vmkit.storage.qemuimg import ProgressCallback
from vmkit.storage.volumes import BACKING_FORMATS, check_not_in_use, resolve_backing


def qemu_img() -> QemuImg:
    return QemuImg()


@dataclass(frozen=True)
class VolRef:
    """A volume found in an active pool: the pool, the volume's name and its file."""

    entry: PoolEntry
    name: str
    path: Path

    @property
    def pool(self) -> Pool:
        return self.entry.pool


# ---------------------------------------------------------------------------------------------
# lookup


def lookup_volume(ctx: Context, vol: str, pool_key: str | None = None) -> VolRef:
    """The volume `vol` (name, key or path), in pool `pool_key` when given."""
    if pool_key is not None:
        entry = active_pool(ctx, pool_key)
        if vol.startswith("/"):
            if not is_in_pool(entry.pool, vol):
                raise _no_vol(vol, f"no storage vol with matching path '{vol}' in pool")
            return _existing(entry, os.path.basename(vol), vol)
        return _existing(entry, vol, vol)
    if vol.startswith("/"):
        for entry in _active(ctx):
            if is_in_pool(entry.pool, vol):
                return _existing(entry, os.path.basename(vol), vol)
        raise _no_vol(vol, f"no storage vol with matching path '{vol}'")
    return _by_name_anywhere(ctx, vol)


def _by_name_anywhere(ctx: Context, name: str) -> VolRef:
    """A bare name without --pool: accepted when exactly one active pool has that volume."""
    check_volume_name(name)
    holders = [e for e in _active(ctx) if _is_volume_file(Path(e.pool.target_path) / name)]
    if len(holders) == 1:
        return _existing(holders[0], name, name)
    if len(holders) > 1:
        pools = ", ".join(f"'{e.name}'" for e in holders)
        raise Conflict(
            "volume", name, f"volume '{name}' exists in pools {pools}: say which with --pool"
        )
    raise NotFound("volume", name, f"failed to get vol '{name}', specifying --pool might help")


def _active(ctx: Context) -> list[PoolEntry]:
    return [e for e in all_pools(ctx) if e.active]


def _existing(entry: PoolEntry, name: str, shown: str) -> VolRef:
    path = volume_path(entry.pool, name)
    if not os.path.lexists(path):
        raise _no_vol(shown, f"no storage vol with matching name '{name}' in pool '{entry.name}'")
    if not _is_volume_file(path):
        raise NotFound(
            "volume",
            shown,
            f"failed to get vol '{shown}': '{path}' in pool '{entry.name}' is not a volume "
            "(not a regular file)",
        )
    return VolRef(entry, name, path)


def _is_volume_file(path: Path) -> bool:
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False


def _no_vol(shown: str, detail: str) -> NotFound:
    return NotFound("volume", shown, f"failed to get vol '{shown}': {detail}")


# ---------------------------------------------------------------------------------------------
# describe, list


def describe(ctx: Context, ref: VolRef) -> Volume:
    """vol-info / vol-dumpxml data; a recorded format is used instead of probing."""
    fmt = recorded_format(ctx, ref.entry.uuid, ref.name)
    try:
        return describe_volume(ref.pool, ref.name, qemu_img(), fmt=fmt)
    except CommandFailed:
        if fmt in (None, "raw"):
            raise
        return describe_volume(ref.pool, ref.name, qemu_img())  # replaced behind vmkit's back


def scan_pool(ctx: Context, entry: PoolEntry) -> RefreshResult:
    """Every volume of an active pool; records of files that are gone are dropped."""
    require_active(entry)
    if state_of(entry) is PoolState.INACCESSIBLE:
        raise StorageError(
            f"storage pool '{entry.name}' is inaccessible: its directory "
            f"'{entry.pool.target_path}' is gone (pool-destroy, pool-build, pool-start)"
        )
    formats = recorded_formats(ctx, entry.uuid)
    result = refresh_pool(entry.pool, qemu_img(), formats=formats)
    skipped = []
    for name, reason in result.skipped:
        if formats.get(name, "raw") != "raw" and _is_volume_file(
            Path(entry.pool.target_path, name)
        ):
            try:
                result.volumes.append(describe_volume(entry.pool, name, qemu_img()))
                continue
            except (CommandFailed, NotFound):
                pass
        skipped.append((name, reason))
    result.skipped = skipped
    result.volumes.sort(key=lambda v: v.name)
    present = {v.name for v in result.volumes} | {n for n, _ in skipped}
    prune_formats(ctx, entry.uuid, present)
    return result


def list_volumes(ctx: Context, pool_key: str) -> list[Volume]:
    return scan_pool(ctx, active_pool(ctx, pool_key)).volumes


def info(ctx: Context, vol: str, pool_key: str | None = None) -> Volume:
    return describe(ctx, lookup_volume(ctx, vol, pool_key))


def dumpxml(ctx: Context, vol: str, pool_key: str | None = None) -> str:
    from vmkit.xml.storage import render_volume

    return render_volume(info(ctx, vol, pool_key))


def path_of(ctx: Context, vol: str, pool_key: str | None = None) -> str:
    return str(lookup_volume(ctx, vol, pool_key).path)


# ---------------------------------------------------------------------------------------------
# users


def refuse_running_users(ref: VolRef, users: list[DomainUse], action: str) -> None:
    running = [u.name for u in users if u.running]
    if running:
        which = ", ".join(f"'{n}'" for n in running)
        noun = "domain" if len(running) == 1 else "domains"
        raise Conflict(
            "volume",
            ref.name,
            f"cannot {action} volume '{ref.name}': it is in use by running {noun} {which} "
            "(shut it off first)",
        )


def overlay_users(ctx: Context, path: str | Path) -> list[str]:
    """'name' (pool 'p') of every volume, in any active pool, whose backing file is `path`."""
    found = []
    for entry in _active(ctx):
        if state_of(entry) is PoolState.RUNNING:
            for name in backing_users(scan_pool(ctx, entry).volumes, path):
                found.append(f"'{name}' (pool '{entry.name}')")
    return found


def refuse_overlays(ctx: Context, ref: VolRef, action: str) -> None:
    users = overlay_users(ctx, ref.path)
    if users:
        noun = "volume" if len(users) == 1 else "volumes"
        verb = "uses" if len(users) == 1 else "use"
        raise Conflict(
            "volume",
            ref.name,
            f"cannot {action} volume '{ref.name}': {noun} {', '.join(users)} {verb} it as "
            "backing file",
        )


@contextmanager
def locked(ctx: Context, path: Path) -> Iterator[None]:
    with ctx.lock(VOLUME, str(path)):
        yield


# ---------------------------------------------------------------------------------------------
# create


@dataclass(frozen=True)
class CreateArgs:
    """vol-create-as's arguments, as typed."""

    name: str
    capacity: str
    fmt: str = "raw"
    allocation: str | None = None
    backing: str | None = None
    backing_format: str | None = None
    prealloc_metadata: bool = False


def volume_from_args(entry: PoolEntry, args: CreateArgs) -> Volume:
    """The volume vol-create-as describes (backing volume resolved and checked)."""
    check_volume_name(args.name)
    vol = Volume(
        name=args.name,
        capacity=parse_size(args.capacity, xpath="/volume/capacity"),
        target_format=args.fmt,
    )
    if args.allocation is not None:
        vol.allocation = parse_size(args.allocation, xpath="/volume/allocation")
    if args.backing is not None:
        if args.fmt not in BACKING_FORMATS:
            raise InvalidConfig(
                f"a volume of format '{args.fmt}' cannot have a backing file (use qcow2)",
                xpath="/volume/target/format/@type",
                value=args.fmt,
            )
        path = _backing_path(entry, args.backing)
        vol.backing_store = BackingStore(path, args.backing_format)
    return validate_volume(vol)


def _backing_path(entry: PoolEntry, spec: str) -> str:
    if not spec.startswith("/"):
        path = volume_path(entry.pool, spec)
        if not _is_volume_file(path):
            raise NotFound(
                "volume",
                spec,
                f"failed to get vol '{spec}': backing volume '{spec}' does not exist in pool "
                f"'{entry.name}'",
            )
    return resolve_backing(entry.pool, spec)


def create_as(ctx: Context, pool_key: str, args: CreateArgs) -> Volume:
    """vol-create-as."""
    entry = active_pool(ctx, pool_key)
    vol = volume_from_args(entry, args)
    return _create(ctx, entry, vol, args.prealloc_metadata)


def create_from_xml(
    ctx: Context,
    pool_key: str,
    data: str | bytes,
    source: str,
    *,
    prealloc_metadata: bool = False,
) -> Volume:
    """vol-create POOL FILE."""
    from vmkit.xml.storage import parse_volume

    entry = active_pool(ctx, pool_key)
    try:
        vol = parse_volume(data)
    except InvalidConfig as e:
        raise InvalidConfig(f"Failed to create vol from {source}: {e}", value=e.value) from e
    return _create(ctx, entry, vol, prealloc_metadata)


def _create(ctx: Context, entry: PoolEntry, vol: Volume, prealloc_metadata: bool) -> Volume:
    path = volume_path(entry.pool, vol.name)
    bs = vol.backing_store
    if bs is not None:
        _check_backing_use(ctx, vol.name, bs.path)
        if bs.format is None:
            bs.format = backing_format(ctx, bs.path)
    with locked(ctx, path):
        made = create_volume(entry.pool, vol, qemu_img(), prealloc_metadata=prealloc_metadata)
        _remember_or_remove(ctx, entry, made)
        ctx.store.log_event(VOLUME, entry.uuid, made.name, "created", entry.name)
        return made


def _check_backing_use(ctx: Context, name: str, backing: str) -> None:
    running = [u.name for u in domain_users(ctx, backing, running_only=True)]
    if running:
        which = ", ".join(f"'{n}'" for n in running)
        raise Conflict(
            "volume",
            name,
            f"cannot use '{backing}' as backing file of volume '{name}': running domain(s) "
            f"{which} write to it",
        )


def backing_format(ctx: Context, path: str) -> str | None:
    """The recorded format of a backing file that is a volume vmkit made (else None: probe)."""
    for entry in _active(ctx):
        if is_in_pool(entry.pool, path):
            return recorded_format(ctx, entry.uuid, os.path.basename(path))
    return None


def _remember_or_remove(ctx: Context, entry: PoolEntry, vol: Volume) -> None:
    """Record the new volume's format; if the store fails, the new file goes too."""
    try:
        remember_format(ctx, entry.uuid, vol.name, vol.target_format or "raw")
    except BaseException:
        Path(vol.target_path or volume_path(entry.pool, vol.name)).unlink(missing_ok=True)
        raise


# ---------------------------------------------------------------------------------------------
# clone, import


def clone(
    ctx: Context,
    vol: str,
    new_name: str,
    pool_key: str | None = None,
    *,
    linked: bool = False,
    progress: ProgressCallback | None = None,
) -> Volume:
    """vol-clone: a full copy in the same pool, or (`linked`) a qcow2 overlay on the source."""
    src = lookup_volume(ctx, vol, pool_key)
    refuse_running_users(src, domain_users(ctx, src.path, running_only=True), "clone")
    current = describe(ctx, src)
    dst_path = volume_path(src.pool, new_name)
    with locked(ctx, dst_path):
        made = clone_volume(
            src.pool,
            src.name,
            new_name,
            qemu_img(),
            src_format=current.target_format,
            linked=linked,
            progress=progress,
        )
        _remember_or_remove(ctx, src.entry, made)
        ctx.store.log_event(VOLUME, src.entry.uuid, new_name, "created", f"clone of {src.name}")
        return made


def import_volume(
    ctx: Context,
    pool_key: str,
    file: str,
    name: str,
    *,
    fmt: str = "qcow2",
    src_format: str | None = None,
    progress: ProgressCallback | None = None,
) -> Volume:
    """vol-import: convert an existing image (qcow2, raw, vmdk, vdi, ...) into a new volume."""
    entry = active_pool(ctx, pool_key)
    source = os.path.abspath(file)
    running = [u.name for u in domain_users(ctx, source, running_only=True)]
    if running:
        raise Conflict(
            "volume", name, f"cannot import '{source}': running domain '{running[0]}' uses it"
        )
    path = volume_path(entry.pool, name)
    with locked(ctx, path):
        made = import_image(
            entry.pool, source, name, qemu_img(), fmt=fmt, src_format=src_format, progress=progress
        )
        _remember_or_remove(ctx, entry, made)
        ctx.store.log_event(VOLUME, entry.uuid, name, "created", f"import of {source}")
        return made


# ---------------------------------------------------------------------------------------------
# delete, resize


def delete(ctx: Context, vol: str, pool_key: str | None = None) -> VolRef:
    """vol-delete: refused while a domain or another volume (as backing file) uses it."""
    ref = lookup_volume(ctx, vol, pool_key)
    with locked(ctx, ref.path):
        check_not_in_use(ref.name, names(domain_users(ctx, ref.path)), "delete")
        refuse_overlays(ctx, ref, "delete")
        delete_volume(ref.pool, ref.name)
        forget_format(ctx, ref.entry.uuid, ref.name)
        ctx.store.log_event(VOLUME, ref.entry.uuid, ref.name, "deleted", ref.entry.name)
        return ref


def resize(
    ctx: Context,
    vol: str,
    capacity: str,
    pool_key: str | None = None,
    *,
    shrink: bool = False,
    delta: bool = False,
) -> Volume:
    """vol-resize: grow, or shrink with `shrink`; refused while a running domain uses it."""
    ref = lookup_volume(ctx, vol, pool_key)
    with locked(ctx, ref.path):
        refuse_running_users(ref, domain_users(ctx, ref.path, running_only=True), "resize")
        current = describe(ctx, ref)
        size = resize_capacity(capacity, current.capacity or 0, delta=delta, shrink=shrink)
        made = resize_volume(
            ref.pool, ref.name, size, qemu_img(), shrink=shrink, fmt=current.target_format
        )
        ctx.store.log_event(VOLUME, ref.entry.uuid, ref.name, "resized", str(size))
        return made
