"""Engine logic of volumes on a temporary vmkit root with real qemu-img: lookup by name, key and
path; create / clone / import / resize / wipe / delete; refusals naming the domains and overlays
that use a volume; format records (a raw volume is never probed); nothing left on failure."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from vmkit.engine import pools, vol_transfer, volumes
from vmkit.engine.context import Context
from vmkit.engine.storage_refs import disk_files, recorded_formats
from vmkit.errors import Conflict, InvalidConfig, NotFound, StorageError, WrongState
from vmkit.qemu.process import read_stat
from vmkit.state.records import DOMAIN, DomainRuntime

pytestmark = pytest.mark.skipif(shutil.which("qemu-img") is None, reason="needs qemu-img")
MiB = 1 << 20


def _create(ctx: Context, name: str, size: str = "4M", **kw: object) -> object:
    return volumes.create_as(ctx, "p", volumes.CreateArgs(name=name, capacity=size, **kw))  # type: ignore[arg-type]


def _domain(ctx: Context, name: str, disk: Path, *, running: bool = False) -> None:
    dom_uuid = str(uuid.uuid4())
    xml = (
        f"<domain type='kvm'><name>{name}</name><uuid>{dom_uuid}</uuid><devices>"
        f"<disk type='file' device='disk'><source file='{disk}'/><target dev='vda'/></disk>"
        "</devices></domain>"
    )
    ctx.store.define(DOMAIN, dom_uuid, name, xml)
    if running:
        st = read_stat(os.getpid())
        assert st is not None
        ctx.store.put_runtime(
            DomainRuntime(
                uuid=dom_uuid,
                domain_id=ctx.store.next_domain_id(),
                state="running",
                pid=os.getpid(),
                pid_start=st.start_time,
                live_xml=xml,
            )
        )


def test_create_list_info_path_dumpxml(ctx: Context, pool: Path) -> None:
    _create(ctx, "a.qcow2", "1G", fmt="qcow2")
    _create(ctx, "b.raw", "10M", allocation="1M")
    vols = volumes.list_volumes(ctx, "p")
    assert [(v.name, v.target_format, v.capacity) for v in vols] == [
        ("a.qcow2", "qcow2", 1 << 30),
        ("b.raw", "raw", 10 * MiB),
    ]
    assert volumes.info(ctx, "b.raw", "p").allocation == MiB
    assert volumes.path_of(ctx, "a.qcow2", "p") == str(pool / "a.qcow2")
    xml = volumes.dumpxml(ctx, str(pool / "a.qcow2"))
    assert "<format type='qcow2'/>" in xml and "<name>a.qcow2</name>" in xml
    assert recorded_formats(ctx, pools.lookup_pool(ctx, "p").uuid) == {
        "a.qcow2": "qcow2",
        "b.raw": "raw",
    }


def test_lookup_by_name_key_and_path(ctx: Context, pool: Path, tmp_path: Path) -> None:
    _create(ctx, "v")
    assert volumes.lookup_volume(ctx, "v", "p").path == pool / "v"
    assert volumes.lookup_volume(ctx, str(pool / "v")).name == "v"
    assert volumes.lookup_volume(ctx, "v").name == "v"  # the only active pool holding it
    assert volumes.lookup_volume(ctx, f"{pool}/../p/v").name == "v"
    with pytest.raises(NotFound, match="no storage vol with matching path '/etc/passwd'"):
        volumes.lookup_volume(ctx, "/etc/passwd")
    with pytest.raises(NotFound, match="specifying --pool might help"):
        volumes.lookup_volume(ctx, "nosuch")
    with pytest.raises(NotFound, match="no storage vol with matching name 'nosuch' in pool 'p'"):
        volumes.lookup_volume(ctx, "nosuch", "p")
    with pytest.raises(InvalidConfig, match="must not contain '/'"):
        volumes.lookup_volume(ctx, "../p/v", "p")
    (pool / "sub").mkdir()
    with pytest.raises(NotFound, match="is not a volume"):
        volumes.lookup_volume(ctx, "sub", "p")
    os.symlink("/etc/passwd", pool / "link")
    with pytest.raises(InvalidConfig, match="outside pool"):
        volumes.lookup_volume(ctx, "link", "p")


def test_same_name_in_two_pools_needs_the_pool(ctx: Context, pool: Path, tmp_path: Path) -> None:
    pools.create_pool(ctx, pools.pool_from_args("q", "dir", str(tmp_path / "q")), build=True)
    _create(ctx, "v")
    volumes.create_as(ctx, "q", volumes.CreateArgs(name="v", capacity="1M"))
    with pytest.raises(Conflict, match="exists in pools 'p', 'q'"):
        volumes.lookup_volume(ctx, "v")
    assert volumes.lookup_volume(ctx, "v", "q").path == tmp_path / "q" / "v"


def test_inactive_pool_is_refused(ctx: Context, pool: Path) -> None:
    _create(ctx, "v")
    pools.destroy(ctx, "p")
    with pytest.raises(WrongState, match="storage pool 'p' is not active"):
        volumes.info(ctx, "v", "p")
    with pytest.raises(WrongState, match="not active"):
        volumes.list_volumes(ctx, "p")


def test_bad_names_and_sizes_make_nothing(ctx: Context, pool: Path) -> None:
    for name in ("a/b", "..", ".", "x\x00y", "-x"):
        with pytest.raises(InvalidConfig):
            _create(ctx, name)
    for size in ("-1", "1Z", "ten", ""):
        with pytest.raises(InvalidConfig):
            _create(ctx, "v", size)
    with pytest.raises(InvalidConfig, match="cannot have a backing file"):
        _create(ctx, "v", backing="x")  # raw with backing: refused before the lookup
    assert os.listdir(pool) == []


def test_existing_name_is_a_conflict_and_untouched(ctx: Context, pool: Path) -> None:
    _create(ctx, "v", "1M")
    with pytest.raises(Conflict, match="already exists in pool 'p'"):
        _create(ctx, "v", "2M", fmt="qcow2")
    assert volumes.info(ctx, "v", "p").capacity == MiB


def test_missing_backing_volume(ctx: Context, pool: Path) -> None:
    with pytest.raises(NotFound, match="backing volume 'base' does not exist in pool 'p'"):
        _create(ctx, "o", fmt="qcow2", backing="base")
    with pytest.raises(NotFound, match="does not exist"):
        _create(ctx, "o", fmt="qcow2", backing="/nonexistent/base.img")
    assert os.listdir(pool) == []


def test_overlay_and_linked_clone_protect_their_base(ctx: Context, pool: Path) -> None:
    _create(ctx, "base", "8M", fmt="qcow2")
    _create(ctx, "over", "8M", fmt="qcow2", backing="base")
    info = volumes.info(ctx, "over", "p")
    assert info.backing_store is not None and info.backing_store.path == str(pool / "base")
    assert info.backing_store.format == "qcow2"
    volumes.clone(ctx, "base", "linked", "p", linked=True)
    with pytest.raises(Conflict, match=r"volumes 'linked' \(pool 'p'\), 'over' \(pool 'p'\)"):
        volumes.delete(ctx, "base", "p")
    with pytest.raises(Conflict, match="cannot wipe volume 'base'"):
        vol_transfer.wipe(ctx, "base", "p")
    volumes.delete(ctx, "over", "p")
    volumes.delete(ctx, "linked", "p")
    volumes.delete(ctx, "base", "p")
    assert os.listdir(pool) == []


def test_full_clone_copies_data_with_progress(ctx: Context, pool: Path) -> None:
    _create(ctx, "src", "2M")
    vol_transfer.upload(ctx, "src", io.BytesIO(b"hello" * 1000), "p")
    seen: list[float] = []
    made = volumes.clone(ctx, "src", "copy", "p", progress=seen.append)
    assert made.target_format == "raw" and made.capacity == 2 * MiB
    out = io.BytesIO()
    vol_transfer.download(ctx, "copy", out, "p", length=5000)
    assert out.getvalue() == b"hello" * 1000
    assert seen and seen[-1] == 100.0


def test_domain_users_block_delete_and_wipe_and_running_blocks_resize(
    ctx: Context, pool: Path
) -> None:
    _create(ctx, "disk.qcow2", "8M", fmt="qcow2")
    _domain(ctx, "vm1", pool / "disk.qcow2")
    with pytest.raises(Conflict, match=r"cannot delete volume 'disk.qcow2': .* domain 'vm1'"):
        volumes.delete(ctx, "disk.qcow2", "p")
    with pytest.raises(Conflict, match=r"cannot wipe volume 'disk.qcow2': .* domain 'vm1'"):
        vol_transfer.wipe(ctx, "disk.qcow2", "p")
    assert volumes.resize(ctx, "disk.qcow2", "16M", "p").capacity == 16 * MiB  # vm1 is off
    _domain(ctx, "vm2", pool / "disk.qcow2", running=True)
    with pytest.raises(Conflict, match=r"resize .* running domain 'vm2'"):
        volumes.resize(ctx, "disk.qcow2", "32M", "p")
    with pytest.raises(Conflict, match=r"upload to .* running domain 'vm2'"):
        vol_transfer.upload(ctx, "disk.qcow2", io.BytesIO(b"x"), "p")
    with pytest.raises(Conflict, match=r"clone .* running domain 'vm2'"):
        volumes.clone(ctx, "disk.qcow2", "c", "p")
    with pytest.raises(Conflict, match="domains 'vm1', 'vm2'"):
        volumes.delete(ctx, str(pool / "disk.qcow2"))
    assert volumes.info(ctx, "disk.qcow2", "p").capacity == 16 * MiB


def test_disk_files_reads_sources_and_backing_stores() -> None:
    xml = (
        "<domain><devices><disk type='file'><source file='/a'/>"
        "<backingStore type='file'><source file='/b'/></backingStore></disk>"
        "<disk type='block'><source dev='/dev/null'/></disk><disk type='file'/>"
        "</devices></domain>"
    )
    assert disk_files(xml) == {"/a", "/b", "/dev/null"}
    assert disk_files("not xml") == set()
    by_volume = (
        "<domain><devices><disk type='volume'><source pool='p' volume='v'/></disk>"
        "</devices></domain>"
    )
    assert disk_files(by_volume, {"p": "/pools/p"}) == {"/pools/p/v"}
    assert disk_files(by_volume) == set()


def test_resize_grow_shrink_delta(ctx: Context, pool: Path) -> None:
    _create(ctx, "v.qcow2", "8M", fmt="qcow2")
    assert volumes.resize(ctx, "v.qcow2", "+8M", "p").capacity == 16 * MiB
    assert volumes.resize(ctx, "v.qcow2", "4M", "p", delta=True).capacity == 20 * MiB
    with pytest.raises(InvalidConfig, match="without --shrink"):
        volumes.resize(ctx, "v.qcow2", "4M", "p")
    with pytest.raises(InvalidConfig, match="requires --shrink"):
        volumes.resize(ctx, "v.qcow2", "-4M", "p")
    assert volumes.resize(ctx, "v.qcow2", "-4M", "p", shrink=True).capacity == 16 * MiB
    assert volumes.resize(ctx, "v.qcow2", "8M", "p", shrink=True).capacity == 8 * MiB


def test_raw_volume_with_an_image_header_stays_raw(
    ctx: Context, pool: Path, tmp_path: Path
) -> None:
    """A guest that writes a qcow2 header (with a backing file) into its raw disk must not make
    vmkit read a host file through it: the recorded format wins over probing."""
    evil = tmp_path / "evil.qcow2"
    subprocess.run(
        ["qemu-img", "create", "-q", "-f", "qcow2", "-b", "/etc/passwd", "-F", "raw", str(evil)],
        check=True,
    )
    _create(ctx, "guest.raw", "1M")
    with evil.open("rb") as src:
        vol_transfer.upload(ctx, "guest.raw", src, "p")
    info = volumes.info(ctx, "guest.raw", "p")
    assert info.target_format == "raw" and info.backing_store is None
    assert [v.target_format for v in volumes.list_volumes(ctx, "p")] == ["raw"]
    copy = volumes.clone(ctx, "guest.raw", "copy.raw", "p")
    assert copy.capacity == MiB and copy.backing_store is None


def test_records_follow_the_files(ctx: Context, pool: Path) -> None:
    _create(ctx, "v.qcow2", fmt="qcow2")
    pool_uuid = pools.lookup_pool(ctx, "p").uuid
    (pool / "v.qcow2").unlink()  # behind vmkit's back
    pools.refresh(ctx, "p")
    assert recorded_formats(ctx, pool_uuid) == {}
    # a file replaced by another format is probed rather than lost
    _create(ctx, "w.qcow2", fmt="qcow2")
    (pool / "w.qcow2").write_bytes(b"\0" * 4096)
    assert volumes.info(ctx, "w.qcow2", "p").target_format == "raw"
    assert [v.name for v in volumes.list_volumes(ctx, "p")] == ["w.qcow2"]
    pools.destroy(ctx, "p")
    pools.undefine(ctx, "p")
    assert recorded_formats(ctx, pool_uuid) == {}


def test_a_store_failure_after_create_removes_the_file(
    ctx: Context, pool: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object) -> None:
        raise StorageError("store on fire")

    monkeypatch.setattr(volumes, "remember_format", broken)
    with pytest.raises(StorageError, match="store on fire"):
        _create(ctx, "v")
    assert os.listdir(pool) == []


def test_upload_download_range_and_cleanup(ctx: Context, pool: Path, tmp_path: Path) -> None:
    _create(ctx, "v", "64K")
    src = tmp_path / "in.bin"
    src.write_bytes(bytes(range(256)) * 16)
    assert vol_transfer.upload_file(ctx, "v", str(src), "p", offset=100) == 4096
    out = tmp_path / "out.bin"
    assert vol_transfer.download_file(ctx, "v", str(out), "p", offset=100, length=4096) == 4096
    assert out.read_bytes() == src.read_bytes()
    with pytest.raises(NotFound, match="cannot read"):
        vol_transfer.upload_file(ctx, "v", str(tmp_path / "missing"), "p")
    bad = tmp_path / "bad.bin"
    with pytest.raises(InvalidConfig, match="offset must not be negative"):
        vol_transfer.download_file(ctx, "v", str(bad), "p", offset=-1)
    assert not bad.exists()
    with pytest.raises(InvalidConfig, match="onto itself"):
        vol_transfer.download_file(ctx, "v", str(pool / "v"), "p")
    assert volumes.info(ctx, "v", "p").capacity == 64 * 1024


def test_wipe_keeps_a_usable_image(ctx: Context, pool: Path) -> None:
    _create(ctx, "q.qcow2", "8M", fmt="qcow2")
    _create(ctx, "r.raw", "1M")
    vol_transfer.upload(ctx, "r.raw", io.BytesIO(b"\xff" * 4096), "p")
    assert vol_transfer.wipe(ctx, "q.qcow2", "p").target_format == "qcow2"
    assert vol_transfer.wipe(ctx, "r.raw", "p").capacity == MiB
    assert (pool / "r.raw").read_bytes()[:4096] == bytes(4096)
    with pytest.raises(InvalidConfig, match="not supported"):
        vol_transfer.wipe(ctx, "r.raw", "p", algorithm="dod")


def test_import_vmdk_and_refuse_unknown_sources(ctx: Context, pool: Path, tmp_path: Path) -> None:
    src = tmp_path / "disk.vmdk"
    subprocess.run(["qemu-img", "create", "-q", "-f", "vmdk", str(src), "16M"], check=True)
    made = volumes.import_volume(ctx, "p", str(src), "disk.qcow2")
    assert (made.target_format, made.capacity) == ("qcow2", 16 * MiB)
    raw = volumes.import_volume(ctx, "p", str(src), "disk.raw", fmt="raw")
    assert raw.target_format == "raw"
    with pytest.raises(NotFound, match="does not exist"):
        volumes.import_volume(ctx, "p", str(tmp_path / "nope.vmdk"), "x")
    with pytest.raises(InvalidConfig, match="not a regular file"):
        volumes.import_volume(ctx, "p", str(tmp_path), "x")
    with pytest.raises(Conflict, match="already exists"):
        volumes.import_volume(ctx, "p", str(src), "disk.qcow2")
    assert sorted(os.listdir(pool)) == ["disk.qcow2", "disk.raw"]


def test_create_from_xml(ctx: Context, pool: Path) -> None:
    xml = (
        "<volume><name>x.qcow2</name><capacity unit='M'>4</capacity>"
        "<target><format type='qcow2'/></target></volume>"
    )
    made = volumes.create_from_xml(ctx, "p", xml, "x.xml")
    assert (made.target_format, made.capacity) == ("qcow2", 4 * MiB)
    bad = "<volume><name>y</name><capacity>1</capacity><oops/></volume>"
    with pytest.raises(InvalidConfig, match=r"Failed to create vol from y.xml"):
        volumes.create_from_xml(ctx, "p", bad, "y.xml")
    elsewhere = (
        "<volume><name>z</name><capacity>1024</capacity>"
        "<target><path>/tmp/z</path></target></volume>"
    )
    with pytest.raises(InvalidConfig, match="does not match its place"):
        volumes.create_from_xml(ctx, "p", elsewhere, "z.xml")
    assert os.listdir(pool) == ["x.qcow2"]
