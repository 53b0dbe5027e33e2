"""Pools and volumes on real qemu-img in temporary directories: formats, overlays, clones,
resize, wipe, transfers, imports, snapshots, and faults (disk full on a small tmpfs the test
mounts, missing backing file, bad names) leaving nothing behind."""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from vmkit.errors import CommandFailed, Conflict, InvalidConfig, NotFound, StorageError
from vmkit.model.storage import Pool, Volume, parse_size
from vmkit.storage.pools import build_pool, delete_pool, pool_stats, refresh_pool
from vmkit.storage.qemuimg import QemuImg
from vmkit.storage.transfer import download_volume, upload_volume, wipe_volume
from vmkit.storage.volumes import (
    clone_volume,
    create_volume,
    create_volume_as,
    delete_volume,
    describe_volume,
    import_image,
    resize_volume,
)
from vmkit.xml.storage import parse_volume, render_volume

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("qemu-img") is None, reason="qemu-img is not installed"),
]
MiB = 1 << 20


@pytest.fixture
def img() -> QemuImg:
    return QemuImg()


@pytest.fixture
def pool(tmp_path: Path) -> Pool:
    p = Pool(name="itest", target_path=str(tmp_path / "pool"))
    build_pool(p)
    return p


def _run(*argv: str) -> None:
    subprocess.run(list(argv), check=True, capture_output=True)


@contextlib.contextmanager
def small_fs(parent: Path, size: str) -> Iterator[Path]:
    """A tmpfs of `size` mounted on a directory this test creates; unmounted in finally."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mnt = parent / "small-fs"
    mnt.mkdir()
    _run("mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "vmkit-test", str(mnt))
    try:
        yield mnt
    finally:
        _run("umount", str(mnt))
        mnt.rmdir()


def _raw_bytes(img: QemuImg, path: str | Path, tmp: Path) -> bytes:
    """The guest-visible content of an image (converted to raw)."""
    out = tmp / "content.raw"
    out.unlink(missing_ok=True)
    img.convert(path, out, dst_format="raw")
    return out.read_bytes()


def _volume_with_data(pool: Pool, name: str, data: bytes) -> Volume:
    (Path(pool.target_path) / name).write_bytes(data)
    return Volume(name=name, target_path=f"{pool.target_path}/{name}")


# --- create ----------------------------------------------------------------------------------


def test_create_qcow2_and_raw_with_units(pool: Pool, img: QemuImg) -> None:
    q = create_volume_as(pool, "a.qcow2", parse_size("1G"), img, fmt="qcow2")
    r = create_volume_as(pool, "b.img", parse_size("10MB"), img)
    assert (q.target_format, q.capacity, q.target_compat) == ("qcow2", 1 << 30, "1.1")
    assert (r.target_format, r.capacity) == ("raw", 10_000_000)
    assert r.allocation == 0  # sparse
    assert q.target_permissions is not None and q.target_permissions.mode == 0o600
    assert parse_volume(render_volume(q)) == q


def test_create_from_xml_with_qcow2_features(pool: Pool, img: QemuImg) -> None:
    vol = parse_volume(
        "<volume><name>f.qcow2</name><capacity unit='MiB'>64</capacity><target>"
        "<format type='qcow2'/><compat>1.1</compat><clusterSize unit='KiB'>128</clusterSize>"
        "<features><lazy_refcounts/></features></target></volume>"
    )
    made = create_volume(pool, vol, img, prealloc_metadata=True)
    assert made.target_features_lazy_refcounts
    assert made.target_cluster_size == 128 * 1024
    assert made.allocation and made.allocation > 64 * 1024  # metadata preallocated


def test_raw_allocation(pool: Pool, img: QemuImg) -> None:
    part = create_volume_as(pool, "p.img", 8 * MiB, img, allocation=2 * MiB)
    full = create_volume_as(pool, "f.img", 8 * MiB, img, allocation=8 * MiB)
    assert part.allocation is not None and 2 * MiB <= part.allocation < 8 * MiB
    assert full.allocation is not None and full.allocation >= 8 * MiB


def test_existing_name_is_a_conflict(pool: Pool, img: QemuImg) -> None:
    create_volume_as(pool, "a.img", MiB, img)
    with pytest.raises(Conflict, match="already exists"):
        create_volume_as(pool, "a.img", 2 * MiB, img)
    assert describe_volume(pool, "a.img", img).capacity == MiB


# --- overlays and clones ---------------------------------------------------------------------


def test_overlay_reads_through_its_backing_file(pool: Pool, img: QemuImg, tmp_path: Path) -> None:
    data = os.urandom(MiB)
    _volume_with_data(pool, "base.img", data)
    ov = create_volume_as(pool, "ov.qcow2", None, img, fmt="qcow2", backing="base.img")
    assert ov.backing_store is not None
    assert (ov.backing_store.path, ov.backing_store.format) == (
        f"{pool.target_path}/base.img",
        "raw",
    )
    assert ov.capacity == MiB
    chain = img.info_chain(ov.target_path or "")
    assert [i.format for i in chain] == ["qcow2", "raw"]
    assert _raw_bytes(img, ov.target_path or "", tmp_path) == data


def test_overlay_smaller_than_its_backing_file_is_refused(pool: Pool, img: QemuImg) -> None:
    _volume_with_data(pool, "base.img", bytes(2 * MiB))
    with pytest.raises(InvalidConfig, match=r"capacity 1\.00 MiB .* is smaller than its backing"):
        create_volume_as(pool, "ov.qcow2", MiB, img, fmt="qcow2", backing="base.img")
    assert sorted(os.listdir(pool.target_path)) == ["base.img"]


def test_missing_backing_file(pool: Pool, img: QemuImg, tmp_path: Path) -> None:
    gone = tmp_path / "gone.qcow2"
    with pytest.raises(NotFound) as err:
        create_volume_as(pool, "ov.qcow2", None, img, fmt="qcow2", backing=str(gone))
    assert str(err.value) == f"backing file '{gone}' of volume 'ov.qcow2' does not exist"
    assert os.listdir(pool.target_path) == []


def test_full_clone_with_progress(pool: Pool, img: QemuImg, tmp_path: Path) -> None:
    data = os.urandom(4 * MiB)
    _volume_with_data(pool, "src.img", data)
    seen: list[float] = []
    copy = clone_volume(pool, "src.img", "copy.qcow2", img, fmt="qcow2", progress=seen.append)
    assert copy.target_format == "qcow2"
    assert seen and seen[-1] == 100.0
    assert _raw_bytes(img, copy.target_path or "", tmp_path) == data
    same = clone_volume(pool, "src.img", "same.img", img)
    assert same.target_format == "raw"
    assert Path(same.target_path or "").read_bytes() == data


def test_linked_clone_writes_do_not_touch_the_base(pool: Pool, img: QemuImg) -> None:
    base = create_volume_as(pool, "base.qcow2", 4 * MiB, img, fmt="qcow2")
    before = Path(base.target_path or "").read_bytes()
    linked = clone_volume(pool, "base.qcow2", "linked.qcow2", img, linked=True)
    assert linked.backing_store is not None
    assert linked.backing_store.path == base.target_path
    img.snapshot_create(linked.target_path or "", "s1")  # a write to the overlay
    assert Path(base.target_path or "").read_bytes() == before


def test_clone_into_another_pool(pool: Pool, img: QemuImg, tmp_path: Path) -> None:
    other = Pool(name="other", target_path=str(tmp_path / "other"))
    build_pool(other)
    _volume_with_data(pool, "src.img", b"x" * 4096)
    copy = clone_volume(pool, "src.img", "dst.img", img, dst_pool=other)
    assert copy.target_path == f"{other.target_path}/dst.img"


# --- resize, wipe, delete --------------------------------------------------------------------


def test_resize_grow_and_shrink(pool: Pool, img: QemuImg) -> None:
    create_volume_as(pool, "a.qcow2", 64 * MiB, img, fmt="qcow2")
    assert resize_volume(pool, "a.qcow2", 128 * MiB, img).capacity == 128 * MiB
    with pytest.raises(InvalidConfig, match="without --shrink"):
        resize_volume(pool, "a.qcow2", 32 * MiB, img)
    assert describe_volume(pool, "a.qcow2", img).capacity == 128 * MiB
    assert resize_volume(pool, "a.qcow2", 32 * MiB, img, shrink=True).capacity == 32 * MiB
    create_volume_as(pool, "r.img", 8 * MiB, img)
    assert resize_volume(pool, "r.img", 4 * MiB, img, shrink=True).capacity == 4 * MiB


def test_wipe_raw_and_qcow2(pool: Pool, img: QemuImg, tmp_path: Path) -> None:
    _volume_with_data(pool, "r.img", os.urandom(MiB))
    wipe_volume(pool, "r.img", img)
    assert Path(pool.target_path, "r.img").read_bytes() == bytes(MiB)
    q = clone_volume(pool, "r.img", "q.qcow2", img, fmt="qcow2")
    upload_volume(pool, "r.img", io.BytesIO(os.urandom(MiB)))
    q = clone_volume(pool, "r.img", "q2.qcow2", img, fmt="qcow2")
    wiped = wipe_volume(pool, "q2.qcow2", img)
    assert (wiped.target_format, wiped.capacity) == ("qcow2", q.capacity)
    assert _raw_bytes(img, wiped.target_path or "", tmp_path) == bytes(MiB)
    assert img.check(wiped.target_path or "").clean


def test_delete_in_use_then_free(pool: Pool, img: QemuImg) -> None:
    create_volume_as(pool, "a.img", MiB, img)
    with pytest.raises(Conflict, match="in use by domain 'web01'"):
        delete_volume(pool, "a.img", in_use_by=["web01"])
    delete_volume(pool, "a.img")
    assert os.listdir(pool.target_path) == []
    delete_pool(pool)


# --- transfers and imports -------------------------------------------------------------------


def test_upload_download_round_trip(pool: Pool, img: QemuImg, tmp_path: Path) -> None:
    create_volume_as(pool, "a.img", 4 * MiB, img)
    src = tmp_path / "in.bin"
    src.write_bytes(os.urandom(3 * MiB + 123))
    with src.open("rb") as f:
        assert upload_volume(pool, "a.img", f) == 3 * MiB + 123
    dst = tmp_path / "out.bin"
    with dst.open("wb") as f:
        download_volume(pool, "a.img", f, length=3 * MiB + 123)
    assert dst.read_bytes() == src.read_bytes()
    part = io.BytesIO()
    download_volume(pool, "a.img", part, offset=MiB, length=10)
    assert part.getvalue() == src.read_bytes()[MiB : MiB + 10]


@pytest.mark.parametrize("fmt", ["vmdk", "vdi", "qcow2", "raw"])
def test_import(pool: Pool, img: QemuImg, tmp_path: Path, fmt: str) -> None:
    data = os.urandom(2 * MiB)
    raw = tmp_path / "orig.raw"
    raw.write_bytes(data)
    foreign = tmp_path / f"disk.{fmt}"
    img.convert(raw, foreign, src_format="raw", dst_format=fmt)
    vol = import_image(
        pool, foreign, f"imported-{fmt}.qcow2", img, src_format="raw" if fmt == "raw" else None
    )
    assert vol.target_format == "qcow2"
    assert _raw_bytes(img, vol.target_path or "", tmp_path) == data


def test_import_of_a_missing_image(pool: Pool, img: QemuImg, tmp_path: Path) -> None:
    with pytest.raises(NotFound, match=r"image to import '.*/nope\.vmdk' does not exist"):
        import_image(pool, tmp_path / "nope.vmdk", "x.qcow2", img)


# --- refresh, snapshots, check ---------------------------------------------------------------


def test_refresh_sees_every_format(pool: Pool, img: QemuImg) -> None:
    create_volume_as(pool, "a.qcow2", MiB, img, fmt="qcow2")
    create_volume_as(pool, "b.vdi", MiB, img, fmt="vdi")
    create_volume_as(pool, "c.img", MiB, img)
    create_volume_as(pool, "d.vmdk", MiB, img, fmt="vmdk")
    found = refresh_pool(pool, img)
    assert [(v.name, v.target_format) for v in found.volumes] == [
        ("a.qcow2", "qcow2"),
        ("b.vdi", "vdi"),
        ("c.img", "raw"),
        ("d.vmdk", "vmdk"),
    ]
    assert found.skipped == []
    stats = pool_stats(pool)
    assert stats.capacity > 0


def test_internal_snapshots(pool: Pool, img: QemuImg) -> None:
    vol = create_volume_as(pool, "s.qcow2", 4 * MiB, img, fmt="qcow2")
    path = vol.target_path or ""
    img.snapshot_create(path, "before upgrade")
    img.snapshot_create(path, "after")
    assert [s.name for s in img.snapshot_list(path)] == ["before upgrade", "after"]
    img.snapshot_apply(path, "before upgrade")
    img.snapshot_delete(path, "after")
    assert [s.name for s in img.snapshot_list(path)] == ["before upgrade"]
    with pytest.raises(CommandFailed) as err:
        img.snapshot_delete(path, "no-such")
    assert err.value.rc != 0 and "no-such" in err.value.stderr


def test_check(pool: Pool, img: QemuImg) -> None:
    q = create_volume_as(pool, "q.qcow2", MiB, img, fmt="qcow2")
    r = create_volume_as(pool, "r.img", MiB, img)
    assert img.check(q.target_path or "").clean
    assert not img.check(r.target_path or "").supported


def test_a_corrupt_image_is_a_command_failure(pool: Pool, img: QemuImg) -> None:
    path = Path(pool.target_path) / "bad.qcow2"
    path.write_bytes(b"QFI\xfb" + b"\xff" * 508)
    with pytest.raises(CommandFailed) as err:
        img.info(path, fmt="qcow2")
    assert err.value.argv[:2] == ["qemu-img", "info"]
    assert err.value.rc == 1 and err.value.stderr


# --- faults ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["a/b", "../escape", "..", "a\x00b"])
def test_bad_names_are_refused(pool: Pool, img: QemuImg, name: str, tmp_path: Path) -> None:
    with pytest.raises(InvalidConfig, match="volume name"):
        create_volume_as(pool, name, MiB, img)
    with pytest.raises(InvalidConfig, match="volume name"):
        import_image(pool, __file__, name, img, src_format="raw")
    assert os.listdir(pool.target_path) == []
    assert sorted(os.listdir(tmp_path)) == ["pool"]


def test_disk_full_during_create_leaves_nothing(tmp_path: Path, img: QemuImg) -> None:
    with small_fs(tmp_path, "1m") as mnt:
        pool = Pool(name="tiny", target_path=str(mnt))
        with pytest.raises(StorageError, match="No space left on device"):
            create_volume_as(pool, "big.img", 64 * MiB, img, allocation=64 * MiB)
        with pytest.raises(CommandFailed, match="No space left on device"):
            create_volume_as(pool, "big.qcow2", 100 << 30, img, fmt="qcow2", prealloc_metadata=True)
        with pytest.raises(StorageError, match="No space left on device"):
            create_volume_as(pool, "part.img", 64 * MiB, img, allocation=32 * MiB)
        assert os.listdir(mnt) == []


def test_disk_full_during_clone_and_import_leaves_nothing(tmp_path: Path, img: QemuImg) -> None:
    src_pool = Pool(name="src", target_path=str(tmp_path / "src"))
    build_pool(src_pool)
    _volume_with_data(src_pool, "data.img", os.urandom(8 * MiB))
    with small_fs(tmp_path, "2m") as mnt:
        pool = Pool(name="tiny", target_path=str(mnt))
        with pytest.raises(CommandFailed, match="No space left on device"):
            clone_volume(src_pool, "data.img", "copy.img", img, dst_pool=pool)
        seen: list[float] = []
        with pytest.raises(CommandFailed):
            import_image(
                pool, f"{src_pool.target_path}/data.img", "imp.qcow2", img, progress=seen.append
            )
        assert os.listdir(mnt) == []
    assert sorted(os.listdir(src_pool.target_path)) == ["data.img"]


def test_import_of_a_probed_image_with_a_backing_file_needs_its_format(
    pool: Pool, img: QemuImg, tmp_path: Path
) -> None:
    base = tmp_path / "base.qcow2"
    img.create(base, "qcow2", MiB)
    top = tmp_path / "top.qcow2"
    img.create(top, "qcow2", None, backing=base, backing_format="qcow2")
    with pytest.raises(InvalidConfig, match="name its format to import it with its backing"):
        import_image(pool, top, "flat.qcow2", img)
    assert os.listdir(pool.target_path) == []
    flat = import_image(pool, top, "flat.qcow2", img, src_format="qcow2")
    assert flat.backing_store is None and flat.capacity == MiB
