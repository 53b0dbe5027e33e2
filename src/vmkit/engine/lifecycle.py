"""Domain lifecycle: create, start, shutdown, reboot, reset, destroy, suspend, resume, console.

Each operation takes the domain's lock, reconciles, checks the state it needs (WrongState with
virsh's words otherwise) and acts on QEMU by signal (destroy) or QMP (everything else).
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from pathlib import Path

from vmkit.engine import states
from vmkit.engine.context import Context
from vmkit.engine.domains import locked_lookup, lookup, parse_and_check
from vmkit.engine.faults import fault_point
from vmkit.engine.runtime import (
    finish_run,
    is_active,
    launch_domain,
    qemu_of,
    reconcile,
    stop_reason,
)
from vmkit.errors import Conflict, LaunchFailed, VmkitError, WrongState
from vmkit.state.records import DOMAIN, DomainEntry

TYPE_CHECKING = False  # typing costs a command ~3 ms at start-up
if TYPE_CHECKING:
    from typing import Any

NOT_RUNNING = "Requested operation is not valid: domain is not running"


def start(ctx: Context, key: str, *, paused: bool = False) -> DomainEntry:
    """Start a defined, inactive domain."""
    from vmkit.xml.domain import parse_domain

    uuid = locked_lookup(ctx, key).uuid
    with ctx.lock(DOMAIN, uuid):
        entry = lookup(ctx, uuid)
        if is_active(entry):
            raise WrongState(
                f"Failed to start domain '{entry.name}': Domain is already active",
                state="running",
                required="shut off",
            )
        from vmkit.engine.saves import resume_managed_save

        if resume_managed_save(ctx, entry, paused=paused):
            return lookup(ctx, uuid)
        dom = parse_domain(entry.definition.xml)
        with _naming(entry.name):
            launch_domain(ctx, entry.definition, dom, paused=paused)
        return lookup(ctx, uuid)


def create(
    ctx: Context, xml_text: str | bytes, source: str, *, paused: bool = False
) -> DomainEntry:
    """Start a transient domain from XML (it disappears when it stops)."""
    from vmkit.xml.domain import render_domain

    dom = parse_and_check(ctx, xml_text, source)
    store = ctx.store
    with ctx.lock(DOMAIN, dom.uuid):
        existing = store.find(DOMAIN, dom.uuid)
        if existing is not None:
            raise Conflict(
                "domain",
                dom.name,
                f"operation failed: domain '{existing.name}' already exists with uuid "
                f"{existing.uuid}",
            )
        definition = store.define(
            DOMAIN, dom.uuid, dom.name, render_domain(dom, inactive=True), persistent=False
        )
        with _naming(dom.name):
            launch_domain(ctx, definition, dom, paused=paused)
        return lookup(ctx, dom.uuid)


@contextlib.contextmanager
def _naming(name: str) -> Iterator[None]:
    """Say which domain QEMU failed to start for (LaunchFailed carries only QEMU's words)."""
    try:
        yield
    except LaunchFailed as exc:
        exc.message = f"Failed to start domain '{name}': {exc.message}"
        raise


def _active(ctx: Context, key: str, doing: str) -> DomainEntry:
    """The running or paused domain `key`; WrongState naming it and `doing` otherwise."""
    entry = lookup(ctx, key)
    if not is_active(entry):
        raise WrongState(
            f"Failed to {doing} domain '{entry.name}': {NOT_RUNNING}",
            state="shut off",
            required="running",
        )
    return entry


def _qmp(entry: DomainEntry, command: str, args: dict[str, Any] | None = None) -> Any:
    from vmkit.qemu.qmp import QmpSession

    rt = entry.runtime
    assert rt is not None and rt.qmp_socket is not None
    with QmpSession.connect(rt.qmp_socket, timeout=5.0) as qmp:
        return qmp.execute(command, args)


def destroy(ctx: Context, key: str, *, graceful: bool = False) -> None:
    """Stop the QEMU at once: SIGTERM, then SIGKILL unless --graceful."""
    from vmkit.qemu.process import kill_process, wait_dead

    uuid = locked_lookup(ctx, key).uuid
    with ctx.lock(DOMAIN, uuid):
        entry = _active(ctx, uuid, "destroy")
        rt = entry.runtime
        assert rt is not None
        proc = qemu_of(rt)
        fault_point("destroy:before-kill")
        if proc is not None:
            kill_process(proc, signal.SIGTERM)
            if not wait_dead(proc, 10.0 if graceful else 2.0):
                if graceful:
                    raise VmkitError(
                        f"Failed to terminate process {proc.pid} with SIGTERM: "
                        "Device or resource busy"
                    )
                kill_process(proc, signal.SIGKILL)
                wait_dead(proc, 5.0)
        fault_point("destroy:after-kill")
        finish_run(ctx, entry, states.DESTROYED)
        fault_point("destroy:after-cleanup")


def shutdown(ctx: Context, key: str, *, wait: bool = False, timeout: float = 60.0) -> str | None:
    """Press the ACPI power button; with `wait`, return the stop reason once QEMU is gone."""
    from vmkit.qemu.process import wait_dead

    uuid = locked_lookup(ctx, key).uuid
    with ctx.lock(DOMAIN, uuid):
        entry = _active(ctx, uuid, "shutdown")
        _qmp(entry, "system_powerdown")
        if not wait:
            return None
        rt = entry.runtime
        assert rt is not None
        proc = qemu_of(rt)
        if proc is None or not wait_dead(proc, timeout):
            raise VmkitError(
                f"domain '{entry.name}' did not shut down within {timeout:g} s "
                "(does the guest handle the ACPI power button?)"
            )
        reason = stop_reason(ctx, entry)
        reconcile(ctx, entry)  # records the stop; honours on_poweroff=restart
        return reason


def reboot(ctx: Context, key: str, *, timeout: float = 60.0) -> None:
    """ACPI reboot: power button with shutdown held as a pause, then reset and continue."""
    from vmkit.qemu.qmp import QmpSession

    uuid = locked_lookup(ctx, key).uuid
    with ctx.lock(DOMAIN, uuid):
        entry = _active(ctx, uuid, "reboot")
        rt = entry.runtime
        assert rt is not None and rt.qmp_socket is not None
        with QmpSession.connect(rt.qmp_socket, timeout=5.0) as qmp:
            qmp.execute("set-action", {"shutdown": "pause"})
            try:
                qmp.execute("system_powerdown")
                event = qmp.wait_event("SHUTDOWN", timeout)
                if event is None:
                    raise VmkitError(
                        f"domain '{entry.name}' did not shut down for the reboot within "
                        f"{timeout:g} s (does the guest handle the ACPI power button?)"
                    )
                qmp.execute("system_reset")
            finally:
                qmp.execute("set-action", {"shutdown": "poweroff"})
            qmp.execute("cont")
        ctx.store.set_state(uuid, states.DomainState.RUNNING, states.BOOTED)


def reset(ctx: Context, key: str) -> None:
    uuid = locked_lookup(ctx, key).uuid
    with ctx.lock(DOMAIN, uuid):
        _qmp(_active(ctx, uuid, "reset"), "system_reset")


def suspend(ctx: Context, key: str) -> None:
    uuid = locked_lookup(ctx, key).uuid
    with ctx.lock(DOMAIN, uuid):
        entry = _active(ctx, uuid, "suspend")
        assert entry.runtime is not None
        if entry.runtime.state == states.DomainState.PAUSED:
            raise WrongState(
                f"Requested operation is not valid: domain '{entry.name}' is already paused",
                state="paused",
                required="running",
            )
        _qmp(entry, "stop")
        ctx.store.set_state(uuid, states.DomainState.PAUSED, states.USER)


def resume(ctx: Context, key: str) -> None:
    uuid = locked_lookup(ctx, key).uuid
    with ctx.lock(DOMAIN, uuid):
        entry = _active(ctx, uuid, "resume")
        assert entry.runtime is not None
        if entry.runtime.state != states.DomainState.PAUSED:
            raise WrongState(
                f"Requested operation is not valid: domain '{entry.name}' is not paused",
                state=entry.runtime.state,
                required="paused",
            )
        _qmp(entry, "cont")
        ctx.store.set_state(uuid, states.DomainState.RUNNING, states.UNPAUSED)


def start_autostart(ctx: Context) -> list[tuple[str, str | None]]:
    """Start every autostart domain that is not running: [(name, error or None)]."""
    results: list[tuple[str, str | None]] = []
    for d in ctx.store.list(DOMAIN):
        if not d.autostart:
            continue
        try:
            entry = lookup(ctx, d.uuid)
            if not is_active(entry):
                start(ctx, d.uuid)
            results.append((d.name, None))
        except VmkitError as exc:
            results.append((d.name, str(exc)))
    return results


def console_paths(ctx: Context, key: str) -> tuple[Path, Path]:
    """(console socket, console log) of a running domain."""
    entry = _active(ctx, key, "open the console of")
    rt = entry.runtime
    assert rt is not None and rt.console_socket is not None
    return rt.console_socket, ctx.paths.console_log(entry.uuid)


def console_history(ctx: Context, key: str) -> bytes:
    """All the guest printed on its serial console (also after it stopped)."""
    from vmkit.qemu.console import read_history

    entry = lookup(ctx, key)
    log = ctx.paths.console_log(entry.uuid)
    return read_history(log) if log.exists() else b""


def attach_console(ctx: Context, key: str, *, force: bool = False) -> str:
    """Attach this terminal (or stdin/stdout) to the console; returns why it detached."""
    import sys

    from vmkit.qemu.console import ConsoleBusy, attach_interactive

    name = lookup(ctx, key).name
    sock, _ = console_paths(ctx, key)
    ctx.close()  # do not hold the store open while attached
    try:
        reason = attach_interactive(sock, sys.stdin.fileno(), sys.stdout.fileno(), force=force)
    except ConsoleBusy as exc:
        who = f"pid {exc.holder}" if exc.holder else "another session"
        hint = f"({exc})" if force else "(--force takes it over)"
        message = f"the console of domain '{name}' is in use by {who} {hint}"
        raise Conflict("domain", name, message) from exc
    return str(reason)
