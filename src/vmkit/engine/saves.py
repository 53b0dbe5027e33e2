"""save, restore, managedsave, managedsave-remove, save-image-dumpxml.

A save stops the guest, streams its state with QEMU's migration to an `fd:` (the save file's
descriptor, passed with `getfd`, after vmkit's header: savefile.py), quits QEMU and records
the domain `shut off (saved)`. The file is written under a temporary name beside the target and
renamed only once complete: a failure (disk full, QEMU error) removes it, resumes the guest if
it was running, and leaves the store as it was.

A restore checks the whole image first (ours, finished, not truncated: nothing is started for a
bad file), starts QEMU from the saved XML with `-incoming fd:N` on the image's descriptor
(placed after the header), so QEMU loads the stream while it starts, as it would by hand; then
continues the guest unless it is to stay paused. A restored domain that is not defined
becomes a transient one, as in libvirt.

Managed save writes to `<data_dir>/save/<uuid>.save` (what `dominfo` reports); `start` resumes
from it through `resume_managed_save` and removes it once the guest runs again.
"""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path

from vmkit.engine import states
from vmkit.engine.context import Context
from vmkit.engine.domains import locked_lookup, lookup, parse_and_check
from vmkit.engine.runtime import finish_run, is_active, launch_domain, qemu_of
from vmkit.engine.savefile import SaveHeader, build_header, length_field, read_header
from vmkit.errors import Conflict, InvalidConfig, QemuError, StorageError, WrongState
from vmkit.state.records import DOMAIN, Definition, DomainEntry

TYPE_CHECKING = False  # typing costs ~3 ms at start-up; qmp and the model stay lazy too
if TYPE_CHECKING:
    from vmkit.model.domain import Domain
    from vmkit.qemu.qmp import QmpSession


def managed_save_file(ctx: Context, uuid: str) -> Path:
    """Where the managed save image of domain `uuid` lives (domains.managed_save_path reads it)."""
    return ctx.paths.data_dir / "save" / f"{uuid}.save"


# -- save -------------------------------------------------------------------------------------


def save(ctx: Context, key: str, path: str | Path, *, running: bool | None = None) -> DomainEntry:
    """Save a running or paused domain's state to `path` and stop it; returns the entry before.

    `running` overrides the state a restore resumes to (default: the state at save time).
    """
    target = Path(path).absolute()
    uuid = locked_lookup(ctx, key).uuid
    with ctx.lock(DOMAIN, uuid):
        entry = _active(ctx, uuid, "save")
        _save_and_stop(ctx, entry, target, running)
        return entry


def managed_save(ctx: Context, key: str, *, running: bool | None = None) -> DomainEntry:
    """Save to the domain's managed save image; `start` resumes from it."""
    uuid = locked_lookup(ctx, key).uuid
    with ctx.lock(DOMAIN, uuid):
        entry = _active(ctx, uuid, "save")
        if not entry.definition.persistent:
            raise WrongState(
                f"Requested operation is not valid: cannot do managed save for transient "
                f"domain '{entry.name}'",
                state="transient",
                required="persistent",
            )
        target = managed_save_file(ctx, uuid)
        target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        _save_and_stop(ctx, entry, target, running)
        return entry


def managed_save_remove(ctx: Context, key: str) -> tuple[DomainEntry, bool]:
    """Remove the managed save image; (entry, whether there was one)."""
    uuid = locked_lookup(ctx, key).uuid
    with ctx.lock(DOMAIN, uuid):
        entry = lookup(ctx, uuid)
        target = managed_save_file(ctx, uuid)
        try:
            target.unlink()
        except FileNotFoundError:
            return entry, False
        except OSError as exc:
            why = exc.strerror
            raise StorageError(f"cannot remove managed save image {target}: {why}") from exc
        ctx.store.log_event(DOMAIN, uuid, entry.name, "managedsave-removed")
        return entry, True


def _active(ctx: Context, key: str, doing: str) -> DomainEntry:
    entry = lookup(ctx, key)
    if not is_active(entry):
        raise WrongState(
            f"Failed to {doing} domain '{entry.name}': Requested operation is not valid: "
            "domain is not running",
            state=states.DomainState.SHUTOFF,
            required="running",
        )
    return entry


def _save_and_stop(ctx: Context, entry: DomainEntry, target: Path, running: bool | None) -> None:
    from vmkit.qemu.process import kill_process, wait_dead

    rt = entry.runtime
    assert rt is not None
    was_running = rt.state != states.DomainState.PAUSED
    xml = rt.live_xml or entry.definition.xml
    resume_to = was_running if running is None else running
    with _session(entry) as qmp:
        write_state(qmp, target, xml, running=resume_to, was_running=was_running, keep=False)
        with contextlib.suppress(QemuError):
            qmp.execute("quit")
    proc = qemu_of(rt)
    if proc is not None and not wait_dead(proc, 5.0):
        kill_process(proc, signal.SIGKILL)
        wait_dead(proc, 2.0)
    finish_run(ctx, entry, states.SAVED)


def write_state(
    qmp: QmpSession, target: Path, xml: str, *, running: bool, was_running: bool, keep: bool
) -> None:
    """Stop the guest and write a complete save image of it to `target`.

    `keep` continues a guest that was running once the image is written (a memory snapshot);
    otherwise the guest stays stopped for the caller to quit. On any failure the partial file
    is removed and a guest that was running continues.
    """
    from vmkit.engine.migration import migrate_to_fd

    header = build_header(xml, running=running, root_ports=_root_ports(qmp))
    part = target.with_name(f".{target.name}.vmkit-part")
    fd = _create(part, target)
    try:
        try:
            _write_all(fd, header, part)
            if was_running:
                qmp.execute("stop")
            migrate_to_fd(qmp, fd)
            size = os.fstat(fd).st_size
            offset, data = length_field(header, size - len(header))
            if os.pwrite(fd, data, offset) != len(data):
                raise OSError(28, "short write")
        finally:
            os.close(fd)
        _publish(part, target)
    except BaseException as exc:
        part.unlink(missing_ok=True)
        if was_running:
            with contextlib.suppress(QemuError):
                qmp.execute("cont")
        if isinstance(exc, OSError):
            raise StorageError(f"cannot write save image {target}: {exc.strerror}") from exc
        raise
    if keep and was_running:
        qmp.execute("cont")


# hotplug.ROOT_PORT_TYPES, spelt out here: importing hotplug (the model) costs a save ~15 ms
ROOT_PORT_TYPES = ("pcie-root-port", "ioh3420")


def _root_ports(qmp: QmpSession) -> int:
    """How many pcie-root-ports the QEMU has: a restore makes exactly as many, so the guest
    finds the PCI topology it enumerated (ports hot-plugged devices sit in included)."""
    found = qmp.execute("qom-list", {"path": "/machine/peripheral"})
    return sum(str(p.get("type", ""))[6:-1] in ROOT_PORT_TYPES for p in found)


def _publish(part: Path, target: Path) -> None:
    """Give the finished image its name.

    An older image there is unlinked first rather than renamed over: ext4 (auto_da_alloc)
    writes back a file renamed over another one before the rename returns, which took longer
    than the whole migration. Like QEMU's own migrate-to-file, a save does not flush; `sync`
    does that when it matters.
    """
    with contextlib.suppress(FileNotFoundError):
        os.unlink(target)
    os.replace(part, target)


def _create(part: Path, target: Path) -> int:
    if target.is_dir():
        raise InvalidConfig(f"cannot save to '{target}': it is a directory", value=str(target))
    part.unlink(missing_ok=True)
    try:
        return os.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise StorageError(f"cannot create save image {target}: {exc.strerror}") from exc


def _write_all(fd: int, data: bytes, path: Path) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _session(entry: DomainEntry) -> QmpSession:
    from vmkit.qemu.qmp import QmpSession

    rt = entry.runtime
    assert rt is not None and rt.qmp_socket is not None
    return QmpSession.connect(rt.qmp_socket, timeout=5.0)


# -- restore ----------------------------------------------------------------------------------


def save_image_xml(path: str | Path) -> str:
    """The domain XML stored in a save image (checked to be a complete vmkit image)."""
    return read_header(path).xml


def restore(
    ctx: Context, path: str | Path, *, running: bool | None = None, xml: str | None = None
) -> DomainEntry:
    """Start a domain from a save image; `xml` replaces the saved XML (same name and uuid)."""
    source = Path(path).absolute()
    image = read_header(source)  # a foreign, unfinished or truncated file stops here
    dom = _domain_of(ctx, image, xml, str(source))
    with ctx.lock(DOMAIN, dom.uuid):
        resume = image.running if running is None else running
        return restore_image(ctx, source, image, dom, running=resume)


def _domain_of(ctx: Context, image: SaveHeader, xml: str | None, source: str) -> Domain:
    saved = parse_and_check(ctx, image.xml, f"{source} (saved XML)")
    if xml is None:
        return saved
    dom = parse_and_check(ctx, xml, "--xml")
    if dom.uuid != saved.uuid or dom.name != saved.name:
        raise InvalidConfig(
            f"the replacement XML describes domain '{dom.name}' ({dom.uuid}), but the image "
            f"holds domain '{saved.name}' ({saved.uuid})",
            xpath="/domain/uuid",
        )
    return dom


def restore_image(
    ctx: Context,
    source: Path,
    image: SaveHeader,
    dom: Domain,
    *,
    running: bool,
    reason: str = states.RESTORED,
) -> DomainEntry:
    """Launch `dom` with -incoming and load `image` from `source`. Caller holds the lock."""
    definition = _definition_for(ctx, dom)
    try:
        with open(source, "rb") as f:
            os.lseek(f.fileno(), image.stream_offset, os.SEEK_SET)
            rt = launch_domain(
                ctx,
                definition,
                dom,
                paused=True,
                incoming_fd=f.fileno(),
                root_ports=image.root_ports,
            )
    except OSError as exc:
        raise StorageError(f"cannot read save image {source}: {exc.strerror}") from exc
    try:
        _load_stream(ctx, rt.qmp_socket, source, dom.uuid, resume=running)
    except BaseException:
        kill_failed_start(ctx, dom.uuid)
        raise
    store = ctx.store
    with store.transaction():
        if running:
            store.set_state(dom.uuid, states.DomainState.RUNNING, reason)
        else:
            store.set_state(dom.uuid, states.DomainState.PAUSED, states.USER)
        store.log_event(DOMAIN, dom.uuid, dom.name, "restored", str(source))
    return lookup(ctx, dom.uuid)


def _definition_for(ctx: Context, dom: Domain) -> Definition:
    """The stored definition to run `dom` under (a new transient one if there is none)."""
    from vmkit.xml.domain import render_domain

    xml = render_domain(dom, inactive=True)
    store = ctx.store
    existing = store.find(DOMAIN, dom.uuid)
    if existing is None:
        return store.define(DOMAIN, dom.uuid, dom.name, xml, persistent=False)
    entry = lookup(ctx, dom.uuid)
    if is_active(entry):
        raise WrongState(
            f"Failed to restore domain '{entry.name}': Requested operation is not valid: "
            "domain is already active",
            state=states.DomainState.RUNNING,
            required=states.DomainState.SHUTOFF,
        )
    if existing.name != dom.name:
        raise Conflict(
            "domain",
            existing.name,
            f"the image holds domain '{dom.name}' but uuid {dom.uuid} is domain '{existing.name}'",
        )
    return existing.replace(xml=xml)


def _load_stream(
    ctx: Context, qmp_socket: Path | None, source: Path, uuid: str, *, resume: bool
) -> None:
    from vmkit.engine.migration import wait_incoming
    from vmkit.qemu.qmp import QmpSession

    assert qmp_socket is not None
    try:
        with QmpSession.connect(qmp_socket, timeout=10.0) as qmp:
            wait_incoming(qmp)
            if resume:
                qmp.execute("cont")
    except QemuError as exc:
        log = ctx.paths.qemu_log(uuid)
        tail = _tail(log)
        raise QemuError(f"restore from {source} failed: {exc}{tail}") from exc


def _tail(log: Path) -> str:
    try:
        lines = [
            line
            for line in log.read_text(errors="replace").splitlines()
            if line.strip() and not line.startswith(states.TRACE_EVENTS)
        ]
    except OSError:
        return ""
    return ("\n" + "\n".join(lines[-5:])) if lines else ""


def kill_failed_start(ctx: Context, uuid: str) -> None:
    """End a QEMU whose restore failed, and its record (a transient domain goes with it)."""
    from vmkit.qemu.process import kill_process, wait_dead

    entry = ctx.store.lookup_domain(uuid)
    rt = entry.runtime
    proc = qemu_of(rt) if rt is not None else None
    if proc is not None:
        kill_process(proc, signal.SIGKILL)
        wait_dead(proc, 2.0)
    finish_run(ctx, entry, states.FAILED)


# -- managed save at start --------------------------------------------------------------------


def resume_managed_save(ctx: Context, entry: DomainEntry, *, paused: bool = False) -> bool:
    """Start `entry` from its managed save image, if it has one (then removed); else False.

    Called by `start` with the domain's lock held. A damaged image is an error that says how
    to discard it; it is never silently dropped (the guest's unsaved work is in it).
    """
    target = managed_save_file(ctx, entry.uuid)
    if not target.exists():
        return False
    try:
        image = read_header(target)
        dom = parse_and_check(ctx, image.xml, f"{target} (saved XML)")
    except InvalidConfig as exc:
        raise InvalidConfig(
            f"Failed to start domain '{entry.name}' from its managed save image: {exc}; "
            f"'vmkit managedsave-remove {entry.name}' discards it (the guest then boots afresh)"
        ) from exc
    restore_image(ctx, target, image, dom, running=image.running and not paused)
    target.unlink(missing_ok=True)
    return True
