"""Running a domain's QEMU and keeping the store true to reality.

`launch_domain` starts QEMU for a definition, recording each step so that a kill -9 anywhere
leaves something `reconcile` repairs. `reconcile` is run by every command before it acts: a
QEMU that exited is turned into `shut off (<reason>)` (the reason read from QEMU's trace of its
last shutdown request), its runtime files removed and its lifecycle action (restart) honoured.
Callers hold the domain's lock.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

from vmkit.engine import states
from vmkit.engine.context import Context, host_tsc_khz
from vmkit.engine.faults import fault_point
from vmkit.engine.runfiles import RunFiles
from vmkit.engine.states import is_active as is_active
from vmkit.errors import VmkitError
from vmkit.qemu.process import QemuProcess, kill_process, process_state, wait_dead
from vmkit.state.records import DOMAIN, Definition, DomainEntry, DomainRuntime

TYPE_CHECKING = False  # typing costs a command ~3 ms at start-up
if TYPE_CHECKING:
    from vmkit.model.domain import Domain

ACTIVE_STATES = (states.DomainState.RUNNING, states.DomainState.PAUSED)


def qemu_of(rt: DomainRuntime) -> QemuProcess | None:
    if rt.pid is None or rt.pid_start is None:
        return None
    return QemuProcess(rt.pid, rt.pid_start)


def launch_domain(
    ctx: Context,
    definition: Definition,
    dom: Domain,
    *,
    paused: bool = False,
    incoming_fd: int | None = None,
    root_ports: int | None = None,
) -> DomainRuntime:
    """Start QEMU for `dom`; return the stored runtime record. Caller holds the lock.

    `incoming_fd` makes QEMU load a migration stream from that descriptor (at its current
    offset) as it starts, with MIGRATION events on (restore); pass paused=True with it: the
    caller waits for the load to finish and decides when to `cont`. `root_ports` (with it)
    makes exactly the pcie-root-ports the saved QEMU had.
    """
    from vmkit.engine.disks import check_disk_conflicts  # lazy: disks imports runtime
    from vmkit.engine.launch import build_launch_argv, needs_qmp_setup, setup_over_qmp
    from vmkit.engine.nics import create_taps, delete_taps, plan_taps, tap_names
    from vmkit.qemu.process import launch

    check_disk_conflicts(ctx, dom)

    store = ctx.store
    domain_id = store.next_domain_id()
    files = RunFiles.for_domain(ctx.paths, domain_id, definition.uuid)
    started = time.time()
    taps = tap_names(dom, domain_id)
    store.put_runtime(
        DomainRuntime(
            uuid=definition.uuid,
            domain_id=domain_id,
            state=states.STARTING,
            run_dir=files.run_dir,
            started=started,
            extras={"taps": sorted(taps.values())},
        )
    )
    fault_point("start:after-record")
    made: list[str] = []
    try:
        files.create()
        made = create_taps(plan_taps(ctx, dom, taps))
        argv = build_launch_argv(
            ctx, dom, files, tsc_khz=host_tsc_khz(), taps=taps, root_ports=root_ports
        )
        fds: tuple[int, ...] = ()
        if incoming_fd is not None:
            argv += ["-global", "migration.x-events=on", "-incoming", f"fd:{incoming_fd}"]
            fds = (incoming_fd,)
        setup = needs_qmp_setup(dom)
        if paused or setup:
            argv.append("-S")
        proc = launch(argv, pidfile=files.pidfile, log_file=files.qemu_log, pass_fds=fds)
    except BaseException:
        delete_taps(made)
        _forget_run(ctx, definition, files)
        raise
    fault_point("start:after-launch")
    state, reason = states.DomainState.RUNNING, states.BOOTED
    if paused:
        state, reason = states.DomainState.PAUSED, states.USER
    runtime = DomainRuntime(
        uuid=definition.uuid,
        domain_id=domain_id,
        state=state,
        reason=reason,
        pid=proc.pid,
        pid_start=proc.start_time,
        qmp_socket=files.qmp_socket,
        console_socket=files.console_socket,
        run_dir=files.run_dir,
        started=started,
        live_xml=definition.xml,
        extras={"taps": sorted(taps.values())},
    )
    try:
        if setup:  # before the record: a start killed at -S is rolled back, never left frozen
            setup_over_qmp(files.qmp_socket, dom, resume=not paused)
        with store.transaction():  # one commit (one WAL sync) for both
            stored = store.put_runtime(runtime)
            store.log_event(DOMAIN, definition.uuid, definition.name, "started", reason)
        fault_point("start:after-commit")
    except BaseException:
        kill_process(proc, signal.SIGKILL)
        wait_dead(proc, 2.0)
        delete_taps(made)
        _forget_run(ctx, definition, files)
        raise
    return stored


def _forget_run(ctx: Context, definition: Definition, files: RunFiles) -> None:
    """Undo a start that did not finish: no record, no runtime files (transient: no domain)."""
    files.remove_runtime()
    ctx.store.clear_runtime(DOMAIN, definition.uuid)


def finish_run(ctx: Context, entry: DomainEntry, reason: str) -> bool:
    """Record that the domain's QEMU is gone; remove runtime files. True if the domain is gone."""
    rt = entry.runtime
    if rt is not None and rt.run_dir is not None:
        RunFiles.from_run_dir(ctx.paths, rt.run_dir, entry.uuid).remove_runtime()
    if rt is not None and rt.extras.get("taps"):
        from vmkit.engine.nics import delete_taps

        delete_taps(str(t) for t in rt.extras["taps"])
    store = ctx.store
    with store.transaction():
        store.log_event(DOMAIN, entry.uuid, entry.name, "stopped", reason)
        return store.clear_runtime(DOMAIN, entry.uuid)


def stop_reason(ctx: Context, entry: DomainEntry) -> str:
    """Why a dead QEMU stopped, from the trace in its log."""
    log = ctx.paths.qemu_log(entry.uuid)
    try:
        text = log.read_text(errors="replace")
    except OSError:
        text = ""
    return states.shutoff_reason(states.last_shutdown_cause(text))


def reconcile(ctx: Context, entry: DomainEntry, *, restart: bool = True) -> DomainEntry | None:
    """Make `entry` true to the processes; returns the fresh entry (None if the domain is gone)."""
    rt = entry.runtime
    if rt is None:
        if not entry.definition.persistent:
            ctx.store.undefine(DOMAIN, entry.uuid)  # a create killed before its record
            return None
        return entry
    proc = qemu_of(rt)
    if rt.state == states.STARTING:
        _kill_unrecorded(ctx, entry)
        gone = finish_run(ctx, entry, states.FAILED)
        return None if gone else ctx.store.lookup_domain(entry.uuid)
    if proc is not None and process_state(proc.pid, proc.start_time) == "running":
        return entry
    reason = stop_reason(ctx, entry)
    gone = finish_run(ctx, entry, reason)
    if gone:
        return None
    fresh = ctx.store.lookup_domain(entry.uuid)
    if restart and _wants_restart(rt, reason):
        from vmkit.xml.domain import parse_domain

        try:
            launch_domain(ctx, fresh.definition, parse_domain(fresh.definition.xml))
        except VmkitError as exc:
            ctx.store.log_event(DOMAIN, entry.uuid, entry.name, "restart-failed", str(exc))
        fresh = ctx.store.lookup_domain(entry.uuid)
    return fresh


def _wants_restart(rt: DomainRuntime, reason: str) -> bool:
    """on_crash / on_poweroff = restart, read from the XML the run started with."""
    if reason not in (states.CRASHED, states.SHUTDOWN) or not rt.live_xml:
        return False
    tag = "on_crash" if reason == states.CRASHED else "on_poweroff"
    return f"<{tag}>restart</{tag}>" in rt.live_xml


def _kill_unrecorded(ctx: Context, entry: DomainEntry) -> None:
    """A start killed between launch and record may have left a QEMU: end it by its pidfile."""
    rt = entry.runtime
    if rt is None or rt.run_dir is None:
        return
    pidfile = Path(rt.run_dir) / "qemu.pid"
    try:
        pid = int(pidfile.read_text().strip())
    except (OSError, ValueError):
        return
    from vmkit.qemu.process import read_stat

    stat = read_stat(pid)
    if stat is None or stat.state == "Z" or not _is_our_qemu(pid, rt.run_dir):
        return
    proc = QemuProcess(pid, stat.start_time)
    kill_process(proc, signal.SIGKILL)
    wait_dead(proc, 2.0)


def _is_our_qemu(pid: int, run_dir: Path) -> bool:
    """The pid still runs a QEMU whose command line names this run dir (not a reused pid)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return str(run_dir).encode() in cmdline
