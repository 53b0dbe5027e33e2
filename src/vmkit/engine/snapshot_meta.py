"""Snapshot metadata in the store: kind SNAPSHOT, parent = the domain's uuid, XML as libvirt's.

The current snapshot carries libvirt's private `<active>1</active>` marker in its stored XML
(`snapshot-dumpxml` leaves it out). Parents are by name, as in libvirt; deleting a snapshot
re-parents its children to its own parent. Callers hold the domain's lock.
"""

from __future__ import annotations

import uuid as uuid_mod
from dataclasses import dataclass
from pathlib import Path

from vmkit.engine.context import Context
from vmkit.errors import NotFound
from vmkit.model.devices import DiskFormat
from vmkit.model.snapshot import DomainSnapshot, SnapshotLocation
from vmkit.state.records import DOMAIN, SNAPSHOT, DomainEntry


@dataclass
class Record:
    """One stored snapshot: the store's uuid for it and the snapshot."""

    uuid: str
    snap: DomainSnapshot

    @property
    def name(self) -> str:
        assert self.snap.name is not None
        return self.snap.name


def snapshot_dir(ctx: Context, domain_uuid: str) -> Path:
    """Where vmkit keeps a domain's snapshot files of its own (memory images)."""
    return ctx.paths.data_dir / "snapshot" / domain_uuid


def load_records(ctx: Context, domain_uuid: str) -> dict[str, Record]:
    """Every snapshot of the domain, by name."""
    from vmkit.xml.snapshot import parse_snapshot

    out: dict[str, Record] = {}
    for d in ctx.store.list(SNAPSHOT, parent=domain_uuid):
        snap = parse_snapshot(d.xml, source=f"snapshot '{d.name}'", stored=True)
        out[d.name] = Record(d.uuid, snap)
    return out


def find_record(ctx: Context, entry: DomainEntry, records: dict[str, Record], name: str) -> Record:
    """The snapshot `name` of this domain; NotFound (naming its owner if another domain has it)."""
    rec = records.get(name)
    if rec is not None:
        _check_owner(entry, rec)
        return rec
    message = f"Domain snapshot not found: no domain snapshot with matching name '{name}'"
    owners = [
        d.parent for d in ctx.store.list(SNAPSHOT) if d.name == name and d.parent != entry.uuid
    ]
    names = [_domain_name(ctx, u) for u in owners]
    if names:
        message += (
            f" for domain '{entry.name}' (a snapshot '{name}' belongs to domain "
            f"{', '.join(repr(n) for n in names)}: a domain can only revert to its own snapshots)"
        )
    raise NotFound("domain snapshot", name, message)


def _check_owner(entry: DomainEntry, rec: Record) -> None:
    """The snapshot's recorded domain must be this one (metadata copied by hand would not be)."""
    xml = rec.snap.domain_xml or ""
    if xml and f"<uuid>{entry.uuid}</uuid>" not in xml:
        raise NotFound(
            "domain snapshot",
            rec.name,
            f"snapshot '{rec.name}' does not belong to domain '{entry.name}' "
            "(its saved definition has another uuid)",
        )


def _domain_name(ctx: Context, uuid: str) -> str:
    found = ctx.store.find(DOMAIN, uuid)
    return found.name if found is not None else uuid


def current_record(records: dict[str, Record]) -> Record | None:
    for rec in records.values():
        if rec.snap.current:
            return rec
    return None


def put_record(ctx: Context, domain_uuid: str, rec: Record) -> None:
    from vmkit.xml.snapshot import render_snapshot

    xml = render_snapshot(rec.snap, with_current=True)
    ctx.store.define(SNAPSHOT, rec.uuid, rec.name, xml, parent=domain_uuid)


def new_record(snap: DomainSnapshot) -> Record:
    return Record(str(uuid_mod.uuid4()), snap)


def make_current(
    ctx: Context, domain_uuid: str, records: dict[str, Record], name: str | None
) -> None:
    """Mark `name` (None: no snapshot) current, in one transaction."""
    with ctx.store.transaction():
        for rec in records.values():
            want = rec.name == name
            if rec.snap.current != want:
                rec.snap.current = want
                put_record(ctx, domain_uuid, rec)


def remove_record(ctx: Context, domain_uuid: str, records: dict[str, Record], name: str) -> None:
    """Forget snapshot `name`: its children move to its parent; its parent becomes current if it
    was current. One transaction."""
    rec = records.pop(name)
    with ctx.store.transaction():
        for child in children_of(records, name):
            child.snap.parent = rec.snap.parent
            put_record(ctx, domain_uuid, child)
        ctx.store.undefine(SNAPSHOT, rec.uuid, parent=domain_uuid)
        if rec.snap.current and rec.snap.parent in records:
            make_current(ctx, domain_uuid, records, rec.snap.parent)
        ctx.store.log_event(SNAPSHOT, rec.uuid, name, "deleted", domain_uuid)


def children_of(records: dict[str, Record], name: str | None) -> list[Record]:
    """Direct children of `name` (None: the roots), by name."""
    found = [r for r in records.values() if r.snap.parent == name]
    if name is None:
        found = [r for r in records.values() if r.snap.parent not in records]
    return sorted(found, key=lambda r: r.name)


def descendants_of(records: dict[str, Record], name: str) -> list[Record]:
    """Every descendant of `name`, deepest first (the order to delete them in)."""
    out: list[Record] = []
    for child in children_of(records, name):
        out += descendants_of(records, child.name)
        out.append(child)
    return out


# -- the domain XML a snapshot refers to ------------------------------------------------------


def disk_sources(xml: str) -> dict[str, tuple[str, str]]:
    """target -> (image, format) of the writable disks with an image in a domain XML."""
    from vmkit.engine.snapshot_plan import snapshottable
    from vmkit.xml.domain import parse_domain

    dom = parse_domain(xml)
    return {
        d.target_dev: (d.source, str(d.driver_type or DiskFormat.RAW))
        for d in dom.devices.disks
        if snapshottable(d) and d.source is not None
    }


def switch_sources(xml: str, new: dict[str, tuple[str, str, str]]) -> str:
    """The domain XML with disk `target` moved from image `old` to `image` (qcow2 or `fmt`).

    `new` maps target -> (old image, new image, new format); a disk whose image is not `old`
    (the definition was edited meanwhile) is left alone.
    """
    from vmkit.xml.domain import parse_domain, render_domain

    dom = parse_domain(xml)
    for d in dom.devices.disks:
        if d.target_dev in new and d.source == new[d.target_dev][0]:
            d.source = new[d.target_dev][1]
            d.driver_type = DiskFormat(new[d.target_dev][2])
    text: str = render_domain(dom, inactive=True)
    return text


def external_bases(rec: Record) -> dict[str, tuple[str, str]]:
    """target -> (frozen image, format) of the external disks of a snapshot."""
    if rec.snap.domain_xml is None:
        return {}
    sources = disk_sources(rec.snap.domain_xml)
    return {
        d.name: sources[d.name]
        for d in rec.snap.disks
        if d.snapshot is SnapshotLocation.EXTERNAL and d.name in sources
    }


def internal_images(rec: Record) -> list[str]:
    """The images that hold a snapshot's internal state (first: the one with its memory)."""
    if rec.snap.domain_xml is None:
        return []
    sources = disk_sources(rec.snap.domain_xml)
    return [
        sources[d.name][0]
        for d in rec.snap.disks
        if d.snapshot is SnapshotLocation.INTERNAL and d.name in sources
    ]
