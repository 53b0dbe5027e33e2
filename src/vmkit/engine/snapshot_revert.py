"""snapshot-revert: bring a domain back to one of its snapshots.

The domain ends in the snapshot's state (running, paused, or shut off for disk-only and
shut-off snapshots) unless `running` says otherwise (virsh's --running / --paused). Its
definition becomes the snapshot's. How, per kind:

- internal with memory: `snapshot-load` in the running QEMU when it runs the snapshot's very
  definition; otherwise the domain is stopped and started from the snapshot's definition, paused
  at -S, and the snapshot loaded into it;
- internal disks-only, or definition only: the domain is stopped, `qemu-img snapshot -a`;
- external: the domain is stopped and put on fresh qcow2 overlays over the snapshot's frozen
  images (the images stay as they were, so the snapshot can be reverted to again); the overlays
  it leaves are deleted when nothing needs them (snapshot_chain.py); a memory image is then
  restored with -incoming.

An internal snapshot whose image has since been frozen by an external snapshot is refused:
loading it would write into an image that overlays depend on. A transient domain is never
stopped by a revert (it would cease to exist): that is refused too.
"""

from __future__ import annotations

import signal
from pathlib import Path

from vmkit.engine import states
from vmkit.engine.context import Context
from vmkit.engine.domains import locked_lookup, lookup
from vmkit.engine.runtime import finish_run, is_active, launch_domain, qemu_of
from vmkit.engine.snapshot_chain import (
    current_sources,
    disposable,
    internal_images_backing_others,
)
from vmkit.engine.snapshot_meta import (
    Record,
    external_bases,
    find_record,
    internal_images,
    load_records,
    make_current,
    switch_sources,
)
from vmkit.engine.snapshot_plan import overlay_path
from vmkit.engine.snapshots import session_of
from vmkit.errors import InvalidConfig, WrongState
from vmkit.model.snapshot import DomainSnapshot, SnapshotState
from vmkit.state.records import DOMAIN, SNAPSHOT, DomainEntry
from vmkit.storage.qemuimg import QemuImg


def revert_snapshot(
    ctx: Context, key: str, name: str, *, running: bool | None = None
) -> DomainSnapshot:
    """Revert the domain to its snapshot `name`; returns the snapshot (now current)."""
    uuid = locked_lookup(ctx, key).uuid
    with ctx.lock(DOMAIN, uuid):
        entry = lookup(ctx, uuid)
        records = load_records(ctx, uuid)
        rec = find_record(ctx, entry, records, name)
        if rec.snap.domain_xml is None:
            raise InvalidConfig(f"snapshot '{name}' has no saved domain definition to revert to")
        if rec.snap.is_external:
            _revert_external(ctx, entry, records, rec, running)
        else:
            _refuse_frozen(records, rec)
            if rec.snap.has_memory:
                _revert_internal_live(ctx, entry, rec, running)
            else:
                _revert_offline(ctx, entry, rec, running)
        records = load_records(ctx, uuid)
        make_current(ctx, uuid, records, rec.name)
        ctx.store.log_event(SNAPSHOT, records[rec.name].uuid, rec.name, "reverted", uuid)
        return records[rec.name].snap


def _wants_running(snap: DomainSnapshot, running: bool | None) -> bool:
    return snap.state == SnapshotState.RUNNING if running is None else running


def _refuse_frozen(records: dict[str, Record], rec: Record) -> None:
    frozen = internal_images_backing_others(records.values(), rec)
    if frozen:
        raise WrongState(
            f"cannot revert to internal snapshot '{rec.name}': its image {frozen[0]} has since "
            "been frozen by an external snapshot (loading it would change what that snapshot's "
            "overlays see); revert to or delete the external snapshots first",
            state="frozen",
            required="writable",
        )


def _stop(ctx: Context, entry: DomainEntry) -> DomainEntry:
    """Stop a running domain for a revert (QEMU is killed: its state is being discarded)."""
    from vmkit.qemu.process import kill_process, wait_dead

    if not is_active(entry):
        return entry
    if not entry.definition.persistent:
        raise WrongState(
            f"cannot revert transient domain '{entry.name}' this way: it would have to be "
            "stopped, and a stopped transient domain no longer exists (define it first)",
            state="transient",
            required="persistent",
        )
    rt = entry.runtime
    assert rt is not None
    proc = qemu_of(rt)
    if proc is not None:
        kill_process(proc, signal.SIGTERM)
        if not wait_dead(proc, 2.0):
            kill_process(proc, signal.SIGKILL)
            wait_dead(proc, 5.0)
    finish_run(ctx, entry, states.FROM_SNAPSHOT)
    return ctx.store.lookup_domain(entry.uuid)


def _define(ctx: Context, entry: DomainEntry, xml: str) -> None:
    d = entry.definition
    ctx.store.define(DOMAIN, d.uuid, d.name, xml, persistent=d.persistent)


def _boot(
    ctx: Context,
    uuid: str,
    *,
    running: bool,
    load: str | None = None,
    files: list[str] | None = None,
) -> None:
    """Start the domain from its (reverted) definition; `load` an internal snapshot first."""
    from vmkit.engine import snapshot_disks as sd
    from vmkit.engine.saves import kill_failed_start
    from vmkit.xml.domain import parse_domain

    entry = ctx.store.lookup_domain(uuid)
    dom = parse_domain(entry.definition.xml)
    paused = not running or load is not None
    launch_domain(ctx, entry.definition, dom, paused=paused)
    entry = ctx.store.lookup_domain(uuid)
    if load is not None:
        try:
            with session_of(entry) as qmp:
                sd.load_internal_live(qmp, load, files or [])
                if running:
                    qmp.execute("cont")
        except BaseException:
            kill_failed_start(ctx, uuid)
            raise
    state = states.DomainState.RUNNING if running else states.DomainState.PAUSED
    ctx.store.set_state(uuid, state, states.FROM_SNAPSHOT)


def _revert_internal_live(
    ctx: Context, entry: DomainEntry, rec: Record, running: bool | None
) -> None:
    from vmkit.engine import snapshot_disks as sd

    want = _wants_running(rec.snap, running)
    files = internal_images(rec)
    rt = entry.runtime
    if is_active(entry) and rt is not None and rt.live_xml == rec.snap.domain_xml:
        with session_of(entry) as qmp:
            sd.load_internal_live(qmp, rec.name, files)
            qmp.execute("cont" if want else "stop")
        state = states.DomainState.RUNNING if want else states.DomainState.PAUSED
        ctx.store.set_state(entry.uuid, state, states.FROM_SNAPSHOT)
        assert rec.snap.domain_xml is not None
        _define(ctx, entry, rec.snap.domain_xml)
        return
    entry = _stop(ctx, entry)
    assert rec.snap.domain_xml is not None
    _define(ctx, entry, rec.snap.domain_xml)
    _boot(ctx, entry.uuid, running=want, load=rec.name, files=files)


def _revert_offline(ctx: Context, entry: DomainEntry, rec: Record, running: bool | None) -> None:
    from vmkit.engine import snapshot_disks as sd

    entry = _stop(ctx, entry)
    sd.apply_internal_offline(QemuImg(), rec.name, internal_images(rec))
    assert rec.snap.domain_xml is not None
    _define(ctx, entry, rec.snap.domain_xml)
    if running is not None:
        _boot(ctx, entry.uuid, running=running)


def _revert_external(
    ctx: Context,
    entry: DomainEntry,
    records: dict[str, Record],
    rec: Record,
    running: bool | None,
) -> None:
    snap = rec.snap
    memory = Path(snap.memory_file) if snap.memory_file else None
    image = None
    if memory is not None:
        from vmkit.engine.savefile import read_header

        image = read_header(memory)  # a damaged memory image stops the revert before anything
    leaving = {src for src, _ in current_sources(entry).values()}
    entry = _stop(ctx, entry)
    leaving |= {src for src, _ in current_sources(entry).values()}
    xml, fresh = _onto_fresh_overlays(ctx, entry, rec)
    entry = ctx.store.lookup_domain(entry.uuid)
    img = QemuImg()
    for path in sorted(leaving - set(fresh)):
        if disposable(ctx, entry, records.values(), path, img):
            Path(path).unlink(missing_ok=True)
    if memory is not None and image is not None:
        from vmkit.engine.saves import restore_image
        from vmkit.xml.domain import parse_domain

        want = _wants_running(snap, running)
        dom = parse_domain(xml)
        restore_image(ctx, memory, image, dom, running=want, reason=states.FROM_SNAPSHOT)
        if not want:
            ctx.store.set_state(entry.uuid, states.DomainState.PAUSED, states.FROM_SNAPSHOT)
    elif running is not None:
        _boot(ctx, entry.uuid, running=running)


def _onto_fresh_overlays(ctx: Context, entry: DomainEntry, rec: Record) -> tuple[str, list[str]]:
    """Define the snapshot's XML with new overlays over its frozen images; (XML, overlays)."""
    from vmkit.engine import snapshot_disks as sd

    assert rec.snap.domain_xml is not None
    fresh = [
        (base, fmt, _fresh_overlay(base, rec.name)) for base, fmt in external_bases(rec).values()
    ]
    targets = list(external_bases(rec))
    sd.create_overlays(QemuImg(), fresh)
    moves = {
        t: (base, overlay, "qcow2") for t, (base, _, overlay) in zip(targets, fresh, strict=True)
    }
    xml = switch_sources(rec.snap.domain_xml, moves)
    try:
        _define(ctx, entry, xml)
    except BaseException:
        for _, _, overlay in fresh:
            Path(overlay).unlink(missing_ok=True)
        raise
    return xml, [overlay for _, _, overlay in fresh]


def _fresh_overlay(base: str, name: str) -> str:
    """A file name for a new overlay over `base` that is not taken."""
    first = overlay_path(base, name)
    candidate, n = first, 0
    while Path(candidate).exists():
        n += 1
        candidate = f"{first}.{n}"
    return candidate
