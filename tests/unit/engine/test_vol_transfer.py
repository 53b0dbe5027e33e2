"""vol-upload's limits (engine/vol_transfer.py over storage/transfer.py, real qemu-img, files under
tmp_path): an upload ending past the volume's capacity is refused before a byte is written (a
volume never grows by an upload), and a full disk, met before writing or by the reserve, leaves
the volume as it was. The full file system itself is faked here (fallocate, statvfs); the
integration test tests/integration/test_storage_disk_full.py fills a real one."""

from __future__ import annotations

import errno
import hashlib
import io
import os
import shutil
from pathlib import Path

import pytest

from vmkit.engine import vol_transfer, volumes
from vmkit.engine.context import Context
from vmkit.errors import InvalidConfig, StorageError
from vmkit.storage import transfer

pytestmark = pytest.mark.skipif(shutil.which("qemu-img") is None, reason="needs qemu-img")
KiB = 1 << 10
MiB = 1 << 20


class Pipe(io.RawIOBase):
    """A stream of unknown size, as a pipe on stdin is."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buf: memoryview) -> int:  # type: ignore[override]
        return self._data.readinto(buf)


def _create(ctx: Context, name: str, size: str, fmt: str = "raw") -> Path:
    volumes.create_as(ctx, "p", volumes.CreateArgs(name=name, capacity=size, fmt=fmt))
    return Path(volumes.path_of(ctx, name, "p"))


def _state(path: Path) -> tuple[int, int, str]:
    """(size, allocated blocks, digest) of a volume's file."""
    st = path.stat()
    return st.st_size, st.st_blocks, hashlib.sha256(path.read_bytes()).hexdigest()


def _events(ctx: Context) -> int:
    return len(list(ctx.store.events()))


def test_upload_past_the_capacity_is_refused_and_writes_nothing(
    ctx: Context, pool: Path, tmp_path: Path
) -> None:
    vol = _create(ctx, "v.raw", "1M")
    src = tmp_path / "in.bin"
    src.write_bytes(b"\xab" * (4 * KiB))
    before, events = _state(vol), _events(ctx)
    with pytest.raises(InvalidConfig) as err:
        vol_transfer.upload_file(ctx, "v.raw", str(src), "p", offset=MiB - 100)
    assert str(err.value) == (
        f"cannot upload to volume 'v.raw': offset {MiB - 100} + {4 * KiB} bytes ends at byte "
        f"{MiB - 100 + 4 * KiB}, past its capacity of {MiB} bytes (1.00 MiB); nothing was "
        "written (vol-resize it first)"
    )
    assert err.value.exit_code == 2
    # --length counts even when the data is shorter; the offset alone too (no data at all)
    with pytest.raises(InvalidConfig, match=rf"offset 0 \+ {MiB + 1} bytes .* capacity of {MiB}"):
        vol_transfer.upload_file(ctx, "v.raw", str(src), "p", length=MiB + 1)
    with pytest.raises(InvalidConfig, match=rf"offset {5 * MiB} \+ 0 bytes"):
        vol_transfer.upload(ctx, "v.raw", io.BytesIO(b""), "p", offset=5 * MiB)
    with pytest.raises(InvalidConfig, match=rf"'v.raw': offset {MiB + 1} is past its capacity"):
        vol_transfer.upload(ctx, "v.raw", Pipe(b"x"), "p", offset=MiB + 1)
    assert (_state(vol), _events(ctx)) == (before, events)
    # up to the last byte is fine
    assert vol_transfer.upload_file(ctx, "v.raw", str(src), "p", offset=MiB - 4 * KiB) == 4 * KiB
    assert vol.stat().st_size == MiB
    assert vol.read_bytes()[-4 * KiB :] == src.read_bytes()


def test_a_huge_offset_on_a_qcow2_makes_no_sparse_giant(ctx: Context, pool: Path) -> None:
    vol = _create(ctx, "q.qcow2", "64M", fmt="qcow2")
    before = _state(vol)
    with pytest.raises(InvalidConfig, match=rf"'q.qcow2': offset {100 << 30} \+ 3 bytes .*"):
        vol_transfer.upload(ctx, "q.qcow2", io.BytesIO(b"abc"), "p", offset=100 << 30)
    assert _state(vol) == before
    # below the capacity, past the (small) file: allowed, the file grows as the data says
    assert vol_transfer.upload(ctx, "q.qcow2", io.BytesIO(b"abc"), "p", offset=MiB) == 3
    assert vol.stat().st_size == MiB + 3


def test_a_stream_longer_than_the_room_stops_at_the_end(ctx: Context, pool: Path) -> None:
    vol = _create(ctx, "s.raw", "64K")
    with pytest.raises(InvalidConfig, match=r"'s.raw': the data goes on past its end at byte "):
        vol_transfer.upload(ctx, "s.raw", Pipe(b"\x01" * (80 * KiB)), "p", offset=16 * KiB)
    assert vol.stat().st_size == 64 * KiB  # never longer than its capacity
    assert vol_transfer.upload(ctx, "s.raw", Pipe(b"\x02" * (48 * KiB)), "p", offset=16 * KiB) == (
        48 * KiB
    )
    assert vol.read_bytes() == bytes(16 * KiB) + b"\x02" * (48 * KiB)


def test_full_disk_at_the_reserve_leaves_the_volume_as_it_was(
    ctx: Context, pool: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    vol = _create(ctx, "f.raw", "4M")
    src = tmp_path / "in.bin"
    src.write_bytes(os.urandom(2 * MiB))
    before, events = _state(vol), _events(ctx)

    def full(fd: int, offset: int, length: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(transfer.os, "posix_fallocate", full)
    with pytest.raises(StorageError) as err:
        vol_transfer.upload_file(ctx, "f.raw", str(src), "p")
    assert str(err.value) == (
        "cannot upload to volume 'f.raw': No space left on device; nothing was written"
    )
    assert (_state(vol), _events(ctx)) == (before, events)


def test_full_disk_seen_before_writing(
    ctx: Context, pool: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    vol = _create(ctx, "g.raw", "4M")
    vol_transfer.upload(ctx, "g.raw", io.BytesIO(b"\x01" * MiB), "p")  # 1 MiB is allocated
    src = tmp_path / "in.bin"
    src.write_bytes(b"\x02" * (2 * MiB))
    before = _state(vol)
    real = os.statvfs(vol)
    tiny = os.statvfs_result((real.f_bsize, 4096, 1000, 64, 64, *real[5:]))  # 256 KiB free
    reserved: list[int] = []
    monkeypatch.setattr(transfer.os, "fstatvfs", lambda fd: tiny)
    monkeypatch.setattr(transfer.os, "posix_fallocate", lambda fd, o, n: reserved.append(n))
    with pytest.raises(StorageError) as err:
        vol_transfer.upload_file(ctx, "g.raw", str(src), "p")  # 1 MiB of it is a hole
    assert str(err.value) == (
        "cannot upload to volume 'g.raw': No space left on device (it needs 1.00 MiB more, "
        "pool 'p' has 256.00 KiB free); nothing was written"
    )
    assert (_state(vol), reserved) == (before, [])
    # overwriting allocated data needs no space
    assert vol_transfer.upload(ctx, "g.raw", io.BytesIO(b"\x03" * MiB), "p") == MiB
    assert reserved == [MiB]


def test_full_disk_in_a_stream_keeps_the_size(
    ctx: Context, pool: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    vol = _create(ctx, "t.qcow2", "16M", fmt="qcow2")
    size = vol.stat().st_size
    real = os.posix_fallocate
    calls: list[int] = []

    def second_fails(fd: int, offset: int, length: int) -> None:
        calls.append(offset)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(fd, offset, length)

    monkeypatch.setattr(transfer.os, "posix_fallocate", second_fails)
    with pytest.raises(StorageError, match=rf"No space left on device; its first {MiB} bytes"):
        vol_transfer.upload(ctx, "t.qcow2", Pipe(b"\x04" * (3 * MiB)), "p", offset=size)
    assert vol.stat().st_size == size


def test_a_file_system_without_fallocate_still_uploads(
    ctx: Context, pool: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    vol = _create(ctx, "n.raw", "1M")

    def unsupported(fd: int, offset: int, length: int) -> None:
        raise OSError(errno.EOPNOTSUPP, os.strerror(errno.EOPNOTSUPP))

    monkeypatch.setattr(transfer.os, "posix_fallocate", unsupported)
    assert vol_transfer.upload(ctx, "n.raw", io.BytesIO(b"hello"), "p", offset=10) == 5
    assert vol.read_bytes()[:15] == bytes(10) + b"hello"


def test_a_short_source_with_length_does_not_grow_the_file(ctx: Context, pool: Path) -> None:
    vol = _create(ctx, "l.qcow2", "16M", fmt="qcow2")
    size = vol.stat().st_size
    done = vol_transfer.upload(ctx, "l.qcow2", Pipe(b"abc"), "p", offset=size, length=MiB)
    assert done == 3 and vol.stat().st_size == size + 3  # the reserve for --length is undone


def test_holes_in_counts_holes_and_the_tail(tmp_path: Path) -> None:
    path = tmp_path / "sparse"
    with path.open("wb") as f:
        f.truncate(4 * MiB)
        f.seek(MiB)
        f.write(b"\x01" * MiB)
    fd = os.open(path, os.O_RDONLY)
    try:
        assert transfer.holes_in(fd, 0, 4 * MiB) == 3 * MiB
        assert transfer.holes_in(fd, MiB, 2 * MiB) == 0
        assert transfer.holes_in(fd, MiB + 10, 6 * MiB) == 4 * MiB  # 2 MiB hole + 2 past the end
        assert transfer.holes_in(fd, 5 * MiB, 5 * MiB) == 0
    finally:
        os.close(fd)


def test_remaining_knows_files_and_memory_but_not_pipes(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"x" * 100)
    with path.open("rb") as f:
        f.read(30)
        assert transfer._remaining(f) == 70
    assert transfer._remaining(io.BytesIO(b"abcd")) == 4
    r, w = os.pipe()
    try:
        with os.fdopen(r, "rb", closefd=False) as pipe:
            assert transfer._remaining(pipe) is None
    finally:
        os.close(r)
        os.close(w)
    assert transfer._remaining(Pipe(b"abc")) is None  # type: ignore[arg-type]
