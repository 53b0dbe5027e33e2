"""Bytes in and out of volumes: upload and download (vol-upload / vol-download, with offset and
length) and wipe (vol-wipe, zeros).

Transfers are raw bytes of the volume's file, as libvirt's are (uploading a qcow2 image into a
volume writes that image's bytes). Wipe overwrites the file's data with zeros (holes of a sparse
file already read as zeros and stay holes); a non-raw image (qcow2, ...) is then formatted
again with the same format, virtual size and backing file, so it stays a usable, empty volume
instead of the headerless file libvirt leaves behind. A volume used by a domain is refused for
upload and wipe (`in_use_by` names them).
"""

from __future__ import annotations

import errno
import os
from collections.abc import Sequence
from typing import BinaryIO

from vmkit.errors import InvalidConfig, StorageError
from vmkit.model.storage import Pool, Volume
from vmkit.storage.paths import volume_path
from vmkit.storage.qemuimg import ProgressCallback, QemuImg
from vmkit.storage.volumes import (
    check_not_in_use,
    describe_volume,
    format_options,
    open_volume,
    qemu_format,
)

CHUNK = 1 << 20


def upload_volume(
    pool: Pool,
    name: str,
    src: BinaryIO,
    *,
    offset: int = 0,
    length: int | None = None,
    in_use_by: Sequence[str] = (),
    progress: ProgressCallback | None = None,
) -> int:
    """Write `src` into the volume from byte `offset` (at most `length` bytes); returns the
    number of bytes written. The file is not truncated (as with virsh vol-upload)."""
    _check_range(offset, length)
    check_not_in_use(name, in_use_by, "upload to")
    total = length if length is not None else _remaining(src)
    fd = open_volume(pool, name, os.O_WRONLY)
    try:
        done = 0
        while length is None or done < length:
            want = CHUNK if length is None else min(CHUNK, length - done)
            data = src.read(want)
            if not data:
                break
            _pwrite_all(fd, data, offset + done, name)
            done += len(data)
            _report(progress, done, total)
        os.fsync(fd)
        return done
    except OSError as e:
        raise StorageError(f"cannot upload to volume '{name}': {e.strerror}") from e
    finally:
        os.close(fd)


def download_volume(
    pool: Pool,
    name: str,
    dst: BinaryIO,
    *,
    offset: int = 0,
    length: int | None = None,
    progress: ProgressCallback | None = None,
) -> int:
    """Copy the volume's bytes from `offset` (at most `length` of them) into `dst`; returns the
    number of bytes copied."""
    _check_range(offset, length)
    fd = open_volume(pool, name, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        end = size if length is None else min(size, offset + length)
        total = max(0, end - offset)
        done = 0
        while offset + done < end:
            data = os.pread(fd, min(CHUNK, end - offset - done), offset + done)
            if not data:
                break
            dst.write(data)
            done += len(data)
            _report(progress, done, total)
        dst.flush()
        return done
    except OSError as e:
        raise StorageError(f"cannot download volume '{name}': {e.strerror}") from e
    finally:
        os.close(fd)


def wipe_volume(
    pool: Pool,
    name: str,
    qemu_img: QemuImg,
    *,
    fmt: str | None = None,
    in_use_by: Sequence[str] = (),
) -> Volume:
    """vol-wipe with zeros; a non-raw image is formatted again afterwards (same format, size
    and backing file). Returns the wiped volume."""
    check_not_in_use(name, in_use_by, "wipe")
    before = describe_volume(pool, name, qemu_img, fmt=fmt)
    vfmt = before.target_format or "raw"
    fd = open_volume(pool, name, os.O_RDWR)
    try:
        zero_data(fd)
        os.fsync(fd)
    except OSError as e:
        raise StorageError(f"cannot wipe volume '{name}': {e.strerror}") from e
    finally:
        os.close(fd)
    if vfmt not in ("raw", "iso"):
        _reformat(pool, before, vfmt, qemu_img)
    return describe_volume(pool, name, qemu_img, fmt=vfmt)


def zero_data(fd: int) -> int:
    """Overwrite every data extent of the file with zeros (holes are left alone); returns the
    number of bytes written."""
    size = os.fstat(fd).st_size
    zeros = bytes(CHUNK)
    written = 0
    pos = 0
    while pos < size:
        try:
            start = os.lseek(fd, pos, os.SEEK_DATA)
        except OSError as e:
            if e.errno == errno.ENXIO:  # no data after pos
                break
            raise
        end = min(os.lseek(fd, start, os.SEEK_HOLE), size)
        while start < end:
            n = os.pwrite(fd, zeros[: min(CHUNK, end - start)], start)
            start += n
            written += n
        pos = end
    return written


def _reformat(pool: Pool, vol: Volume, fmt: str, qemu_img: QemuImg) -> None:
    bs = vol.backing_store
    qemu_img.create(
        volume_path(pool, vol.name),
        qemu_format(fmt),
        vol.capacity,
        backing=bs.path if bs else None,
        backing_format=qemu_format(bs.format) if bs and bs.format else None,
        options=format_options(fmt, vol),
    )


def _check_range(offset: int, length: int | None) -> None:
    if offset < 0:
        raise InvalidConfig(f"offset must not be negative, got {offset}", value=offset)
    if length is not None and length < 0:
        raise InvalidConfig(f"length must not be negative, got {length}", value=length)


def _remaining(src: BinaryIO) -> int | None:
    try:
        return os.fstat(src.fileno()).st_size - src.tell()
    except (OSError, ValueError, AttributeError):
        return None


def _pwrite_all(fd: int, data: bytes, pos: int, name: str) -> None:
    view = memoryview(data)
    while view:
        n = os.pwrite(fd, view, pos)
        if n <= 0:
            raise StorageError(f"short write to volume '{name}'")
        view = view[n:]
        pos += n


def _report(progress: ProgressCallback | None, done: int, total: int | None) -> None:
    if progress is not None and total:
        progress(min(100.0, 100.0 * done / total))
