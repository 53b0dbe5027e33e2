"""Domain snapshots: create, list, info, dumpxml, current, parent, delete (revert: snapshot_revert).

Kinds vmkit creates, and how each is reverted to and deleted (every kind can be both):

- internal with memory (running domain, qcow2 disks): `snapshot-save`; revert with
  `snapshot-load` (in place, or in a QEMU started from the snapshot's definition); delete with
  the `snapshot-delete` job or `qemu-img snapshot -d`.
- internal, disks only (shut-off domain, qcow2 disks): `qemu-img snapshot -c / -a / -d`.
- external, disks only (`--disk-only`): overlays; revert puts the domain on fresh overlays over
  the frozen images; delete merges (commit, or pull on branches): see snapshot_chain.py.
- external with memory (a running diskless domain, or memory asked `external`): a vmkit save
  image plus overlays; revert restores the image with `-incoming` on fresh overlays; delete
  merges and removes the image (libvirt cannot delete these).
- definition only (a shut-off diskless domain): revert brings the definition back.

`--quiesce` is refused before anything happens: vmkit has no guest agent client. Mixed internal
and external disks in one snapshot are refused. The snapshot's `<domain>` is the definition the
domain had (the live one when running); reverting to a snapshot of another domain is refused.
Every operation takes the domain's lock; a failure removes what it created and leaves the store
as it was.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from vmkit.engine import states
from vmkit.engine.context import Context
from vmkit.engine.domains import locked_lookup, lookup
from vmkit.engine.runtime import is_active
from vmkit.engine.snapshot_meta import (
    Record,
    children_of,
    current_record,
    descendants_of,
    find_record,
    internal_images,
    load_records,
    make_current,
    new_record,
    put_record,
    remove_record,
    snapshot_dir,
    switch_sources,
)
from vmkit.engine.snapshot_plan import INTERNAL, NO, SnapshotPlan, plan_snapshot
from vmkit.errors import Conflict, InvalidConfig, QemuError, StorageError, WrongState
from vmkit.model.snapshot import DomainSnapshot
from vmkit.state.records import DOMAIN, SNAPSHOT, DomainEntry
from vmkit.storage.qemuimg import QemuImg

if TYPE_CHECKING:
    from vmkit.qemu.qmp import QmpSession

GUEST_AGENT = "org.qemu.guest_agent.0"


def _img() -> QemuImg:
    return QemuImg()


# -- create -----------------------------------------------------------------------------------


def create_snapshot(
    ctx: Context,
    key: str,
    req: DomainSnapshot,
    *,
    disk_only: bool = False,
    quiesce: bool = False,
    no_metadata: bool = False,
) -> DomainSnapshot:
    """Take a snapshot as `req` asks (name, description, memory, disks); returns its metadata."""
    uuid = locked_lookup(ctx, key).uuid
    with ctx.lock(DOMAIN, uuid):
        entry = lookup(ctx, uuid)
        if quiesce:
            _refuse_quiesce(entry)
        records = load_records(ctx, uuid)
        xml = _running_xml(entry)
        plan = _plan_for(ctx, entry, req, records, xml, disk_only)
        parent = current_record(records)
        snap = DomainSnapshot(
            name=plan.name,
            description=req.description,
            state=plan.state,
            parent=parent.name if parent is not None else None,
            creation_time=int(time.time()),
            memory=plan.memory,
            memory_file=plan.memory_file,
            disks=plan.metadata_disks(),
            domain_xml=xml,
            current=True,
        )
        _take(ctx, entry, plan, xml)
        try:
            _record(ctx, entry, plan, snap, records, no_metadata=no_metadata)
        except BaseException:
            _untake(ctx, entry, plan)
            raise
        return snap


def _running_xml(entry: DomainEntry) -> str:
    """The definition the domain runs with (its live XML), else its persistent one."""
    rt = entry.runtime
    return (
        rt.live_xml
        if is_active(entry) and rt is not None and rt.live_xml
        else (entry.definition.xml)
    )


def _plan_for(
    ctx: Context,
    entry: DomainEntry,
    req: DomainSnapshot,
    records: dict[str, Record],
    xml: str,
    disk_only: bool,
) -> SnapshotPlan:
    from vmkit.xml.domain import parse_domain

    active = is_active(entry)
    rt = entry.runtime
    name = req.name or str(int(time.time()))
    if name in records:
        raise Conflict(
            "domain snapshot",
            name,
            f"operation failed: domain '{entry.name}' already has a snapshot named '{name}'",
        )
    plan = plan_snapshot(
        parse_domain(xml),
        req,
        name,
        active=active,
        paused=active and rt is not None and rt.state == states.DomainState.PAUSED,
        disk_only=disk_only,
        memory_dir=snapshot_dir(ctx, entry.uuid),
    )
    _check_new_files(plan)
    return plan


def _refuse_quiesce(entry: DomainEntry) -> None:
    rt = entry.runtime
    xml = rt.live_xml if rt is not None and rt.live_xml else entry.definition.xml
    has_channel = GUEST_AGENT in xml
    why = (
        f"domain '{entry.name}' has a guest agent channel, but vmkit has no guest agent client"
        if has_channel
        else f"domain '{entry.name}' has no QEMU guest agent channel ({GUEST_AGENT}) and vmkit "
        "has no guest agent client"
    )
    raise InvalidConfig(
        f"cannot quiesce the guest's filesystems: {why}; take the snapshot without --quiesce "
        "(a crash-consistent snapshot), or freeze the filesystems in the guest first"
    )


def _check_new_files(plan: SnapshotPlan) -> None:
    wanted = [d.overlay for d in plan.disks if d.overlay] + (
        [plan.memory_file] if plan.memory_file else []
    )
    for path in wanted:
        if Path(path).exists():
            raise Conflict(
                "file",
                path,
                f"snapshot file {path} already exists (choose another snapshot name or file)",
            )
        if not Path(path).parent.is_dir() and plan.memory_file != path:
            raise InvalidConfig(f"directory of snapshot file {path} does not exist", value=path)


def session_of(entry: DomainEntry) -> QmpSession:
    """A QMP session to the running domain's QEMU."""
    from vmkit.qemu.qmp import QmpSession

    rt = entry.runtime
    assert rt is not None and rt.qmp_socket is not None
    return QmpSession.connect(rt.qmp_socket, timeout=5.0)


def _take(ctx: Context, entry: DomainEntry, plan: SnapshotPlan, xml: str) -> None:
    """Do the snapshot's disk and memory work; all of it or (on failure) none."""
    from vmkit.engine import snapshot_disks as sd

    active = is_active(entry)
    if not active:
        if plan.external:
            sd.take_external_offline(_img(), plan.disks)
        elif plan.disks:
            sd.take_internal_offline(_img(), plan.name, plan.disks)
        return
    with session_of(entry) as qmp:
        if plan.memory is INTERNAL:
            sd.take_internal_live(qmp, plan.name, plan.disks)
        elif plan.memory is NO:
            sd.take_external_live(qmp, plan.disks)
        else:
            _take_external_memory(ctx, entry, qmp, plan, xml)


def _take_external_memory(
    ctx: Context,
    entry: DomainEntry,
    qmp: QmpSession,
    plan: SnapshotPlan,
    xml: str,
) -> None:
    from vmkit.engine import snapshot_disks as sd
    from vmkit.engine.saves import write_state

    assert plan.memory_file is not None
    rt = entry.runtime
    was_running = rt is not None and rt.state != states.DomainState.PAUSED
    memory = Path(plan.memory_file)
    memory.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    if not plan.disks:
        write_state(qmp, memory, xml, running=was_running, was_running=was_running, keep=True)
        return
    write_state(qmp, memory, xml, running=was_running, was_running=was_running, keep=False)
    try:
        sd.take_external_live(qmp, plan.disks)
    except BaseException:
        memory.unlink(missing_ok=True)
        if was_running:
            with contextlib.suppress(QemuError):
                qmp.execute("cont")
        raise
    if was_running:
        qmp.execute("cont")


def _record(
    ctx: Context,
    entry: DomainEntry,
    plan: SnapshotPlan,
    snap: DomainSnapshot,
    records: dict[str, Record],
    *,
    no_metadata: bool,
) -> None:
    """Store the snapshot (current) and, for overlays, the domain's new images: one transaction."""
    store = ctx.store
    with store.transaction():
        moves = {d.target: (d.source, d.overlay, "qcow2") for d in plan.disks if d.overlay}
        if moves:
            d = entry.definition
            xml = switch_sources(d.xml, moves)
            store.define(DOMAIN, d.uuid, d.name, xml, persistent=d.persistent)
            rt = entry.runtime
            if rt is not None and rt.live_xml:
                live = switch_sources(rt.live_xml, moves)
                store.put_runtime(rt.replace(live_xml=live))
        if no_metadata:
            return
        rec = new_record(snap)
        make_current(ctx, entry.uuid, records, None)
        put_record(ctx, entry.uuid, rec)
        store.log_event(SNAPSHOT, rec.uuid, rec.name, "created", entry.uuid)


def _untake(ctx: Context, entry: DomainEntry, plan: SnapshotPlan) -> None:
    """Best effort after a failure to record: drop what `_take` made."""
    from vmkit.engine import snapshot_disks as sd

    with contextlib.suppress(QemuError, StorageError, OSError):
        if plan.memory_file:
            Path(plan.memory_file).unlink(missing_ok=True)
        if plan.external:
            if is_active(entry):
                with session_of(entry) as qmp:
                    for d in plan.disks:
                        assert d.overlay is not None
                        sd.commit_live(qmp, d.overlay, d.source)
            for d in plan.disks:
                if d.overlay:
                    Path(d.overlay).unlink(missing_ok=True)
        elif plan.disks and is_active(entry):
            with session_of(entry) as qmp:
                sd.delete_internal_live(qmp, plan.name, [d.source for d in plan.disks])
        elif plan.disks:
            sd.delete_internal_offline(_img(), plan.name, [d.source for d in plan.disks])


# -- queries ----------------------------------------------------------------------------------


def list_snapshots(ctx: Context, key: str) -> tuple[DomainEntry, list[DomainSnapshot]]:
    """The domain and its snapshots, by name."""
    entry = lookup(ctx, key)
    records = load_records(ctx, entry.uuid)
    return entry, [records[n].snap for n in sorted(records)]


def get_snapshot(ctx: Context, key: str, name: str | None) -> DomainSnapshot:
    """Snapshot `name` of the domain (None: the current one; WrongState-like NotFound if none)."""
    entry = lookup(ctx, key)
    records = load_records(ctx, entry.uuid)
    if name is None:
        rec = current_record(records)
        if rec is None:
            raise _no_current()
        return rec.snap
    return find_record(ctx, entry, records, name).snap


def _no_current() -> Exception:
    from vmkit.errors import NotFound

    return NotFound(
        "domain snapshot",
        "current",
        "Domain snapshot not found: the domain does not have a current snapshot",
    )


@dataclass(frozen=True)
class SnapshotInfo:
    """What `snapshot-info` prints."""

    name: str
    domain: str
    current: bool
    state: str
    location: str
    parent: str | None
    children: int
    descendants: int
    metadata: bool = True


def snapshot_info(ctx: Context, key: str, name: str | None) -> SnapshotInfo:
    entry = lookup(ctx, key)
    records = load_records(ctx, entry.uuid)
    if name is None:
        rec = current_record(records)
        if rec is None:
            raise _no_current()
    else:
        rec = find_record(ctx, entry, records, name)
    snap = rec.snap
    return SnapshotInfo(
        name=rec.name,
        domain=entry.name,
        current=snap.current,
        state=str(snap.state or ""),
        location="external" if snap.is_external else "internal",
        parent=snap.parent,
        children=len(children_of(records, rec.name)),
        descendants=len(descendants_of(records, rec.name)),
    )


def set_current_snapshot(ctx: Context, key: str, name: str) -> DomainSnapshot:
    """Make `name` the current snapshot (the parent of the next one); nothing else changes."""
    uuid = locked_lookup(ctx, key).uuid
    with ctx.lock(DOMAIN, uuid):
        entry = lookup(ctx, uuid)
        records = load_records(ctx, uuid)
        rec = find_record(ctx, entry, records, name)
        make_current(ctx, uuid, records, rec.name)
        return rec.snap


# -- delete -----------------------------------------------------------------------------------


def delete_snapshot(
    ctx: Context,
    key: str,
    name: str,
    *,
    children: bool = False,
    children_only: bool = False,
    metadata_only: bool = False,
) -> list[str]:
    """Delete a snapshot (and/or its descendants, deepest first); returns the names deleted.

    `metadata_only` forgets the snapshots and leaves every image and file as it is (libvirt's
    --metadata). Otherwise each snapshot's state is removed: internal snapshots from the images,
    external ones merged away (snapshot_chain.py) and their memory image deleted.
    `children` and `children_only` exclude each other, as in libvirt.
    """
    if children and children_only:
        raise InvalidConfig("Options --children and --children-only are mutually exclusive")
    uuid = locked_lookup(ctx, key).uuid
    with ctx.lock(DOMAIN, uuid):
        entry = lookup(ctx, uuid)
        records = load_records(ctx, uuid)
        rec = find_record(ctx, entry, records, name)
        order = descendants_of(records, rec.name) if children or children_only else []
        if not children_only:
            order.append(rec)
        done: list[str] = []
        for victim in order:
            if not metadata_only:
                _delete_data(ctx, lookup(ctx, uuid), records, victim)
            remove_record(ctx, uuid, records, victim.name)
            done.append(victim.name)
        return done


def _delete_data(ctx: Context, entry: DomainEntry, records: dict[str, Record], rec: Record) -> None:
    from vmkit.engine import snapshot_disks as sd
    from vmkit.engine.snapshot_chain import merge_away

    img = _img()
    snap = rec.snap
    active = is_active(entry)
    if snap.is_external:
        if active:
            with session_of(entry) as qmp:
                merge_away(ctx, entry, records, rec, img, qmp)
        else:
            merge_away(ctx, entry, records, rec, img, None)
        if snap.memory_file:
            _remove_memory_file(ctx, entry, snap.memory_file)
        return
    files = internal_images(rec)
    if not files:
        return
    if active:
        with session_of(entry) as qmp:
            open_now = sd.nodes_by_file(qmp)
            live = [f for f in files if f in open_now]
            if live:
                _delete_internal_live(qmp, rec.name, live, entry.name)
        files = [f for f in files if f not in live]
    sd.delete_internal_offline(img, rec.name, files)


def _delete_internal_live(qmp: QmpSession, name: str, files: list[str], domain: str) -> None:
    from vmkit.engine import snapshot_disks as sd

    try:
        sd.delete_internal_live(qmp, name, files)
    except QemuError as exc:
        raise WrongState(
            f"cannot delete internal snapshot '{name}' while domain '{domain}' runs: {exc} "
            "(shut the domain down and try again)"
        ) from exc


def _remove_memory_file(ctx: Context, entry: DomainEntry, path: str) -> None:
    try:
        Path(path).unlink(missing_ok=True)
    except OSError as exc:
        raise StorageError(f"cannot remove snapshot memory image {path}: {exc.strerror}") from exc
    with contextlib.suppress(OSError):
        snapshot_dir(ctx, entry.uuid).rmdir()  # only when empty
