"""Bytes in and out of volumes: upload and download (vol-upload / vol-download, with offset and
length) and wipe (vol-wipe, zeros).

Transfers are raw bytes of the volume's file, as libvirt's are (uploading a qcow2 image into a
volume writes that image's bytes). Wipe overwrites the file's data with zeros (holes of a sparse
file already read as zeros and stay holes); a non-raw image (qcow2, ...) is then formatted
again with the same format, virtual size and backing file, so it stays a usable, empty volume
instead of the headerless file libvirt leaves behind. A volume used by a domain is refused for
upload and wipe (`in_use_by` names them). An upload never ends past the capacity it is given
(libvirt's grows the file), and a full disk is met before its first byte is written.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Iterator, Sequence
from typing import BinaryIO

from vmkit.errors import InvalidConfig, StorageError
from vmkit.model.storage import Pool, Volume, format_size
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
    capacity: int | None = None,
    in_use_by: Sequence[str] = (),
    progress: ProgressCallback | None = None,
) -> int:
    """Write `src` into the volume from byte `offset` (at most `length` bytes); returns the
    number of bytes written. The file is not truncated (as with virsh vol-upload).

    With `capacity`, an upload ending past it (offset + length, else + the size of `src`) is
    refused before anything is written; past the file's size counts only where the file is
    smaller than `capacity` (a qcow2 volume). An upload whose holes to fill need more space than
    the file system has free is refused before writing too, and the range is reserved
    (fallocate) before its first byte is written, so a full disk leaves the volume as it was.
    Only a stream of unknown size (a pipe) is reserved chunk by chunk: what came before a
    failure stays written. A failure never leaves the file longer than it was."""
    _check_range(offset, length)
    check_not_in_use(name, in_use_by, "upload to")
    size = _remaining(src)
    expect = size if length is None else length if size is None else min(length, size)
    fd = open_volume(pool, name, os.O_RDWR)  # RDWR: glibc's fallocate fallback reads
    try:
        room = _room(fd, name, offset, size if length is None else length, capacity)
        return _write_in(fd, pool, name, src, offset, expect, room, progress)
    finally:
        os.close(fd)


def _room(fd: int, name: str, offset: int, count: int | None, capacity: int | None) -> int | None:
    """How many bytes may be written from `offset` (None: no limit); raises if `count` bytes
    (when known) or even the offset go past the volume's end."""
    if capacity is None:
        return None
    file_size = os.fstat(fd).st_size
    limit = max(capacity, file_size)
    if offset > limit or offset + (count or 0) > limit:
        if count is None:
            span = f"offset {offset} is"
        else:
            span = f"offset {offset} + {count} bytes ends at byte {offset + count},"
        file_note = f" (its file: {file_size} bytes)" if file_size > capacity else ""
        raise InvalidConfig(
            f"cannot upload to volume '{name}': {span} past its capacity of {capacity} bytes "
            f"({format_size(capacity)}){file_note}; nothing was written (vol-resize it first)",
            value=offset,
        )
    return limit - offset


def _write_in(
    fd: int,
    pool: Pool,
    name: str,
    src: BinaryIO,
    offset: int,
    expect: int | None,
    room: int | None,
    progress: ProgressCallback | None,
) -> int:
    size = os.fstat(fd).st_size
    want = expect if expect is not None else room  # None: to the end of `src`
    done = 0
    try:
        if expect:
            _check_space(fd, pool, name, offset, expect)
            _reserve(fd, offset, expect)
        while want is None or done < want:
            data = src.read(CHUNK if want is None else min(CHUNK, want - done))
            if not data:
                break
            if expect is None:
                _reserve(fd, offset + done, len(data))
            _pwrite_all(fd, data, offset + done, name)
            done += len(data)
            _report(progress, done, expect)
        if expect is None and room is not None and done == room and src.read(1):
            raise InvalidConfig(
                f"cannot upload to volume '{name}': the data goes on past its end at byte "
                f"{offset + room}{_written(done)}",
                value=offset,
            )
        _shrink_to(fd, max(size, offset + done))  # a reserve the data did not fill
        os.fsync(fd)
        return done
    except OSError as e:
        _shrink_to(fd, size)
        raise StorageError(f"cannot upload to volume '{name}': {e.strerror}{_written(done)}") from e


def _written(done: int) -> str:
    return f"; its first {done} bytes were written" if done else "; nothing was written"


def _check_space(fd: int, pool: Pool, name: str, offset: int, count: int) -> None:
    """Refuse (before writing) an upload whose holes to fill need more than the free space."""
    need = holes_in(fd, offset, offset + count)
    if not need:
        return
    sv = os.fstatvfs(fd)
    free = (sv.f_bfree if os.geteuid() == 0 else sv.f_bavail) * sv.f_frsize
    if need > free:
        raise StorageError(
            f"cannot upload to volume '{name}': {os.strerror(errno.ENOSPC)} (it needs "
            f"{format_size(need)} more, pool '{pool.name}' has {format_size(free)} free); "
            "nothing was written"
        )


def _reserve(fd: int, offset: int, count: int) -> None:
    """Allocate [offset, offset + count) before writing it, so a full disk fails first."""
    try:
        os.posix_fallocate(fd, offset, count)
    except OSError as e:
        if e.errno not in (errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
            raise  # the writes would meet the same error: ENOSPC, EDQUOT, EFBIG, EIO


def holes_in(fd: int, start: int, end: int) -> int:
    """Bytes of [start, end) that are not allocated: holes, and anything past the file's end."""
    return (end - start) - sum(b - a for a, b in data_extents(fd, start, end))


def data_extents(fd: int, start: int, end: int) -> Iterator[tuple[int, int]]:
    """The (begin, end) ranges of [start, end) that hold data (not holes), in order."""
    end = min(end, os.fstat(fd).st_size)
    pos = start
    while pos < end:
        try:
            begin = os.lseek(fd, pos, os.SEEK_DATA)
        except OSError as e:
            if e.errno == errno.ENXIO:  # no data after pos
                return
            raise
        if begin >= end:
            return
        pos = min(os.lseek(fd, begin, os.SEEK_HOLE), end)
        yield begin, pos


def _shrink_to(fd: int, size: int) -> None:
    """Cut the file back to `size` bytes if it grew past them."""
    with contextlib.suppress(OSError):
        if os.fstat(fd).st_size > size:
            os.ftruncate(fd, size)


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
    zeros = bytes(CHUNK)
    written = 0
    for start, end in list(data_extents(fd, 0, os.fstat(fd).st_size)):
        while start < end:
            n = os.pwrite(fd, zeros[: min(CHUNK, end - start)], start)
            start += n
            written += n
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
    """Bytes left in `src`: a regular file's or an in-memory stream's; None for a pipe, a
    terminal or a device (read to their end)."""
    try:
        st = os.fstat(src.fileno())
    except (OSError, ValueError, AttributeError):  # no fd: an in-memory stream
        st = None
    try:
        if st is not None:
            return max(0, st.st_size - src.tell()) if stat.S_ISREG(st.st_mode) else None
        if src.seekable():
            here = src.tell()
            end = src.seek(0, os.SEEK_END)
            src.seek(here)
            return max(0, end - here)
    except (OSError, ValueError):
        pass
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
