"""Domain definitions and queries: define, undefine, list, dominfo, domstate, dumpxml, edit,
autostart, setmem/setvcpus for the next boot.

Every operation reconciles the records it reads with the processes before it answers.
"""

from __future__ import annotations

import os
import time

from vmkit.engine import states
from vmkit.engine.faults import fault_point
from vmkit.engine.states import is_active
from vmkit.errors import Conflict, InvalidConfig, NotFound, WrongState
from vmkit.state.frozen import Frozen
from vmkit.state.records import DOMAIN, Definition, DomainEntry

# Start-up cost (`vmkit list`, `dominfo`): typing, dataclasses, engine.runtime (subprocess, QEMU
# process handling) and the model are imported only where needed.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from vmkit.engine.context import Context
    from vmkit.model.domain import Domain

_MAC_PATTERN = r"<mac address=['\"]([0-9a-fA-F:]{17})['\"]"  # compiled where used: `re` is lazy


def lookup(ctx: Context, key: str) -> DomainEntry:
    """The domain named by id, uuid or name, reconciled; NotFound like virsh.

    Reconciling changes records and may kill or restart a QEMU, so it happens under the
    domain's lock (re-entrant: callers that hold it already do not wait), and only when the
    record may be stale: a start in progress is never taken for a dead one.
    """
    entry = locked_lookup(ctx, key)
    if not _needs_reconcile(entry):
        return entry
    from vmkit.engine.runtime import reconcile

    with ctx.lock(DOMAIN, entry.uuid):
        try:
            fresh = reconcile(ctx, ctx.store.lookup_domain(entry.uuid))
        except NotFound:
            fresh = None
    if fresh is None:
        raise NotFound("domain", key, f"failed to get domain '{key}'")
    return fresh


def locked_lookup(ctx: Context, key: str) -> DomainEntry:
    """Resolve `key` to a uuid for locking (without reconciling: the caller locks first)."""
    try:
        return ctx.store.lookup_domain(key)
    except NotFound:
        raise NotFound("domain", key, f"failed to get domain '{key}'") from None


def parse_and_check(ctx: Context, xml_text: str | bytes, source: str) -> Domain:
    """Parse, validate against this host's QEMU, and fill libvirt's defaults."""
    from vmkit.model.defaults import complete_domain
    from vmkit.model.validate import validate_domain
    from vmkit.xml.domain import parse_domain

    dom = parse_domain(xml_text, source=source)
    machines = ctx.qemu_info().machine_names()
    try:
        validate_domain(dom, machines=machines)
    except InvalidConfig as exc:
        exc.message = f"{source}: {exc.message}"  # name the file, as parse errors do
        raise
    import re

    macs = re.compile(_MAC_PATTERN)
    taken = [m for d in ctx.store.list(DOMAIN) if d.uuid != dom.uuid for m in macs.findall(d.xml)]
    return complete_domain(dom, taken_macs=taken)


def define(ctx: Context, xml_text: str | bytes, source: str = "<string>") -> Definition:
    """Add or update a persistent definition (a running domain keeps its live config)."""
    from vmkit.xml.domain import render_domain

    dom = parse_and_check(ctx, xml_text, source)
    text = render_domain(dom, inactive=True)
    with ctx.lock(DOMAIN, dom.uuid):
        fault_point("define:before-commit")
        store = ctx.store
        with store.transaction():
            definition = store.define(DOMAIN, dom.uuid, dom.name, text, persistent=True)
            store.log_event(DOMAIN, dom.uuid, dom.name, "defined")
        fault_point("define:after-commit")
    return definition


def undefine(
    ctx: Context, key: str, *, managed_save: bool = False, snapshots_metadata: bool = False
) -> bool:
    """Remove the persistent definition; a running domain becomes transient (False then).

    Like libvirt, a managed save image or snapshot metadata must be asked to go along
    (`managed_save`, `snapshots_metadata`); otherwise they would be orphaned.
    """
    from vmkit.state.records import SNAPSHOT

    uuid = locked_lookup(ctx, key).uuid
    with ctx.lock(DOMAIN, uuid):
        entry = lookup(ctx, uuid)
        if not entry.definition.persistent:
            raise WrongState(
                f"Requested operation is not valid: cannot undefine transient domain "
                f"'{entry.name}'",
                state="transient",
                required="persistent",
            )
        save = managed_save_path(ctx, uuid)
        if save is not None and not managed_save:
            raise WrongState(
                "Requested operation is not valid: Refusing to undefine while domain managed "
                f"save image exists (domain '{entry.name}'; use --managed-save to remove it)",
                state="managed save",
                required="no managed save",
            )
        store = ctx.store
        snaps = store.list(SNAPSHOT, parent=uuid)
        if snaps and not snapshots_metadata:
            raise WrongState(
                f"Requested operation is not valid: cannot delete inactive domain "
                f"'{entry.name}' with {len(snaps)} snapshots (use --snapshots-metadata)",
                state="has snapshots",
                required="no snapshots",
            )
        fault_point("undefine:before-commit")
        with store.transaction():
            for snap in snaps:
                store.undefine(SNAPSHOT, snap.uuid, parent=uuid)
            gone = store.undefine(DOMAIN, uuid)
            store.log_event(DOMAIN, uuid, entry.name, "undefined")
        fault_point("undefine:after-commit")
        if save is not None:
            os.unlink(save)
        return gone


class DomainRow(Frozen):
    """One line of `list`."""

    _fields = ("id", "name", "uuid", "state", "reason", "persistent", "autostart", "title")
    __slots__ = _fields
    id: int | None
    name: str
    uuid: str
    state: str
    reason: str
    persistent: bool
    autostart: bool
    title: str

    def __init__(
        self,
        id: int | None,
        name: str,
        uuid: str,
        state: str,
        reason: str,
        persistent: bool,
        autostart: bool,
        title: str,
    ) -> None:
        self._init(id, name, uuid, state, reason, persistent, autostart, title)


def list_domains(ctx: Context) -> list[DomainRow]:
    rows: list[DomainRow] = []
    for entry in ctx.store.domains():
        fresh = _reconcile_quietly(ctx, entry)
        if fresh is not None:
            rows.append(_row(ctx, fresh))
    return rows


def _reconcile_quietly(ctx: Context, entry: DomainEntry) -> DomainEntry | None:
    """Reconcile without waiting: a domain whose lock is held is shown as recorded."""
    if not _needs_reconcile(entry):
        return entry
    from vmkit.engine.runtime import reconcile

    try:
        with ctx.lock(DOMAIN, entry.uuid, timeout=0):
            return reconcile(ctx, ctx.store.lookup_domain(entry.uuid))
    except NotFound:
        return None
    except Conflict:
        return entry  # busy: another command is handling it


def _needs_reconcile(entry: DomainEntry) -> bool:
    """A transient domain without a run, or a run whose QEMU may have gone."""
    if entry.runtime is None:
        return not entry.definition.persistent
    return _maybe_stale(entry)


def _maybe_stale(entry: DomainEntry) -> bool:
    from vmkit.qemu.process import process_state

    rt = entry.runtime
    if rt is None or rt.state == states.STARTING or rt.pid is None or rt.pid_start is None:
        return True
    return process_state(rt.pid, rt.pid_start) != "running"


def state_of(ctx: Context, entry: DomainEntry) -> tuple[str, str]:
    """(state, reason) as virsh prints them."""
    rt = entry.runtime
    if rt is None or rt.state == states.STARTING:
        return states.DomainState.SHUTOFF, last_stop_reason(ctx, entry)
    return rt.state, rt.reason or states.UNKNOWN


def last_stop_reason(ctx: Context, entry: DomainEntry) -> str:
    for ev in ctx.store.events(uuid=entry.uuid, event="stopped", last=1):
        return ev.detail or states.UNKNOWN
    return states.UNKNOWN


def _row(ctx: Context, entry: DomainEntry) -> DomainRow:
    state, reason = state_of(ctx, entry)
    title = ""
    if "<title>" in entry.definition.xml:
        from vmkit.engine.summary import summarize

        title = summarize(entry.definition.xml).title
    return DomainRow(
        entry.domain_id if is_active(entry) else None,
        entry.name,
        entry.uuid,
        state,
        reason,
        entry.definition.persistent,
        entry.definition.autostart,
        title,
    )


class DomainInfo(Frozen):
    """What `dominfo` prints."""

    _fields = (
        "id",
        "name",
        "uuid",
        "os_type",
        "state",
        "cpus",
        "cpu_time",
        "max_memory_kib",
        "used_memory_kib",
        "persistent",
        "autostart",
        "managed_save",
    )
    __slots__ = _fields
    id: int | None
    name: str
    uuid: str
    os_type: str
    state: str
    cpus: int
    cpu_time: float | None
    max_memory_kib: int
    used_memory_kib: int
    persistent: bool
    autostart: bool
    managed_save: bool

    def __init__(
        self,
        id: int | None,
        name: str,
        uuid: str,
        os_type: str,
        state: str,
        cpus: int,
        cpu_time: float | None,
        max_memory_kib: int,
        used_memory_kib: int,
        persistent: bool,
        autostart: bool,
        managed_save: bool,
    ) -> None:
        self._init(
            id,
            name,
            uuid,
            os_type,
            state,
            cpus,
            cpu_time,
            max_memory_kib,
            used_memory_kib,
            persistent,
            autostart,
            managed_save,
        )


def dominfo(ctx: Context, key: str) -> DomainInfo:
    entry = lookup(ctx, key)
    active = is_active(entry)
    rt = entry.runtime
    xml = rt.live_xml if active and rt is not None and rt.live_xml else entry.definition.xml
    from vmkit.engine.summary import summarize

    s = summarize(xml)
    state, _ = state_of(ctx, entry)
    cpu_time = _cpu_seconds(rt.pid) if active and rt is not None and rt.pid else None
    return DomainInfo(
        entry.domain_id if active else None,
        entry.name,
        entry.uuid,
        s.os_type,
        state,
        s.vcpus,
        cpu_time,
        s.max_memory_kib,
        s.used_memory_kib,
        entry.definition.persistent,
        entry.definition.autostart,
        managed_save_path(ctx, entry.uuid) is not None,
    )


def managed_save_path(ctx: Context, uuid: str) -> str | None:
    path = ctx.paths.data_dir / "save" / f"{uuid}.save"
    return str(path) if path.exists() else None


def _cpu_seconds(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def dumpxml(ctx: Context, key: str, *, inactive: bool = False) -> str:
    """The live XML of a running domain (with id), else the persistent definition."""
    entry = lookup(ctx, key)
    rt = entry.runtime
    if inactive or not is_active(entry) or rt is None:
        return entry.definition.xml
    from vmkit.xml.domain import parse_domain, render_domain

    dom = parse_domain(rt.live_xml or entry.definition.xml)
    dom.id = rt.domain_id
    text: str = render_domain(dom)
    return text


def set_autostart(ctx: Context, key: str, enable: bool) -> Definition:
    entry = lookup(ctx, key)
    return ctx.store.set_autostart(DOMAIN, entry.uuid, enable)


def edit_xml(ctx: Context, key: str, new_xml: str) -> Definition | None:
    """Replace the definition with `new_xml` after validating it; None when unchanged."""
    entry = lookup(ctx, key)
    if new_xml.strip() == entry.definition.xml.strip():
        return None
    dom = parse_and_check(ctx, new_xml, "edited XML")
    if dom.uuid != entry.uuid:
        raise InvalidConfig(
            f"the uuid of domain '{entry.name}' cannot be changed by edit", xpath="/domain/uuid"
        )
    return define(ctx, new_xml, "edited XML")


def set_memory(ctx: Context, key: str, kib: int, *, maximum: bool = False) -> Definition:
    """Change memory (or the maximum) in the persistent definition: takes effect at next boot."""
    from vmkit.xml.domain import parse_domain, render_domain

    entry = lookup(ctx, key)
    dom = parse_domain(entry.definition.xml)
    if kib <= 0:
        raise InvalidConfig(f"invalid memory size: {kib} KiB", value=kib)
    if maximum:
        dom.memory_kib = kib
        if dom.current_memory_kib is not None and dom.current_memory_kib > kib:
            dom.current_memory_kib = kib
    else:
        if kib > dom.memory_kib:
            raise InvalidConfig(
                f"cannot set memory higher than max memory ({dom.memory_kib} KiB)", value=kib
            )
        dom.current_memory_kib = kib
    return define(ctx, render_domain(dom, inactive=True), "setmem")


def set_vcpus(ctx: Context, key: str, count: int, *, maximum: bool = False) -> Definition:
    """Change the vcpu count (or maximum) in the persistent definition (next boot)."""
    from vmkit.xml.domain import parse_domain, render_domain

    entry = lookup(ctx, key)
    dom = parse_domain(entry.definition.xml)
    if count < 1:
        raise InvalidConfig(f"invalid vcpu count: {count}", value=count)
    if maximum:
        dom.vcpu.count = count
        if dom.vcpu.current is not None and dom.vcpu.current > count:
            dom.vcpu.current = count
        if dom.cpu is not None and dom.cpu.topology is not None:
            dom.cpu.topology = None  # a changed maximum invalidates the old topology
    else:
        if count > dom.vcpu.count:
            raise InvalidConfig(
                f"requested vcpus ({count}) is greater than max allowable vcpus ({dom.vcpu.count})",
                value=count,
            )
        dom.vcpu.current = None if count == dom.vcpu.count else count
    return define(ctx, render_domain(dom, inactive=True), "setvcpus")


def uptime_of(entry: DomainEntry) -> float | None:
    rt = entry.runtime
    return time.time() - rt.started if rt is not None and is_active(entry) else None
