"""Snapshot metadata in a real store (no QEMU): tree bookkeeping, the current marker, lookups
that name the owning domain, and the domain XML rewrites of external snapshots."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from vmkit.engine.context import Context
from vmkit.engine.snapshot_meta import (
    children_of,
    current_record,
    descendants_of,
    disk_sources,
    find_record,
    load_records,
    make_current,
    new_record,
    put_record,
    remove_record,
    switch_sources,
)
from vmkit.errors import NotFound
from vmkit.model.devices import Disk, DiskDevice, DiskFormat
from vmkit.model.domain import Domain
from vmkit.model.snapshot import DomainSnapshot, SnapshotState
from vmkit.state.paths import Paths
from vmkit.state.records import DOMAIN
from vmkit.xml.domain import render_domain

U1 = "11111111-1111-1111-1111-111111111111"
U2 = "22222222-2222-2222-2222-222222222222"


def _xml(name: str, uuid: str, source: str = "/i/a.qcow2") -> str:
    dom = Domain(name=name, uuid=uuid)
    dom.os.machine = "q35"
    dom.devices.disks = [
        Disk(source=source, target_dev="vda", driver_type=DiskFormat.QCOW2),
        Disk(source="/i/x.iso", target_dev="sda", device=DiskDevice.CDROM, readonly=True),
    ]
    return render_domain(dom, inactive=True)


@pytest.fixture
def ctx(tmp_path: Path) -> Iterator[Context]:
    with Context.open(Paths(tmp_path / "lib", tmp_path / "run", tmp_path / "cache")) as c:
        c.store.define(DOMAIN, U1, "vm1", _xml("vm1", U1))
        c.store.define(DOMAIN, U2, "vm2", _xml("vm2", U2))
        yield c


def _add(ctx: Context, uuid: str, name: str, parent: str | None, current: bool = False) -> None:
    xml = _xml("vm1" if uuid == U1 else "vm2", uuid)
    snap = DomainSnapshot(
        name=name,
        parent=parent,
        state=SnapshotState.SHUTOFF,
        creation_time=1,
        domain_xml=xml,
        current=current,
    )
    put_record(ctx, uuid, new_record(snap))


def test_tree_bookkeeping(ctx: Context) -> None:
    for name, parent in [("a", None), ("b", "a"), ("c", "b"), ("d", "a")]:
        _add(ctx, U1, name, parent, current=name == "c")
    records = load_records(ctx, U1)
    assert [r.name for r in children_of(records, None)] == ["a"]
    assert [r.name for r in children_of(records, "a")] == ["b", "d"]
    assert [r.name for r in descendants_of(records, "a")] == ["c", "b", "d"]
    assert current_record(records).name == "c"  # type: ignore[union-attr]
    make_current(ctx, U1, records, "d")
    records = load_records(ctx, U1)
    assert [r.name for r in records.values() if r.snap.current] == ["d"]


def test_removing_a_snapshot_reparents_children_and_moves_current(ctx: Context) -> None:
    for name, parent in [("a", None), ("b", "a"), ("c", "b"), ("f", "b")]:
        _add(ctx, U1, name, parent, current=name == "b")
    records = load_records(ctx, U1)
    remove_record(ctx, U1, records, "b")
    records = load_records(ctx, U1)
    assert sorted(records) == ["a", "c", "f"]
    assert records["c"].snap.parent == "a" and records["f"].snap.parent == "a"
    assert records["a"].snap.current


def test_snapshots_belong_to_their_domain(ctx: Context) -> None:
    _add(ctx, U1, "s1", None)
    entry2 = ctx.store.lookup_domain(U2)
    with pytest.raises(NotFound, match="belongs to domain 'vm1'"):
        find_record(ctx, entry2, load_records(ctx, U2), "s1")
    entry1 = ctx.store.lookup_domain(U1)
    assert find_record(ctx, entry1, load_records(ctx, U1), "s1").name == "s1"
    with pytest.raises(NotFound, match="no domain snapshot with matching name 'zz'"):
        find_record(ctx, entry1, load_records(ctx, U1), "zz")


def test_copied_metadata_of_another_domain_is_refused(ctx: Context) -> None:
    snap = DomainSnapshot(
        name="s1", state=SnapshotState.SHUTOFF, creation_time=1, domain_xml=_xml("vm2", U2)
    )
    put_record(ctx, U1, new_record(snap))  # metadata filed under vm1, but of vm2
    entry1 = ctx.store.lookup_domain(U1)
    with pytest.raises(NotFound, match="does not belong to domain 'vm1'"):
        find_record(ctx, entry1, load_records(ctx, U1), "s1")


def test_disk_sources_and_switch_sources() -> None:
    xml = _xml("vm1", U1)
    assert disk_sources(xml) == {"vda": ("/i/a.qcow2", "qcow2")}
    moved = switch_sources(xml, {"vda": ("/i/a.qcow2", "/i/a.s1", "qcow2")})
    assert disk_sources(moved) == {"vda": ("/i/a.s1", "qcow2")}
    untouched = switch_sources(xml, {"vda": ("/i/other.qcow2", "/i/a.s1", "qcow2")})
    assert disk_sources(untouched) == disk_sources(xml)
