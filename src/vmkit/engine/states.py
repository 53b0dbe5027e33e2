"""Domain states and reasons as libvirt names them, and how QEMU's exit causes map onto them."""

from __future__ import annotations

from enum import StrEnum

TYPE_CHECKING = False
if TYPE_CHECKING:
    from vmkit.state.records import DomainEntry


class DomainState(StrEnum):
    NOSTATE = "no state"
    RUNNING = "running"
    BLOCKED = "idle"
    PAUSED = "paused"
    SHUTDOWN = "in shutdown"
    SHUTOFF = "shut off"
    CRASHED = "crashed"
    PMSUSPENDED = "pmsuspended"


# Internal record states that are not libvirt's: a start or stop in progress.
STARTING = "starting"


def is_active(entry: DomainEntry) -> bool:
    """The domain has a QEMU that finished starting (here, not in runtime.py: `vmkit list`
    and `dominfo` need it without importing the QEMU process machinery)."""
    return entry.runtime is not None and entry.runtime.state != STARTING


# Reasons (libvirt's words, as `virsh domstate --reason` prints them).
BOOTED = "booted"
UNPAUSED = "unpaused"
USER = "user"
FROM_SNAPSHOT = "from snapshot"
RESTORED = "restored"
SHUTDOWN = "shutdown"
DESTROYED = "destroyed"
CRASHED = "crashed"
FAILED = "failed"
UNKNOWN = "unknown"
SAVED = "saved"
SHUTTING_DOWN = "shutting down"

# QEMU's ShutdownCause numbers, as its `qemu_system_shutdown_request` trace prints them.
_CAUSES = {
    0: "none",
    1: "host-error",
    2: "host-qmp-quit",
    3: "host-qmp-system-reset",
    4: "host-signal",
    5: "host-ui",
    6: "guest-shutdown",
    7: "guest-reset",
    8: "guest-panic",
    9: "subsystem-reset",
    10: "snapshot-load",
}

TRACE_EVENT = "qemu_system_shutdown_request"
# A QMP system_reset after a shutdown request (how `reboot` restarts a guest that powered off
# for it) means that the QEMU went on running: the request is no longer why it stopped.
RESET_TRACE_EVENT = "qmp_enter_system_reset"
# QEMU entering the shutdown run state with no request traced before it stopped itself: with
# -no-reboot (on_reboot='destroy') a guest reset does exactly that.
RUNSTATE_TRACE_EVENT = "runstate_set"
TRACE_EVENTS = (TRACE_EVENT, RESET_TRACE_EVENT, RUNSTATE_TRACE_EVENT)
# A signal (SIGTERM, SIGINT, SIGHUP) ends QEMU without the trace: it says this on stderr (the log).
_SIGNALLED = ": terminating on signal "


def last_shutdown_cause(log_text: str) -> str | None:
    """The cause of the last shutdown request QEMU wrote into its log, or None.

    A reset traced after the request cancels it (the guest was rebooted, not stopped), and so
    does a return to another run state. Entering the shutdown state with no request before it
    is a guest reset under -no-reboot (on_reboot='destroy'): QEMU 7.2 traces no request then.
    """
    cause = None
    for line in log_text.splitlines():
        if line.startswith(TRACE_EVENT) and "reason=" in line:
            value = line.rsplit("reason=", 1)[1].strip()
            cause = _CAUSES.get(int(value), value) if value.isdigit() else value
        elif line.startswith(RESET_TRACE_EVENT):
            cause = None
        elif line.startswith(RUNSTATE_TRACE_EVENT) and "new_state" in line:
            stopped = line.rstrip().endswith("(shutdown)")
            cause = (cause or "guest-reset") if stopped else None
        elif _SIGNALLED in line:
            cause = "host-signal"
    return cause


def shutoff_reason(cause: str | None) -> str:
    """The shut-off reason for a QEMU that exited after `cause` (None: it died without one)."""
    if cause in ("guest-shutdown", "guest-reset"):
        return SHUTDOWN
    if cause in ("host-qmp-quit", "host-signal", "host-ui"):
        return DESTROYED
    return CRASHED
