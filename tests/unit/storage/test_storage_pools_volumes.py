"""Pools and volumes on a temporary directory with a fake qemu-img: path safety, refusals with
exact messages, nothing left behind on failure, transfers and wipe on plain files."""

from __future__ import annotations

import io
import json
import os
import stat
from pathlib import Path

import pytest
from storage_fakes import FakeRunner

from vmkit.errors import CommandFailed, Conflict, InvalidConfig, NotFound, StorageError
from vmkit.model.storage import BackingStore, Pool, PoolSource, PoolType, Volume
from vmkit.storage.paths import volume_path
from vmkit.storage.pools import (
    build_pool,
    check_pool_target,
    deactivate_pool,
    default_pool,
    delete_pool,
    pool_stats,
    refresh_pool,
    with_stats,
)
from vmkit.storage.qemuimg import Completed, QemuImg
from vmkit.storage.transfer import download_volume, upload_volume, wipe_volume, zero_data
from vmkit.storage.volumes import (
    backing_users,
    create_volume,
    create_volume_as,
    delete_volume,
    libvirt_format,
    qemu_format,
    resize_volume,
)


def _info_handler(argv: list[str]) -> Completed:
    """qemu-img info answered from the file itself: format raw, virtual size = file size."""
    if argv[1] == "info":
        path = argv[-1]
        data = {"filename": path, "format": "raw", "virtual-size": os.path.getsize(path)}
        return Completed(tuple(argv), 0, json.dumps(data), "")
    return Completed(tuple(argv), 0, "", "")


@pytest.fixture
def img() -> QemuImg:
    return QemuImg(FakeRunner(_info_handler))


@pytest.fixture
def pool(tmp_path: Path) -> Pool:
    p = Pool(name="test", target_path=str(tmp_path / "pool"))
    build_pool(p)
    return p


def _runner(img: QemuImg) -> FakeRunner:
    assert isinstance(img.runner, FakeRunner)
    return img.runner


# --- pools -----------------------------------------------------------------------------------


def test_default_pool_lives_under_the_data_dir(tmp_path: Path) -> None:
    pool = default_pool(tmp_path)
    assert (pool.name, pool.target_path, pool.type) == (
        "default",
        str(tmp_path / "images"),
        PoolType.DIR,
    )


def test_build_makes_the_directory_with_libvirts_mode(pool: Pool) -> None:
    st = os.stat(pool.target_path)
    assert stat.S_ISDIR(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o711
    build_pool(pool)  # again: fine


def test_build_keeps_the_mode_of_an_existing_directory(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir(mode=0o755)
    build_pool(Pool(name="d", target_path=str(tmp_path / "d")))
    assert stat.S_IMODE(os.stat(tmp_path / "d").st_mode) == 0o755


def test_build_refuses_a_path_that_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    with pytest.raises(InvalidConfig) as err:
        build_pool(Pool(name="p", target_path=str(tmp_path / "f")))
    assert str(err.value) == (
        f"pool 'p' target path '{tmp_path}/f' exists and is a file; a dir pool needs a "
        "directory (/pool/target/path)"
    )


def test_start_check_on_a_missing_target(tmp_path: Path) -> None:
    with pytest.raises(NotFound) as err:
        check_pool_target(Pool(name="p", target_path=str(tmp_path / "nope")))
    assert str(err.value) == (
        f"cannot start pool 'p': target directory '{tmp_path}/nope' does not exist "
        "(pool-build creates it)"
    )


def _fs_pool(tmp_path: Path, device: Path) -> Pool:
    source = PoolSource(device_path=str(device), format_type="ext4")
    return Pool(name="f", target_path=str(tmp_path / "mnt"), type=PoolType.FS, source=source)


def test_fs_pool_build_needs_its_device(tmp_path: Path) -> None:
    fs = _fs_pool(tmp_path, tmp_path / "no-such.img")
    with pytest.raises(NotFound, match=r"source device .*no-such\.img' does not exist"):
        build_pool(fs, overwrite=False)
    assert not (tmp_path / "mnt").exists()  # refused before anything was made
    with pytest.raises(InvalidConfig, match="neither a block device nor an image file"):
        build_pool(_fs_pool(tmp_path, tmp_path), overwrite=True)


def test_fs_pool_without_its_mount_is_not_usable(tmp_path: Path) -> None:
    image = tmp_path / "fs.img"
    image.write_bytes(b"")
    fs = _fs_pool(tmp_path, image)
    build_pool(fs)  # no flag: only the directory
    assert (tmp_path / "mnt").is_dir()
    with pytest.raises(StorageError, match="is not mounted on"):
        check_pool_target(fs)
    deactivate_pool(fs)  # nothing mounted: nothing to do


def test_stats_come_from_statvfs(pool: Pool) -> None:
    st = pool_stats(pool)
    sv = os.statvfs(pool.target_path)
    assert st.capacity == sv.f_blocks * sv.f_frsize
    assert 0 <= st.available <= st.capacity and 0 <= st.allocation <= st.capacity
    assert with_stats(pool).capacity == st.capacity


def test_delete_refuses_a_pool_that_still_holds_files(pool: Pool) -> None:
    (Path(pool.target_path) / "a.img").write_bytes(b"")
    with pytest.raises(Conflict) as err:
        delete_pool(pool)
    assert str(err.value) == (
        f"cannot delete pool 'test': '{pool.target_path}' still holds 1 file(s) (a.img); "
        "delete its volumes first"
    )
    os.unlink(Path(pool.target_path) / "a.img")
    delete_pool(pool)
    assert not os.path.exists(pool.target_path)


def test_refresh_lists_files_and_says_what_it_skipped(
    pool: Pool, img: QemuImg, tmp_path: Path
) -> None:
    d = Path(pool.target_path)
    (d / "b.img").write_bytes(b"x" * 4096)
    (d / "a.img").write_bytes(b"")
    (d / "subdir").mkdir()
    (tmp_path / "outside").write_bytes(b"")
    (d / "link-out").symlink_to(tmp_path / "outside")
    result = refresh_pool(pool, img, formats={"a.img": "raw"})
    assert [(v.name, v.capacity, v.target_format) for v in result.volumes] == [
        ("a.img", 0, "raw"),
        ("b.img", 4096, "raw"),
    ]
    skipped = dict(result.skipped)
    assert skipped["subdir"] == "not a regular file"
    assert "outside pool 'test'" in skipped["link-out"]
    info_calls = [c for c in _runner(img).calls if c[1] == "info"]
    assert info_calls[0][3:5] == ["-f", "raw"]  # a known format is not probed
    assert "-f" not in info_calls[1]


# --- names and paths -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("a/b", "volume name 'a/b' must not contain '/'"),
        ("../x", "volume name '../x' must not contain '/'"),
        ("..", "volume name '..' is not allowed"),
        ("a\x00b", "volume name 'a\\x00b' must not contain a NUL character"),
        ("", "volume name must not be empty"),
    ],
)
def test_bad_names_never_reach_the_file_system(
    pool: Pool, img: QemuImg, name: str, message: str
) -> None:
    with pytest.raises(InvalidConfig) as err:
        create_volume_as(pool, name, 1 << 20, img)
    assert str(err.value) == f"{message} (/volume/name)"
    with pytest.raises(InvalidConfig):
        delete_volume(pool, name)
    assert os.listdir(pool.target_path) == []
    assert _runner(img).calls == []


def test_a_symlink_out_of_the_pool_is_refused(pool: Pool, tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("keep")
    (Path(pool.target_path) / "evil.img").symlink_to(secret)
    with pytest.raises(InvalidConfig) as err:
        volume_path(pool, "evil.img")
    assert str(err.value).startswith(
        f"volume 'evil.img' resolves to '{secret}', which is outside pool 'test'"
    )
    with pytest.raises(InvalidConfig):
        upload_volume(pool, "evil.img", io.BytesIO(b"overwritten"))
    with pytest.raises(InvalidConfig):
        delete_volume(pool, "evil.img")
    assert secret.read_text() == "keep"


def test_format_names() -> None:
    assert [qemu_format(f) for f in ("raw", "iso", "qcow2", "vhd", "ploop")] == [
        "raw",
        "raw",
        "qcow2",
        "vhdx",
        "parallels",
    ]
    assert [libvirt_format(f) for f in ("vmdk", "vhdx", "parallels", "host_device")] == [
        "vmdk",
        "vhd",
        "ploop",
        "unknown",
    ]


# --- create ----------------------------------------------------------------------------------


def test_create_runs_qemu_img_on_a_reserved_file(pool: Pool, img: QemuImg) -> None:
    create_volume_as(pool, "a.qcow2", 1 << 20, img, fmt="qcow2")
    path = f"{pool.target_path}/a.qcow2"
    assert _runner(img).calls[0] == ["qemu-img", "create", "-q", "-f", "qcow2", path, "1048576"]
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_raw_is_made_exactly_without_qemu_img(pool: Pool, img: QemuImg) -> None:
    vol = create_volume_as(pool, "a.img", 10_000_000, img, allocation=4096)
    assert vol.target_path == f"{pool.target_path}/a.img"
    assert os.path.getsize(vol.target_path) == 10_000_000
    assert os.stat(vol.target_path).st_blocks * 512 >= 4096
    assert [c[1] for c in _runner(img).calls] == ["info"]


def test_create_never_overwrites(pool: Pool, img: QemuImg) -> None:
    (Path(pool.target_path) / "a.img").write_bytes(b"precious")
    with pytest.raises(Conflict) as err:
        create_volume_as(pool, "a.img", 1 << 20, img)
    assert str(err.value) == "volume 'a.img' already exists in pool 'test'"
    assert (Path(pool.target_path) / "a.img").read_bytes() == b"precious"


def test_failed_create_leaves_nothing(pool: Pool) -> None:
    def fail(argv: list[str]) -> Completed:
        Path(argv[-2]).write_bytes(b"half")
        return Completed(tuple(argv), 1, "", "qemu-img: error while writing: No space left")

    with pytest.raises(CommandFailed, match="No space left"):
        create_volume_as(pool, "a.qcow2", 1 << 30, QemuImg(FakeRunner(fail)), fmt="qcow2")
    assert os.listdir(pool.target_path) == []


def test_missing_backing_file_is_a_clear_error(pool: Pool, img: QemuImg) -> None:
    with pytest.raises(NotFound) as err:
        create_volume_as(pool, "ov.qcow2", None, img, fmt="qcow2", backing="/nonexistent.qcow2")
    assert str(err.value) == (
        "backing file '/nonexistent.qcow2' of volume 'ov.qcow2' does not exist"
    )
    assert os.listdir(pool.target_path) == []


def test_backing_vol_by_name_resolves_in_the_pool(pool: Pool, img: QemuImg) -> None:
    (Path(pool.target_path) / "base.img").write_bytes(b"\0" * 512)
    create_volume_as(pool, "ov.qcow2", None, img, fmt="qcow2", backing="base.img")
    create = next(c for c in _runner(img).calls if c[1] == "create")
    assert create[5:9] == ["-b", f"{pool.target_path}/base.img", "-F", "raw"]


@pytest.mark.parametrize(
    ("vol", "kwargs", "message"),
    [
        (Volume(name="v", target_format="raw"), {}, "volume 'v' needs a capacity"),
        (Volume(name="v", capacity=1, target_format="iso"), {}, "cannot create a volume of"),
        (
            Volume(name="v", target_format="raw", backing_store=BackingStore("/b")),
            {},
            "a volume of format 'raw' cannot have a backing file (use qcow2)",
        ),
        (
            Volume(name="v", capacity=1, target_format="raw"),
            {"prealloc_metadata": True},
            "metadata preallocation needs format qcow2, not 'raw'",
        ),
        (
            Volume(name="v", capacity=1, target_path="/elsewhere/v"),
            {},
            "volume target path '/elsewhere/v' does not match its place in pool 'test'",
        ),
    ],
)
def test_create_refusals(
    pool: Pool, img: QemuImg, vol: Volume, kwargs: dict[str, bool], message: str
) -> None:
    with pytest.raises(InvalidConfig, match=message.replace("(", r"\(").replace(")", r"\)")):
        create_volume(pool, vol, img, **kwargs)
    assert os.listdir(pool.target_path) == []


# --- delete, resize ------------------------------------------------------------------------


def test_delete_refuses_a_volume_in_use_naming_the_domains(pool: Pool) -> None:
    (Path(pool.target_path) / "a.img").write_bytes(b"")
    with pytest.raises(Conflict) as err:
        delete_volume(pool, "a.img", in_use_by=["web01"])
    assert str(err.value) == "cannot delete volume 'a.img': it is in use by domain 'web01'"
    with pytest.raises(Conflict) as err:
        delete_volume(pool, "a.img", in_use_by=["web01", "db"])
    assert str(err.value) == "cannot delete volume 'a.img': it is in use by domains 'web01', 'db'"
    delete_volume(pool, "a.img")
    with pytest.raises(NotFound) as nf:
        delete_volume(pool, "a.img")
    assert str(nf.value) == "storage volume not found: no volume 'a.img' in pool 'test'"


def test_resize_refuses_to_shrink_without_the_flag(pool: Pool, img: QemuImg) -> None:
    (Path(pool.target_path) / "a.img").write_bytes(b"\0" * 2048)
    with pytest.raises(InvalidConfig) as err:
        resize_volume(pool, "a.img", 1024, img)
    assert str(err.value) == (
        "refusing to shrink volume 'a.img' from 2.00 KiB to 1.00 KiB without --shrink "
        "(data past the new end would be lost)"
    )
    resize_volume(pool, "a.img", 1024, img, shrink=True)
    assert _runner(img).calls[-2][:5] == ["qemu-img", "resize", "-q", "-f", "raw"]
    assert "--shrink" in _runner(img).calls[-2]


def test_resize_refuses_a_volume_in_use(pool: Pool, img: QemuImg) -> None:
    (Path(pool.target_path) / "a.img").write_bytes(b"")
    with pytest.raises(Conflict, match=r"cannot resize volume 'a\.img': it is in use by domain"):
        resize_volume(pool, "a.img", 1 << 30, img, in_use_by=["vm"])


def test_backing_users() -> None:
    vols = [
        Volume(name="ov1", backing_store=BackingStore("/p/base.qcow2")),
        Volume(name="ov2", backing_store=BackingStore("/p/other.qcow2")),
        Volume(name="base.qcow2"),
    ]
    assert backing_users(vols, "/p/base.qcow2") == ["ov1"]


# --- transfers and wipe ----------------------------------------------------------------------


def test_upload_download_round_trip_with_offset_and_length(pool: Pool) -> None:
    path = Path(pool.target_path) / "a.img"
    path.write_bytes(b"." * 100)
    assert upload_volume(pool, "a.img", io.BytesIO(b"HELLO-WORLD"), offset=10, length=5) == 5
    assert path.read_bytes() == b"." * 10 + b"HELLO" + b"." * 85
    out = io.BytesIO()
    assert download_volume(pool, "a.img", out, offset=8, length=9) == 9
    assert out.getvalue() == b"..HELLO.."
    out = io.BytesIO()
    assert download_volume(pool, "a.img", out, offset=95) == 5


def test_upload_progress_and_refusals(pool: Pool, tmp_path: Path) -> None:
    (Path(pool.target_path) / "a.img").write_bytes(b"")
    src = tmp_path / "src.bin"
    src.write_bytes(os.urandom(3 << 20))
    seen: list[float] = []
    with src.open("rb") as f:
        assert upload_volume(pool, "a.img", f, progress=seen.append) == 3 << 20
    assert seen[-1] == 100.0 and len(seen) == 3
    assert (Path(pool.target_path) / "a.img").read_bytes() == src.read_bytes()
    with pytest.raises(Conflict, match=r"cannot upload to volume 'a\.img': it is in use"):
        upload_volume(pool, "a.img", io.BytesIO(b""), in_use_by=["vm"])
    with pytest.raises(InvalidConfig, match="offset must not be negative"):
        upload_volume(pool, "a.img", io.BytesIO(b""), offset=-1)
    with pytest.raises(NotFound):
        download_volume(pool, "missing.img", io.BytesIO())


def test_zero_data_keeps_holes(tmp_path: Path) -> None:
    path = tmp_path / "sparse"
    with path.open("wb") as f:
        f.write(b"A" * 4096)
        f.seek(8 << 20)
        f.write(b"B" * 4096)
    fd = os.open(path, os.O_RDWR)
    try:
        written = zero_data(fd)
    finally:
        os.close(fd)
    data = path.read_bytes()
    assert data == bytes(len(data))
    assert written < 4 << 20  # the hole in between was not written


def test_wipe_raw(pool: Pool, img: QemuImg) -> None:
    path = Path(pool.target_path) / "a.img"
    path.write_bytes(b"secret" * 1000)
    vol = wipe_volume(pool, "a.img", img)
    assert path.read_bytes() == bytes(6000)
    assert vol.capacity == 6000
    assert not [c for c in _runner(img).calls if c[1] == "create"]
    with pytest.raises(Conflict, match=r"cannot wipe volume 'a\.img': it is in use"):
        wipe_volume(pool, "a.img", img, in_use_by=["vm"])
