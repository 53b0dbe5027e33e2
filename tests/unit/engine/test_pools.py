"""Engine logic of storage pools on a temporary vmkit root (real SQLite store, real directories):
define / create / build / start / destroy / delete / undefine, the default pool, refusals and
what they leave behind."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from vmkit.engine import pools
from vmkit.engine.context import Context
from vmkit.errors import Conflict, InvalidConfig, NotFound, StorageError, WrongState
from vmkit.model.storage import PoolState
from vmkit.state.records import POOL


def _define(ctx: Context, name: str, target: Path) -> pools.PoolEntry:
    return pools.define_pool(ctx, pools.pool_from_args(name, "dir", str(target)))


def test_default_pool_is_made_once_and_started(ctx: Context) -> None:
    made = pools.ensure_default_pool(ctx)
    assert made is not None and made.active
    assert made.pool.target_path == str(ctx.paths.data_dir / "images")
    assert made.definition.autostart
    assert os.path.isdir(made.pool.target_path)
    assert pools.ensure_default_pool(ctx) is None
    assert [p.name for p in pools.all_pools(ctx)] == ["default"]


def test_default_pool_is_not_given_back_after_undefine(ctx: Context) -> None:
    pools.ensure_default_pool(ctx)
    pools.destroy(ctx, "default")
    pools.undefine(ctx, "default")
    assert pools.ensure_default_pool(ctx) is None
    assert pools.all_pools(ctx) == []


def test_a_user_pool_named_default_counts_as_the_default(ctx: Context, tmp_path: Path) -> None:
    _define(ctx, "default", tmp_path / "mine")
    assert pools.ensure_default_pool(ctx) is None
    assert pools.lookup_pool(ctx, "default").pool.target_path == str(tmp_path / "mine")


def test_define_build_start_info_destroy_delete_undefine(ctx: Context, tmp_path: Path) -> None:
    target = tmp_path / "p1"
    entry = _define(ctx, "p1", target)
    assert not entry.active and pools.state_of(entry) is PoolState.INACTIVE
    with pytest.raises(NotFound, match="does not exist"):
        pools.start(ctx, "p1")
    pools.build(ctx, "p1")
    assert target.is_dir()
    started = pools.start(ctx, entry.uuid)  # by uuid too
    assert started.active
    row = pools.info(ctx, "p1")
    assert row.state is PoolState.RUNNING and row.capacity and row.available is not None
    with pytest.raises(WrongState, match="already active"):
        pools.start(ctx, "p1")
    with pytest.raises(WrongState, match="already active"):
        pools.build(ctx, "p1")
    with pytest.raises(WrongState, match="still active"):
        pools.delete(ctx, "p1")
    pools.destroy(ctx, "p1")
    with pytest.raises(WrongState, match="is not active"):
        pools.destroy(ctx, "p1")
    assert pools.info(ctx, "p1").capacity is None
    pools.delete(ctx, "p1")
    assert not target.exists()
    pools.undefine(ctx, "p1")
    with pytest.raises(NotFound, match="failed to get pool 'p1'"):
        pools.lookup_pool(ctx, "p1")


def test_start_with_build(ctx: Context, tmp_path: Path) -> None:
    _define(ctx, "p", tmp_path / "a" / "b")
    assert pools.start(ctx, "p", build=True).active
    assert (tmp_path / "a" / "b").is_dir()


def test_delete_refuses_a_pool_that_holds_files(ctx: Context, tmp_path: Path) -> None:
    _define(ctx, "p", tmp_path / "p")
    pools.build(ctx, "p")
    (tmp_path / "p" / "disk.img").write_bytes(b"x")
    with pytest.raises(Conflict, match=r"still holds 1 file\(s\) \(disk.img\)"):
        pools.delete(ctx, "p")
    assert (tmp_path / "p" / "disk.img").exists()


def test_bad_definitions_store_nothing(ctx: Context, tmp_path: Path) -> None:
    a_file = tmp_path / "file"
    a_file.write_text("not a dir")
    with pytest.raises(InvalidConfig, match="exists and is a file"):
        _define(ctx, "pf", a_file)
    for name in ("a/b", "..", "", "x\x00y"):
        with pytest.raises(InvalidConfig):
            _define(ctx, name, tmp_path / "ok")
    with pytest.raises(InvalidConfig, match="not supported"):
        pools.pool_from_args("p", "iscsi", str(tmp_path / "x"))
    with pytest.raises(InvalidConfig, match="--target"):
        pools.pool_from_args("p", "dir", None)
    with pytest.raises(InvalidConfig, match="absolute"):
        pools.pool_from_args("p", "dir", "relative/path")
    assert ctx.store.list(POOL) == []


def test_pool_file_becomes_file_after_define(ctx: Context, tmp_path: Path) -> None:
    target = tmp_path / "later"
    _define(ctx, "p", target)
    target.write_text("now a file")
    with pytest.raises(InvalidConfig, match="is a file"):
        pools.build(ctx, "p")
    with pytest.raises(InvalidConfig, match="is a file"):
        pools.start(ctx, "p")
    assert not pools.lookup_pool(ctx, "p").active
    assert target.read_text() == "now a file"


def test_name_and_target_conflicts(ctx: Context, tmp_path: Path) -> None:
    _define(ctx, "p", tmp_path / "p")
    with pytest.raises(Conflict, match="already exists with uuid"):
        _define(ctx, "p", tmp_path / "q")  # no uuid given: a new pool, same name
    with pytest.raises(Conflict, match="pool 'p' already uses target path"):
        _define(ctx, "q", tmp_path / "p")
    assert [p.name for p in pools.all_pools(ctx)] == ["p"]


def test_redefine_keeps_uuid_and_refuses_moving_an_active_pool(
    ctx: Context, tmp_path: Path
) -> None:
    entry = _define(ctx, "p", tmp_path / "p")
    same = pools.pool_from_args("p", "dir", str(tmp_path / "p2"))
    same.uuid = entry.uuid
    assert pools.define_pool(ctx, same).pool.target_path == str(tmp_path / "p2")
    pools.start(ctx, "p", build=True)
    moved = pools.pool_from_args("p", "dir", str(tmp_path / "p3"))
    moved.uuid = entry.uuid
    with pytest.raises(WrongState, match="destroy it before"):
        pools.define_pool(ctx, moved)
    assert pools.lookup_pool(ctx, "p").pool.target_path == str(tmp_path / "p2")


def test_transient_pool_lives_while_active(ctx: Context, tmp_path: Path) -> None:
    pool = pools.pool_from_args("t", "dir", str(tmp_path / "t"))
    with pytest.raises(NotFound, match="--build creates it"):
        pools.create_pool(ctx, pool)
    assert ctx.store.list(POOL) == []
    entry = pools.create_pool(ctx, pool, build=True)
    assert entry.active and not entry.definition.persistent
    with pytest.raises(WrongState, match="transient"):
        pools.set_autostart(ctx, "t", True)
    with pytest.raises(Conflict, match="already exists"):
        pools.create_pool(ctx, pools.pool_from_args("t", "dir", str(tmp_path / "u")), build=True)
    pools.destroy(ctx, "t")
    assert ctx.store.list(POOL) == []
    assert (tmp_path / "t").is_dir()  # destroy keeps the files


def test_failed_create_removes_the_directory_it_built(
    ctx: Context, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise StorageError("disk on fire")

    monkeypatch.setattr(ctx.store, "put_object_runtime", broken)
    with pytest.raises(StorageError, match="disk on fire"):
        pools.create_pool(ctx, pools.pool_from_args("t", "dir", str(tmp_path / "t")), build=True)
    assert not (tmp_path / "t").exists()
    assert ctx.store.list(POOL) == []


def test_undefine_active_pool_makes_it_transient(ctx: Context, tmp_path: Path) -> None:
    _define(ctx, "p", tmp_path / "p")
    pools.start(ctx, "p", build=True)
    pools.set_autostart(ctx, "p", True)
    entry = pools.undefine(ctx, "p")
    assert entry.active
    now = pools.lookup_pool(ctx, "p")
    assert not now.definition.persistent and not now.definition.autostart
    pools.destroy(ctx, "p")
    assert ctx.store.list(POOL) == []


def test_autostart(ctx: Context, tmp_path: Path) -> None:
    _define(ctx, "p", tmp_path / "p")
    assert pools.set_autostart(ctx, "p", True).autostart
    assert not pools.set_autostart(ctx, "p", False).autostart


def test_inaccessible_when_the_directory_is_gone(ctx: Context, tmp_path: Path) -> None:
    _define(ctx, "p", tmp_path / "p")
    pools.start(ctx, "p", build=True)
    (tmp_path / "p").rmdir()
    row = pools.info(ctx, "p")
    assert row.state is PoolState.INACCESSIBLE and row.capacity is None


def test_dumpxml_has_sizes_only_when_active(ctx: Context, tmp_path: Path) -> None:
    entry = _define(ctx, "p", tmp_path / "p")
    xml = pools.dumpxml(ctx, "p")
    assert f"<uuid>{entry.uuid}</uuid>" in xml and "<capacity" not in xml
    pools.start(ctx, "p", build=True)
    assert "<capacity unit='bytes'>" in pools.dumpxml(ctx, "p")
    assert "<capacity" not in pools.dumpxml(ctx, "p", inactive=True)


def test_define_from_xml_names_the_file_on_error(ctx: Context, tmp_path: Path) -> None:
    good = f"<pool type='dir'><name>x</name><target><path>{tmp_path}/x</path></target></pool>"
    assert pools.define_pool(ctx, pools.parse_pool_xml(good, "x.xml")).name == "x"
    bad = "<pool type='dir'><name>y</name><bogus/><target><path>/y</path></target></pool>"
    with pytest.raises(InvalidConfig, match=r"Failed to define pool from y.xml: .*<bogus>"):
        pools.parse_pool_xml(bad, "y.xml")
