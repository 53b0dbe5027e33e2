"""vol-* on a full disk, through the real CLI (`python -m vmkit`, its own VMKIT_ROOT): a dir pool
on an 8 MiB tmpfs the test mounts (and unmounts, also on failure). vol-create-as, vol-clone and
vol-upload that do not fit fail naming the volume and "No space left on device", leave no
partial file, and change neither vol-list --details nor the store. Also: vol-upload past a
volume's capacity is refused with nothing written (libvirt grows the file)."""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from vmkit_cli import VmkitEnv, small_tmpfs, store_rows, vmkit_env

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("qemu-img") is None, reason="qemu-img is not installed"),
]
MiB = 1 << 20
NO_SPACE = "No space left on device"


@pytest.fixture
def vk() -> Iterator[VmkitEnv]:
    with vmkit_env() as env:  # no guest: nothing here boots
        yield env


@pytest.fixture
def tiny(vk: VmkitEnv) -> Iterator[Path]:
    """Pool 'tiny' on an 8 MiB tmpfs holding data.raw: 5 MiB of random bytes."""
    with small_tmpfs(vk, 8) as mnt:
        target = mnt / "pool"
        vk.ok("pool-define-as", "tiny", "dir", "--target", str(target))
        vk.ok("pool-build", "tiny")
        vk.ok("pool-start", "tiny")
        vk.ok("vol-create-as", "tiny", "data.raw", "5M")
        data = vk.root / "data.bin"
        data.write_bytes(os.urandom(5 * MiB))
        vk.ok("vol-upload", "data.raw", str(data), "--pool", "tiny")
        yield target


def _seen(vk: VmkitEnv, target: Path) -> tuple[str, list[str], dict[str, str], object]:
    """vol-list --details, the pool directory, the files' digests and the store's rows."""
    files = sorted(os.listdir(target))
    digests = {f: hashlib.sha256((target / f).read_bytes()).hexdigest() for f in files}
    return vk.ok("vol-list", "tiny", "--details"), files, digests, store_rows(vk)


def test_create_clone_upload_that_do_not_fit(vk: VmkitEnv, tiny: Path) -> None:
    vk.ok("vol-create-as", "tiny", "sparse.raw", "16M")  # no blocks yet
    big = vk.root / "big.bin"
    big.write_bytes(os.urandom(4 * MiB))  # about 3 MiB are free
    before = _seen(vk, tiny)
    create = "vol-create-as tiny big.raw 16M --allocation 16M"
    vk.fails(1, *create.split(), match=rf"volume 'big\.raw': {NO_SPACE}")
    clone = "vol-clone data.raw copy.raw --pool tiny"
    vk.fails(1, *clone.split(), match=rf"clone volume 'data\.raw' into 'copy\.raw' .*{NO_SPACE}")
    upload = f"vol-upload sparse.raw {big} --pool tiny"
    vk.fails(1, *upload.split(), match=rf"volume 'sparse\.raw': {NO_SPACE} .*nothing was written")
    assert _seen(vk, tiny) == before
    # what fits still works: the pool is not left broken
    vk.ok("vol-upload", "sparse.raw", str(big), "--pool", "tiny", "--length", str(MiB))
    assert "copy.raw" not in os.listdir(tiny)


def test_upload_past_the_capacity_is_refused(vk: VmkitEnv) -> None:
    target = vk.root / "pool"
    vk.ok("pool-define-as", "p", "dir", "--target", str(target))
    vk.ok("pool-build", "p")
    vk.ok("pool-start", "p")
    vk.ok("vol-create-as", "p", "v.raw", "1M")
    vk.ok("vol-create-as", "p", "q.qcow2", "64M", "--format", "qcow2")
    src = vk.root / "src.bin"
    src.write_bytes(b"\x5a" * 4096)
    before = (target / "v.raw").stat().st_size, (target / "q.qcow2").stat().st_size
    rows = store_rows(vk)
    err = vk.fails(2, "vol-upload", "v.raw", str(src), "p", "--offset", "1M")
    assert err == (
        f"error: cannot upload to volume 'v.raw': offset {MiB} + 4096 bytes ends at byte "
        f"{MiB + 4096}, past its capacity of {MiB} bytes (1.00 MiB); nothing was written "
        "(vol-resize it first)\n"
    )
    far = f"vol-upload q.qcow2 {src} p --offset 100G"
    vk.fails(2, *far.split(), match=rf"'q\.qcow2': offset {100 << 30} \+ 4096 .* of {64 * MiB}")
    piped = "vol-upload v.raw - p --offset 2M"
    vk.fails(2, *piped.split(), input="data", match=rf"offset {2 * MiB} is past its capacity")
    assert ((target / "v.raw").stat().st_size, (target / "q.qcow2").stat().st_size) == before
    assert store_rows(vk) == rows
    vk.ok("vol-upload", "v.raw", str(src), "p", "--offset", str(MiB - 4096))  # the last 4 KiB
    assert (target / "v.raw").read_bytes()[-4096:] == src.read_bytes()
