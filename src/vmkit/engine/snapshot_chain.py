"""The images of a domain's external snapshots: who backs onto whom, what may go, merging.

An external snapshot freezes the images a domain had (its "bases") and gives the domain qcow2
overlays on top. vmkit's rules for those images:

- Revert to an external snapshot puts the domain on a fresh overlay over the snapshot's bases;
  the overlay the domain leaves is deleted when nothing needs it any more (no snapshot's
  definition names it, it holds no internal snapshot, no other domain backs onto it), because
  libvirt's revert discards the current state too. The bases are never written.
- Deleting an external snapshot merges its bases away, per disk:
  * the base has one overlay (the usual straight line): the overlay is committed into the base,
    which keeps its name, and everything that named the overlay (the domain, later snapshots,
    overlays above it) is pointed at the base; the overlay file is deleted. Deleting every
    snapshot thus brings the domain back onto its original image, as libvirt 9 does;
  * the base has several overlays (branches after a revert), or its overlay holds internal
    snapshots, or another domain backs onto either: the base's data is pulled into each overlay
    instead (`block-stream` / `qemu-img rebase`) and the base is left in place, unused.
Callers hold the domain's lock.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from vmkit.engine.context import Context
from vmkit.engine.snapshot_meta import (
    Record,
    disk_sources,
    external_bases,
    internal_images,
    put_record,
    switch_sources,
)
from vmkit.errors import StorageError
from vmkit.model.snapshot import SnapshotLocation
from vmkit.state.records import DOMAIN, DomainEntry
from vmkit.storage.qemuimg import QemuImg

if TYPE_CHECKING:
    from vmkit.qemu.qmp import QmpSession


def current_sources(entry: DomainEntry) -> dict[str, tuple[str, str]]:
    """target -> (image, format) the domain uses: its live XML when running, else its definition."""
    rt = entry.runtime
    xml = rt.live_xml if rt is not None and rt.live_xml else entry.definition.xml
    return disk_sources(xml)


def snapshot_images(records: Iterable[Record]) -> set[str]:
    """Every image a snapshot names: the sources in its definitions and its overlays."""
    found: set[str] = set()
    for rec in records:
        if rec.snap.domain_xml is not None:
            found |= {src for src, _ in disk_sources(rec.snap.domain_xml).values()}
        found |= {d.source_file for d in rec.snap.disks if d.source_file}
    return found


def named_by_definitions(records: Iterable[Record]) -> set[str]:
    found: set[str] = set()
    for rec in records:
        if rec.snap.domain_xml is not None:
            found |= {src for src, _ in disk_sources(rec.snap.domain_xml).values()}
    return found


def bases_of_external(records: Iterable[Record]) -> dict[str, str]:
    """Frozen image -> the name of the external snapshot whose base it is."""
    return {base: rec.name for rec in records for base, _ in external_bases(rec).values()}


def backing_of(img: QemuImg, path: str) -> str | None:
    """The absolute backing file of a qcow2 image (None: none, or not an image)."""
    try:
        info = img.info(path)
    except StorageError:
        return None
    return info.full_backing_filename or info.backing_filename


def children_of_image(img: QemuImg, candidates: Iterable[str], base: str) -> list[str]:
    return sorted(
        c for c in set(candidates) if c != base and Path(c).exists() and backing_of(img, c) == base
    )


def other_domain_using(ctx: Context, uuid: str, path: str, img: QemuImg) -> str | None:
    """The name of another domain whose disks are `path` or back onto it, if any."""
    for d in ctx.store.list(DOMAIN):
        if d.uuid == uuid or (path not in d.xml and not _may_back(d.xml)):
            continue
        for src, _ in disk_sources(d.xml).values():
            if src == path:
                return d.name
            with contextlib.suppress(StorageError):
                chain = img.info_chain(src)
                if any(i.filename == path for i in chain[1:]):
                    return d.name
    return None


def _may_back(xml: str) -> bool:
    return "qcow2" in xml


def disposable(
    ctx: Context, entry: DomainEntry, records: Iterable[Record], path: str, img: QemuImg
) -> bool:
    """Whether a top image the domain leaves may be deleted (see the module docstring)."""
    records = list(records)
    if path in named_by_definitions(records) or path in bases_of_external(records):
        return False
    if not Path(path).exists() or backing_of(img, path) is None:
        return False  # only overlays vmkit made are ever deleted; never a user's own image
    with contextlib.suppress(StorageError):
        if img.snapshot_list(path):
            return False
    return other_domain_using(ctx, entry.uuid, path, img) is None


# -- deleting an external snapshot ------------------------------------------------------------


def merge_away(
    ctx: Context,
    entry: DomainEntry,
    records: dict[str, Record],
    rec: Record,
    img: QemuImg,
    qmp: QmpSession | None,
) -> list[str]:
    """Merge the bases of external snapshot `rec` away; returns the files deleted."""
    deleted: list[str] = []
    others = [r for r in records.values() if r.name != rec.name]
    for base, fmt in external_bases(rec).values():
        known = set(current_sources(entry_now(ctx, entry)).values())
        candidates = {p for p, _ in known} | snapshot_images(records.values())
        children = children_of_image(img, candidates, base)
        if not children:
            continue
        if _can_commit(ctx, entry, children, base, img):
            deleted += _commit(ctx, entry, others, children[0], base, fmt, img, qmp)
        else:
            _pull(children, base, img, qmp)
    return deleted


def entry_now(ctx: Context, entry: DomainEntry) -> DomainEntry:
    return ctx.store.lookup_domain(entry.uuid)


def _can_commit(
    ctx: Context, entry: DomainEntry, children: list[str], base: str, img: QemuImg
) -> bool:
    if len(children) != 1:
        return False
    with contextlib.suppress(StorageError):
        if img.snapshot_list(children[0]):
            return False
    return all(other_domain_using(ctx, entry.uuid, p, img) is None for p in (children[0], base))


def _commit(
    ctx: Context,
    entry: DomainEntry,
    others: list[Record],
    child: str,
    base: str,
    fmt: str,
    img: QemuImg,
    qmp: QmpSession | None,
) -> list[str]:
    from vmkit.engine import snapshot_disks as sd

    live = qmp is not None and child in sd.nodes_by_file(qmp)
    grandchildren = children_of_image(img, _all_known(ctx, entry, others), child)
    if live:
        assert qmp is not None
        sd.commit_live(qmp, child, base)
    else:
        sd.commit_offline(img, child)
    open_now = set(sd.nodes_by_file(qmp)) if qmp is not None else set()
    for g in grandchildren:
        if g not in open_now:
            sd.rebase_offline(img, g, base, fmt, unsafe=True)
    _rename_everywhere(ctx, entry, others, child, base, fmt)
    Path(child).unlink(missing_ok=True)
    return [child]


def _all_known(ctx: Context, entry: DomainEntry, records: Iterable[Record]) -> set[str]:
    now = entry_now(ctx, entry)
    return {p for p, _ in current_sources(now).values()} | snapshot_images(records)


def _rename_everywhere(
    ctx: Context,
    entry: DomainEntry,
    others: list[Record],
    old: str,
    new: str,
    fmt: str,
) -> None:
    """Every definition that names image `old` names `new` instead (one transaction)."""

    store = ctx.store
    now = entry_now(ctx, entry)
    with store.transaction():
        for rec in others:
            changed = False
            if rec.snap.domain_xml is not None:
                moves = _moves(rec.snap.domain_xml, old, new, fmt)
                if moves:
                    rec.snap.domain_xml = switch_sources(rec.snap.domain_xml, moves)
                    changed = True
            for disk in rec.snap.disks:
                if disk.source_file == old and disk.snapshot is SnapshotLocation.EXTERNAL:
                    disk.source_file = new
                    changed = True
            if changed:
                put_record(ctx, entry.uuid, rec)
        moves = _moves(now.definition.xml, old, new, fmt)
        if moves:
            xml = switch_sources(now.definition.xml, moves)
            d = now.definition
            store.define(DOMAIN, d.uuid, d.name, xml, persistent=d.persistent)
        rt = now.runtime
        if rt is not None and rt.live_xml and _moves(rt.live_xml, old, new, fmt):
            live = switch_sources(rt.live_xml, _moves(rt.live_xml, old, new, fmt))
            store.put_runtime(rt.replace(live_xml=live))


def _moves(xml: str, old: str, new: str, fmt: str) -> dict[str, tuple[str, str, str]]:
    return {t: (old, new, fmt) for t, (src, _) in disk_sources(xml).items() if src == old}


def _pull(children: list[str], base: str, img: QemuImg, qmp: QmpSession | None) -> None:
    from vmkit.engine import snapshot_disks as sd

    new_base = backing_of(img, base)
    new_fmt = img.info(new_base).format if new_base else None
    open_now = sd.nodes_by_file(qmp) if qmp is not None else {}
    for child in children:
        if qmp is not None and child in open_now:
            sd.stream_live(qmp, child, new_base)
        else:
            sd.rebase_offline(img, child, new_base, new_fmt)
    if qmp is not None:
        sd.drop_unused_nodes(qmp, [base])


def internal_images_backing_others(records: Iterable[Record], rec: Record) -> list[str]:
    """Images of internal snapshot `rec` that external snapshots froze (writing them would
    change what those snapshots' overlays see)."""
    bases = bases_of_external(records)
    return [p for p in internal_images(rec) if p in bases]
