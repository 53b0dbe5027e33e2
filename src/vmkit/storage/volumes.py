"""Volumes of directory pools: create (from the model or vol-create-as arguments), clone, import,
delete, resize and describe (vol-info / vol-dumpxml data), on qemu-img.

Every volume path goes through vmkit.storage.paths.volume_path (stays inside its pool). A new
volume's file is reserved with O_CREAT|O_EXCL first (an existing name is a Conflict, never
overwritten) and removed again if anything after that fails, so a failed create, clone or
import (disk full, missing backing file, qemu-img error) leaves nothing behind. Callers tell
which domains use a volume (`in_use_by`); destructive operations refuse and name them.
This module does not know about pool state (active/autostart) or the state store: that is the
engine's.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Iterator, Sequence
from pathlib import Path

from vmkit.errors import CommandFailed, Conflict, InvalidConfig, NotFound, StorageError
from vmkit.model.storage import (
    VOLUME_FORMATS,
    BackingStore,
    Permissions,
    Pool,
    Timestamps,
    Volume,
    VolumeType,
    format_size,
    validate_volume,
)
from vmkit.storage.paths import DEFAULT_VOLUME_MODE, volume_path
from vmkit.storage.qemuimg import ImageInfo, ProgressCallback, QemuImg

# formats qemu-img can create, by libvirt name
CREATABLE_FORMATS = ("raw", "qcow2", "qcow", "qed", "vmdk", "vdi", "vpc", "vhd")
# formats whose images can have a backing file
BACKING_FORMATS = ("qcow2", "qcow", "qed", "vmdk")
_TO_QEMU = {"iso": "raw", "vhd": "vhdx", "ploop": "parallels"}
_FROM_QEMU = {"vhdx": "vhd", "parallels": "ploop"}


def qemu_format(fmt: str) -> str:
    """qemu-img's name for a libvirt volume format."""
    return _TO_QEMU.get(fmt, fmt)


def libvirt_format(fmt: str) -> str:
    """libvirt's name for a format qemu-img reports ('unknown' when libvirt has none)."""
    name = _FROM_QEMU.get(fmt, fmt)
    return name if name in VOLUME_FORMATS else "unknown"


def check_not_in_use(name: str, in_use_by: Sequence[str], action: str) -> None:
    """Refuse `action` on a volume that the named domains use."""
    if in_use_by:
        which = ", ".join(f"'{d}'" for d in in_use_by)
        noun = "domain" if len(in_use_by) == 1 else "domains"
        raise Conflict(
            "volume", name, f"cannot {action} volume '{name}': it is in use by {noun} {which}"
        )


# ---------------------------------------------------------------------------------------------
# describe


def describe_volume(pool: Pool, name: str, qemu_img: QemuImg, *, fmt: str | None = None) -> Volume:
    """vol-info / vol-dumpxml data of a volume: qemu-img info + stat (`fmt` skips probing)."""
    path = volume_path(pool, name)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise _not_found(pool, name) from None
    except OSError as e:
        raise StorageError(f"cannot stat volume '{name}': {e.strerror}") from e
    info = qemu_img.info(path, fmt=qemu_format(fmt) if fmt else None)
    return volume_from_info(name, path, info, st)


def volume_from_info(name: str, path: Path, info: ImageInfo, st: os.stat_result) -> Volume:
    """A Volume from what qemu-img and stat(2) say about its file."""
    fmt = libvirt_format(info.format)
    vol = Volume(
        name=name,
        type=VolumeType.FILE if stat.S_ISREG(st.st_mode) else VolumeType.BLOCK,
        key=str(path),
        # qemu reports a raw file's size rounded up to 512 bytes; the file's size is exact
        capacity=st.st_size if fmt == "raw" and stat.S_ISREG(st.st_mode) else info.virtual_size,
        allocation=st.st_blocks * 512,
        physical=st.st_size,
        target_path=str(path),
        target_format=fmt,
        target_permissions=Permissions(
            mode=stat.S_IMODE(st.st_mode), owner=st.st_uid, group=st.st_gid
        ),
        target_timestamps=Timestamps(
            atime=_stamp(st.st_atime_ns), mtime=_stamp(st.st_mtime_ns), ctime=_stamp(st.st_ctime_ns)
        ),
    )
    if fmt == "qcow2":
        vol.target_compat = info.compat
        vol.target_features_lazy_refcounts = bool(info.lazy_refcounts)
        vol.target_features_extended_l2 = bool(info.extended_l2)
        vol.target_cluster_size = info.cluster_size
    backing = info.full_backing_filename or info.backing_filename
    if backing:
        full = backing if backing.startswith("/") else str(path.parent / backing)
        bfmt = libvirt_format(info.backing_format) if info.backing_format else None
        vol.backing_store = BackingStore(path=full, format=bfmt)
    return vol


def _stamp(ns: int) -> str:
    return f"{ns // 10**9}.{ns % 10**9:09d}"


def backing_users(vols: Sequence[Volume], path: str | Path) -> list[str]:
    """Names of the volumes (e.g. from a pool refresh) whose backing file is `path`."""
    real = os.path.realpath(path)
    return [
        v.name
        for v in vols
        if v.backing_store is not None and os.path.realpath(v.backing_store.path) == real
    ]


# ---------------------------------------------------------------------------------------------
# create


def create_volume_as(
    pool: Pool,
    name: str,
    capacity: int | None,
    qemu_img: QemuImg,
    *,
    fmt: str = "raw",
    allocation: int | None = None,
    backing: str | None = None,
    backing_format: str | None = None,
    prealloc_metadata: bool = False,
) -> Volume:
    """vol-create-as: `backing` is a volume name in `pool` or an absolute path."""
    vol = Volume(name=name, capacity=capacity, allocation=allocation, target_format=fmt)
    if backing is not None:
        vol.backing_store = BackingStore(resolve_backing(pool, backing), backing_format)
    return create_volume(pool, vol, qemu_img, prealloc_metadata=prealloc_metadata)


def resolve_backing(pool: Pool, spec: str) -> str:
    """A `--backing-vol` argument: an absolute path, or the name of a volume in `pool`."""
    if spec.startswith("/"):
        return spec
    return str(volume_path(pool, spec))


def create_volume(
    pool: Pool, vol: Volume, qemu_img: QemuImg, *, prealloc_metadata: bool = False
) -> Volume:
    """vol-create: make the image `vol` describes in `pool`; returns what was made."""
    validate_volume(vol)
    path = volume_path(pool, vol.name)
    if vol.target_path is not None and os.path.normpath(vol.target_path) != str(path):
        raise InvalidConfig(
            f"volume target path '{vol.target_path}' does not match its place in pool "
            f"'{pool.name}' ('{path}'); leave <path> out or make it match",
            xpath="/volume/target/path",
            value=vol.target_path,
        )
    fmt = vol.target_format or "raw"
    _check_creatable(fmt, vol, prealloc_metadata)
    backing_fmt = _check_backing(vol, qemu_img)
    options = _create_options(fmt, vol, prealloc_metadata)
    mode = _mode(vol.target_permissions)
    with reserved(pool, vol.name, path, mode) as fd:
        if fmt == "raw" and not options:
            _create_raw(fd, vol)  # exact size (qemu-img rounds up to 512), as libvirt does
        else:
            bs = vol.backing_store
            qemu_img.create(
                path,
                qemu_format(fmt),
                vol.capacity,
                backing=bs.path if bs else None,
                backing_format=qemu_format(backing_fmt) if backing_fmt else None,
                options=options,
            )
        _apply_permissions(fd, vol.name, vol.target_permissions)
    return describe_volume(pool, vol.name, qemu_img, fmt=fmt)


def _check_creatable(fmt: str, vol: Volume, prealloc_metadata: bool) -> None:
    xp = "/volume/target/format/@type"
    if fmt not in CREATABLE_FORMATS:
        raise InvalidConfig(
            f"cannot create a volume of format '{fmt}' (use one of {', '.join(CREATABLE_FORMATS)})",
            xpath=xp,
            value=fmt,
        )
    if vol.backing_store is None and vol.capacity is None:
        raise InvalidConfig(
            f"volume '{vol.name}' needs a capacity", xpath="/volume/capacity", value=None
        )
    if vol.backing_store is not None and fmt not in BACKING_FORMATS:
        raise InvalidConfig(
            f"a volume of format '{fmt}' cannot have a backing file (use qcow2)",
            xpath=xp,
            value=fmt,
        )
    if prealloc_metadata:
        if fmt != "qcow2":
            raise InvalidConfig(
                f"metadata preallocation needs format qcow2, not '{fmt}'", xpath=xp, value=fmt
            )
        if vol.backing_store is not None:
            raise InvalidConfig(
                "metadata preallocation cannot be combined with a backing file",
                xpath="/volume/backingStore",
            )


def _check_backing(vol: Volume, qemu_img: QemuImg) -> str | None:
    """The backing file must exist; returns its format (probed when not given)."""
    bs = vol.backing_store
    if bs is None:
        return None
    if not os.path.exists(bs.path):
        raise NotFound(
            "backing file",
            bs.path,
            f"backing file '{bs.path}' of volume '{vol.name}' does not exist",
        )
    info = qemu_img.info(bs.path, fmt=qemu_format(bs.format) if bs.format else None)
    if vol.capacity is not None and vol.capacity < info.virtual_size:
        raise InvalidConfig(
            f"capacity {format_size(vol.capacity)} of volume '{vol.name}' is smaller than its "
            f"backing file '{bs.path}' ({format_size(info.virtual_size)})",
            xpath="/volume/capacity",
            value=vol.capacity,
        )
    return bs.format or libvirt_format(info.format)


def format_options(fmt: str, vol: Volume) -> dict[str, str]:
    """qemu-img create's `-o` options for the volume's image format (qcow2's compat, cluster
    size and features; none for other formats)."""
    opts: dict[str, str] = {}
    if fmt == "qcow2":
        if vol.target_compat:
            opts["compat"] = vol.target_compat
        if vol.target_cluster_size:
            opts["cluster_size"] = str(vol.target_cluster_size)
        if vol.target_features_lazy_refcounts:
            opts["lazy_refcounts"] = "on"
        if vol.target_features_extended_l2:
            opts["extended_l2"] = "on"
    return opts


def _create_options(fmt: str, vol: Volume, prealloc_metadata: bool) -> dict[str, str]:
    opts = format_options(fmt, vol)
    if prealloc_metadata:
        opts["preallocation"] = "metadata"
    if vol.target_nocow:
        opts["nocow"] = "on"
    return opts


def _mode(perms: Permissions | None) -> int:
    return perms.mode if perms is not None and perms.mode is not None else DEFAULT_VOLUME_MODE


@contextlib.contextmanager
def reserved(pool: Pool, name: str, path: Path, mode: int) -> Iterator[int]:
    """Create `path` exclusively and yield its fd; remove it if the block fails."""
    flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(path, flags, mode)
    except FileExistsError:
        raise Conflict(
            "volume", name, f"volume '{name}' already exists in pool '{pool.name}'"
        ) from None
    except OSError as e:
        raise StorageError(f"cannot create volume '{name}' in pool '{pool.name}': {e}") from e
    try:
        os.fchmod(fd, mode)  # the umask must not decide
        yield fd
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(path)
        raise
    finally:
        os.close(fd)


def _create_raw(fd: int, vol: Volume) -> None:
    """A raw file of `capacity` bytes, sparse but for the first `allocation` bytes."""
    capacity = vol.capacity or 0
    allocation = min(vol.allocation or 0, capacity)
    try:
        os.ftruncate(fd, capacity)
        if allocation:
            os.posix_fallocate(fd, 0, allocation)
    except OSError as e:
        raise StorageError(
            f"cannot allocate {format_size(allocation or capacity)} for volume '{vol.name}': "
            f"{e.strerror}"
        ) from e


def _apply_permissions(fd: int, name: str, perms: Permissions | None) -> None:
    if perms is None:
        return
    try:
        if perms.mode is not None:
            os.fchmod(fd, perms.mode)
        uid = -1 if perms.owner is None else perms.owner
        gid = -1 if perms.group is None else perms.group
        if uid != -1 or gid != -1:
            os.fchown(fd, uid, gid)
    except OSError as e:
        raise StorageError(f"cannot set permissions of volume '{name}': {e}") from e


# ---------------------------------------------------------------------------------------------
# clone, import


def clone_volume(
    pool: Pool,
    name: str,
    new_name: str,
    qemu_img: QemuImg,
    *,
    dst_pool: Pool | None = None,
    fmt: str | None = None,
    src_format: str | None = None,
    linked: bool = False,
    progress: ProgressCallback | None = None,
) -> Volume:
    """vol-clone: a full copy (qemu-img convert; `fmt` defaults to the source's), or with
    linked=True a qcow2 copy-on-write overlay whose backing file is the source."""
    dst = dst_pool or pool
    src = volume_path(pool, name)
    if not os.path.lexists(src):
        raise _not_found(pool, name)
    info = qemu_img.info(src, fmt=qemu_format(src_format) if src_format else None)
    source_fmt = src_format or libvirt_format(info.format)
    if linked:
        if fmt not in (None, "qcow2"):
            raise InvalidConfig(f"a linked clone is a qcow2 overlay; format '{fmt}' is not")
        overlay = Volume(
            name=new_name, target_format="qcow2", backing_store=BackingStore(str(src), source_fmt)
        )
        return create_volume(dst, overlay, qemu_img)
    what = f"clone volume '{name}' into '{new_name}' in pool '{dst.name}'"
    return _convert_into(
        dst, src, source_fmt, new_name, fmt or source_fmt, qemu_img, progress, what
    )


def import_image(
    pool: Pool,
    src: str | Path,
    name: str,
    qemu_img: QemuImg,
    *,
    fmt: str = "qcow2",
    src_format: str | None = None,
    progress: ProgressCallback | None = None,
) -> Volume:
    """Import an existing image (qcow2, raw, vmdk, vdi, ...) as volume `name`, converted to
    `fmt`; `src_format` skips probing the source (give it for raw images you did not make)."""
    source = Path(src)
    if not source.exists():
        raise NotFound("image", str(source), f"image to import '{source}' does not exist")
    if not source.is_file():
        raise InvalidConfig(f"image to import '{source}' is not a regular file", value=str(source))
    info = qemu_img.info(source, fmt=qemu_format(src_format) if src_format else None)
    if src_format is None and info.backing_filename:
        # a probed header may be a raw disk's content pretending to be qcow2 (CVE-2008-2004):
        # following its backing file would copy any host file into the volume
        raise InvalidConfig(
            f"image '{source}' looks like {info.format} with backing file "
            f"'{info.backing_filename}'; name its format to import it with its backing chain",
            value=str(source),
        )
    source_fmt = src_format or libvirt_format(info.format)
    what = f"import '{source}' as volume '{name}' in pool '{pool.name}'"
    return _convert_into(pool, source, source_fmt, name, fmt, qemu_img, progress, what)


def _convert_into(
    pool: Pool,
    src: Path,
    src_fmt: str,
    name: str,
    fmt: str,
    qemu_img: QemuImg,
    progress: ProgressCallback | None,
    what: str,
) -> Volume:
    """qemu-img convert `src` into a new volume `name`; a failure (a full disk, ...) removes it
    and names the volume (`what` is the operation, for the message)."""
    if fmt not in CREATABLE_FORMATS:
        raise InvalidConfig(
            f"cannot write a volume of format '{fmt}' (use one of {', '.join(CREATABLE_FORMATS)})",
            value=fmt,
        )
    if src_fmt == "unknown":
        raise InvalidConfig(f"cannot tell the format of '{src}'; name it", value=str(src))
    path = volume_path(pool, name)
    with reserved(pool, name, path, DEFAULT_VOLUME_MODE):
        try:
            qemu_img.convert(
                src,
                path,
                src_format=qemu_format(src_fmt),
                dst_format=qemu_format(fmt),
                progress=progress,
            )
        except CommandFailed as e:
            raise CommandFailed(e.argv, e.rc, e.stderr, what=what) from e
    return describe_volume(pool, name, qemu_img, fmt=fmt)


# ---------------------------------------------------------------------------------------------
# delete, resize


def delete_volume(pool: Pool, name: str, *, in_use_by: Sequence[str] = ()) -> None:
    """vol-delete: refused while a domain uses the volume (name them in `in_use_by`)."""
    path = volume_path(pool, name)
    check_not_in_use(name, in_use_by, "delete")
    try:
        path.unlink()
    except FileNotFoundError:
        raise _not_found(pool, name) from None
    except IsADirectoryError:
        raise StorageError(f"volume '{name}' is a directory; vmkit does not delete it") from None
    except OSError as e:
        raise StorageError(f"cannot delete volume '{name}': {e.strerror}") from e


def resize_volume(
    pool: Pool,
    name: str,
    capacity: int,
    qemu_img: QemuImg,
    *,
    shrink: bool = False,
    fmt: str | None = None,
    in_use_by: Sequence[str] = (),
) -> Volume:
    """vol-resize to `capacity` bytes; shrinking needs shrink=True. A volume in use by a
    running domain is refused (its QEMU holds the image: resize it through the domain)."""
    check_not_in_use(name, in_use_by, "resize")
    current = describe_volume(pool, name, qemu_img, fmt=fmt)
    size = current.capacity or 0
    if capacity == size:
        return current
    if capacity < size and not shrink:
        raise InvalidConfig(
            f"refusing to shrink volume '{name}' from {format_size(size)} to "
            f"{format_size(capacity)} without --shrink (data past the new end would be lost)",
            value=capacity,
        )
    vfmt = current.target_format or "raw"
    qemu_img.resize(
        volume_path(pool, name), capacity, fmt=qemu_format(vfmt), shrink=capacity < size
    )
    return describe_volume(pool, name, qemu_img, fmt=vfmt)


def _not_found(pool: Pool, name: str) -> NotFound:
    return NotFound(
        "volume",
        name,
        f"storage volume not found: no volume '{name}' in pool '{pool.name}'",
    )


def open_volume(pool: Pool, name: str, flags: int) -> int:
    """An fd on the volume's file (never following a final symlink), for transfers."""
    path = volume_path(pool, name)
    try:
        return os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        raise _not_found(pool, name) from None
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise InvalidConfig(f"volume '{name}' is a symbolic link", value=name) from e
        raise StorageError(f"cannot open volume '{name}': {e.strerror}") from e
