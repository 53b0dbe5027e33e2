"""Pools on the host: build, activate (check; an fs pool is mounted), deactivate (an fs pool
is unmounted), capacity figures, refresh (scan the directory, qemu-img info each file), delete,
and the `default` pool.

A pool here is the model's Pool; whether it is defined, active or autostarted is the engine's
business (state store). A `dir` pool is a directory. An `fs` pool is a file system on a block
device or an image file (fsmount.py), mounted on the target directory while the pool is active;
once mounted it is used exactly like a dir pool.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from vmkit.errors import CommandFailed, Conflict, InvalidConfig, NotFound, StorageError
from vmkit.model.storage import Pool, PoolType, Volume, check_volume_name
from vmkit.storage import fsmount
from vmkit.storage.paths import (
    DEFAULT_POOL_DIR,
    DEFAULT_POOL_MODE,
    DEFAULT_POOL_NAME,
    pool_dir,
    volume_path,
)
from vmkit.storage.qemuimg import QemuImg
from vmkit.storage.volumes import describe_volume


@dataclass(frozen=True)
class PoolStats:
    """Sizes of the file system holding a pool, in bytes (as `df` counts them)."""

    capacity: int  # all blocks
    allocation: int  # used blocks
    available: int  # blocks an unprivileged user may still take


@dataclass
class RefreshResult:
    """The volumes found in a pool, and the entries that are not volumes, with why."""

    volumes: list[Volume] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)


def default_pool(data_dir: str | Path) -> Pool:
    """The `default` pool: directory `images` under vmkit's data dir."""
    return Pool(name=DEFAULT_POOL_NAME, target_path=str(Path(data_dir) / DEFAULT_POOL_DIR))


def build_pool(pool: Pool, *, overwrite: bool | None = None) -> Path:
    """pool-build: create the target directory (and parents) with the pool's permissions.
    An existing directory is fine; a path that is a file (or anything else) is refused.

    For an fs pool, as virsh: `overwrite` None makes only the directory; False makes a file
    system on the source device unless it holds one already (refused); True always makes one.
    """
    path = pool_dir(pool)
    perms = pool.target_permissions
    explicit = perms.mode if perms is not None else None
    _refuse_non_dir(pool, path)
    if pool.type is PoolType.FS and overwrite is not None:
        _make_fs(pool, overwrite)
    try:
        existed = path.is_dir()
        path.mkdir(parents=True, exist_ok=True)
        if explicit is not None or not existed:  # an existing dir keeps its mode unless told
            os.chmod(path, DEFAULT_POOL_MODE if explicit is None else explicit)
        if perms is not None and (perms.owner not in (None, -1) or perms.group not in (None, -1)):
            os.chown(path, _id(perms.owner), _id(perms.group))
    except FileExistsError:
        _refuse_non_dir(pool, path)
        raise
    except OSError as e:
        raise StorageError(f"cannot build pool '{pool.name}' at '{path}': {e.strerror}") from e
    return path


def _make_fs(pool: Pool, overwrite: bool) -> None:
    device = _device(pool)
    fsmount.check_device(device, pool.name)
    if fsmount.mounted_source(pool.target_path) is not None:
        raise Conflict(
            "pool", pool.name, f"cannot build pool '{pool.name}': '{pool.target_path}' is mounted"
        )
    if not overwrite:
        found = fsmount.probe(device)
        if found is not None:
            raise Conflict(
                "pool",
                pool.name,
                f"cannot build pool '{pool.name}': '{device}' already holds a file system "
                f"({found}); --overwrite replaces it",
            )
    fsmount.make(device, pool.source.format_type)


def _device(pool: Pool) -> str:
    device = pool.source.device_path
    assert device is not None  # validate_pool requires it of an fs pool
    return device


def activate_pool(pool: Pool) -> Path:
    """What pool-start does on the host: check the target; mount an fs pool's file system."""
    if pool.type is not PoolType.FS:
        return check_pool_target(pool)
    path = _existing_target(pool)
    device = _device(pool)
    fsmount.check_device(device, pool.name)
    source = fsmount.mounted_source(str(path))
    if source is not None:
        if not fsmount.same_device(source, device):
            raise Conflict(
                "pool",
                pool.name,
                f"cannot start pool '{pool.name}': '{source}' is mounted on '{path}', not "
                f"'{device}'",
            )
    else:
        if fsmount.probe(device) is None:
            raise StorageError(
                f"cannot start pool '{pool.name}': '{device}' holds no file system "
                "('vmkit pool-build --no-overwrite' makes one)"
            )
        fsmount.mount(device, str(path), pool.source.format_type)
    return check_pool_target(pool)


def deactivate_pool(pool: Pool) -> None:
    """What pool-destroy does on the host: unmount an fs pool (a dir pool has nothing)."""
    if pool.type is PoolType.FS and fsmount.mounted_source(pool.target_path) is not None:
        fsmount.unmount(pool.target_path)


def _id(value: int | None) -> int:
    return -1 if value is None else value


def _refuse_non_dir(pool: Pool, path: Path) -> None:
    if os.path.lexists(path) and not path.is_dir():
        what = "a file" if path.is_file() else "not a directory"
        raise InvalidConfig(
            f"pool '{pool.name}' target path '{path}' exists and is {what}; "
            "a dir pool needs a directory",
            xpath="/pool/target/path",
            value=str(path),
        )


def _existing_target(pool: Pool) -> Path:
    path = pool_dir(pool)
    if not os.path.lexists(path):
        raise NotFound(
            "pool target",
            str(path),
            f"cannot start pool '{pool.name}': target directory '{path}' does not exist "
            "(pool-build creates it)",
        )
    _refuse_non_dir(pool, path)
    return path


def check_pool_target(pool: Pool) -> Path:
    """The target exists and is a directory we can use (an fs pool's: with its file system
    mounted)."""
    path = _existing_target(pool)
    if pool.type is PoolType.FS:
        source = fsmount.mounted_source(str(path))
        if source is None or not fsmount.same_device(source, _device(pool)):
            raise StorageError(
                f"pool '{pool.name}': '{_device(pool)}' is not mounted on '{path}' "
                "(pool-destroy and pool-start mount it again)"
            )
    if not os.access(path, os.R_OK | os.W_OK | os.X_OK):
        raise StorageError(f"cannot start pool '{pool.name}': no access to '{path}'")
    return path


def pool_stats(pool: Pool) -> PoolStats:
    """Capacity, allocation and available bytes of the pool's file system (statvfs)."""
    path = pool_dir(pool)
    try:
        sv = os.statvfs(path)
    except OSError as e:
        raise StorageError(f"cannot read sizes of pool '{pool.name}': {e.strerror}") from e
    capacity = sv.f_frsize * sv.f_blocks
    return PoolStats(
        capacity=capacity,
        allocation=capacity - sv.f_frsize * sv.f_bfree,
        available=sv.f_frsize * sv.f_bavail,
    )


def with_stats(pool: Pool) -> Pool:
    """The pool with its capacity/allocation/available filled in (for pool-info/dumpxml)."""
    st = pool_stats(pool)
    pool.capacity, pool.allocation, pool.available = st.capacity, st.allocation, st.available
    return pool


def refresh_pool(
    pool: Pool, qemu_img: QemuImg, *, formats: Mapping[str, str] | None = None
) -> RefreshResult:
    """pool-refresh: every regular file in the target is a volume, described by qemu-img
    (`formats` maps names whose format is known, e.g. from the state store, so they are not
    probed). Entries that are no volume (directories, bad names, links out) are skipped."""
    path = check_pool_target(pool)
    result = RefreshResult()
    try:
        entries = sorted(os.scandir(path), key=lambda e: e.name)
    except OSError as e:
        raise StorageError(f"cannot list pool '{pool.name}': {e.strerror}") from e
    for entry in entries:
        reason = _not_a_volume(pool, entry)
        if reason:
            result.skipped.append((entry.name, reason))
            continue
        try:
            fmt = (formats or {}).get(entry.name)
            result.volumes.append(describe_volume(pool, entry.name, qemu_img, fmt=fmt))
        except (CommandFailed, NotFound) as e:
            result.skipped.append((entry.name, str(e)))
    return result


def _not_a_volume(pool: Pool, entry: os.DirEntry[str]) -> str | None:
    try:
        check_volume_name(entry.name)
        volume_path(pool, entry.name)
    except InvalidConfig as e:
        return str(e)
    try:
        mode = os.stat(entry.path).st_mode
    except OSError as e:
        return f"cannot stat: {e.strerror}"
    if not stat.S_ISREG(mode):
        return "not a regular file"
    return None


def delete_pool(pool: Pool) -> None:
    """pool-delete: remove the (empty) target directory. A non-empty one is refused (as is a
    mounted one: an fs pool's file system stays on its device)."""
    path = pool_dir(pool)
    if pool.type is PoolType.FS and fsmount.mounted_source(str(path)) is not None:
        raise Conflict("pool", pool.name, f"cannot delete pool '{pool.name}': '{path}' is mounted")
    try:
        left = sorted(os.listdir(path))
    except FileNotFoundError:
        raise NotFound(
            "pool target", str(path), f"pool '{pool.name}' target '{path}' does not exist"
        ) from None
    except NotADirectoryError:
        _refuse_non_dir(pool, path)
        raise
    except OSError as e:
        raise StorageError(f"cannot delete pool '{pool.name}': {e.strerror}") from e
    if left:
        shown = ", ".join(left[:5]) + (", ..." if len(left) > 5 else "")
        raise Conflict(
            "pool",
            pool.name,
            f"cannot delete pool '{pool.name}': '{path}' still holds {len(left)} "
            f"file(s) ({shown}); delete its volumes first",
        )
    try:
        path.rmdir()
    except OSError as e:
        raise StorageError(f"cannot delete pool '{pool.name}': {e.strerror}") from e
