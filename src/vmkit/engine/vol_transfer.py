"""Bytes in and out of volumes: vol-upload, vol-download (offset, length) and vol-wipe.

Upload is refused while a running domain uses the volume (its QEMU writes the same file), and
when it would end past the volume's capacity (a volume never grows by an upload: vol-resize);
wipe while any domain names it as a disk or another volume uses it as backing file. A download
into a file this call created is removed again when the download fails.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO

from vmkit.engine.context import Context
from vmkit.engine.storage_refs import domain_users, names, remember_format
from vmkit.engine.volumes import (
    describe,
    locked,
    lookup_volume,
    qemu_img,
    refuse_overlays,
    refuse_running_users,
)
from vmkit.errors import InvalidConfig, NotFound, StorageError
from vmkit.model.storage import Volume
from vmkit.state.records import VOLUME
from vmkit.storage import download_volume, upload_volume, wipe_volume
from vmkit.storage.qemuimg import ProgressCallback
from vmkit.storage.volumes import check_not_in_use

WIPE_ALGORITHMS = ("zero",)


def upload(
    ctx: Context,
    vol: str,
    src: BinaryIO,
    pool_key: str | None = None,
    *,
    offset: int = 0,
    length: int | None = None,
    progress: ProgressCallback | None = None,
) -> int:
    """vol-upload from an open binary stream; returns the bytes written. Refused, before anything
    is written, when offset + length (else + the stream's size, when it has one) goes past the
    volume's capacity: libvirt writes on and grows the file (or fails on a block device)."""
    ref = lookup_volume(ctx, vol, pool_key)
    with locked(ctx, ref.path):
        refuse_running_users(ref, domain_users(ctx, ref.path, running_only=True), "upload to")
        capacity = describe(ctx, ref).capacity or 0  # 0: the file's size is the limit
        done = upload_volume(
            ref.pool,
            ref.name,
            src,
            offset=offset,
            length=length,
            capacity=capacity,
            progress=progress,
        )
        ctx.store.log_event(VOLUME, ref.entry.uuid, ref.name, "uploaded", f"{done} bytes")
        return done


def upload_file(
    ctx: Context,
    vol: str,
    file: str,
    pool_key: str | None = None,
    *,
    offset: int = 0,
    length: int | None = None,
    progress: ProgressCallback | None = None,
) -> int:
    """vol-upload from a local file."""
    lookup_volume(ctx, vol, pool_key)  # a missing volume is named before the file
    try:
        src = open(file, "rb")  # noqa: SIM115 - closed below
    except FileNotFoundError:
        raise NotFound("file", file, f"cannot read '{file}': no such file") from None
    except OSError as e:
        raise StorageError(f"cannot read '{file}': {e.strerror}") from e
    with src:
        return upload(ctx, vol, src, pool_key, offset=offset, length=length, progress=progress)


def download(
    ctx: Context,
    vol: str,
    dst: BinaryIO,
    pool_key: str | None = None,
    *,
    offset: int = 0,
    length: int | None = None,
    progress: ProgressCallback | None = None,
) -> int:
    """vol-download into an open binary stream; returns the bytes copied."""
    ref = lookup_volume(ctx, vol, pool_key)
    return download_volume(ref.pool, ref.name, dst, offset=offset, length=length, progress=progress)


def download_file(
    ctx: Context,
    vol: str,
    file: str,
    pool_key: str | None = None,
    *,
    offset: int = 0,
    length: int | None = None,
    progress: ProgressCallback | None = None,
) -> int:
    """vol-download into a local file (created or truncated, as virsh does)."""
    ref = lookup_volume(ctx, vol, pool_key)
    if os.path.realpath(file) == os.path.realpath(ref.path):
        raise InvalidConfig(f"cannot download volume '{ref.name}' onto itself", value=file)
    existed = os.path.lexists(file)
    try:
        dst = open(file, "wb")  # noqa: SIM115 - closed below
    except OSError as e:
        raise StorageError(f"cannot open '{file}' for writing: {e.strerror}") from e
    try:
        with dst:
            return download(
                ctx, vol, dst, pool_key, offset=offset, length=length, progress=progress
            )
    except BaseException:
        if not existed:
            Path(file).unlink(missing_ok=True)
        raise


def wipe(ctx: Context, vol: str, pool_key: str | None = None, *, algorithm: str = "zero") -> Volume:
    """vol-wipe with zeros; a qcow2 (or other image format) stays a valid, empty image."""
    if algorithm not in WIPE_ALGORITHMS:
        raise InvalidConfig(
            f"wipe algorithm '{algorithm}' is not supported (vmkit writes zeros: 'zero')",
            value=algorithm,
        )
    ref = lookup_volume(ctx, vol, pool_key)
    with locked(ctx, ref.path):
        check_not_in_use(ref.name, names(domain_users(ctx, ref.path)), "wipe")
        refuse_overlays(ctx, ref, "wipe")
        fmt = describe(ctx, ref).target_format or "raw"
        wiped = wipe_volume(ref.pool, ref.name, qemu_img(), fmt=fmt)
        remember_format(ctx, ref.entry.uuid, ref.name, fmt)
        ctx.store.log_event(VOLUME, ref.entry.uuid, ref.name, "wiped", ref.entry.name)
        return wiped
