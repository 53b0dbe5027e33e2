"""QEMU's migration stream to and from a file descriptor (`fd:` URIs), over one QMP session.

Used by save/restore, managed save and memory snapshots. The fd is passed with `getfd`
(SCM_RIGHTS), so QEMU writes and reads at the file's current offset: the caller places the
offset after its header first. Works under `-sandbox on` (PLATFORM.md: `exec:` does not).
Callers hold the domain's lock; this module does not touch the store.

The end of a migration is awaited as QEMU's MIGRATION event (capability `events`), so the
command returns the moment the stream is complete instead of at the next poll.
"""

from __future__ import annotations

import contextlib

from vmkit.errors import QemuError, QmpError
from vmkit.qemu.qmp import QmpSession

TYPE_CHECKING = False  # typing costs ~3 ms at start-up
if TYPE_CHECKING:
    from typing import Any

# QEMU 7.2 caps migration at 128 MiB/s by default; a save to a local file wants no cap.
MAX_BANDWIDTH = 10 * 1024**3
FDNAME = "vmkit-migration"
_DONE = ("completed", "failed", "cancelled")
_EVENTS = {"capabilities": [{"capability": "events", "state": True}]}


def migrate_to_fd(qmp: QmpSession, fd: int, *, timeout: float = 600.0) -> None:
    """Stream the (stopped) guest's state into `fd`; QemuError with QEMU's reason on failure."""
    qmp.execute("migrate-set-parameters", {"max-bandwidth": MAX_BANDWIDTH})
    qmp.execute("migrate-set-capabilities", _EVENTS)
    qmp.send_fd(fd, FDNAME)
    try:
        qmp.execute("migrate", {"uri": f"fd:{FDNAME}"})
    except QmpError:
        with contextlib.suppress(QemuError):
            qmp.execute("closefd", {"fdname": FDNAME})
        raise
    _wait_migration(qmp, timeout, "save")


def wait_incoming(qmp: QmpSession, *, timeout: float = 600.0) -> None:
    """Wait until a QEMU started with `-incoming fd:N` (MIGRATION events on) has loaded its
    stream; it stays paused (started with -S). A QEMU whose load fails exits: QmpUnavailable."""
    info: dict[str, Any] = qmp.execute("query-migrate")
    status = info.get("status", "")
    if status == "completed":
        return
    if status in _DONE:
        reason = info.get("error-desc") or status
        raise QemuError(f"restore failed: QEMU's migration {status}: {reason}")
    _wait_migration(qmp, timeout, "restore")


def _wait_migration(qmp: QmpSession, timeout: float, what: str) -> None:
    def finished(event: dict[str, Any]) -> bool:
        return event.get("data", {}).get("status") in _DONE

    event = qmp.wait_event("MIGRATION", timeout, finished)
    if event is None:
        with contextlib.suppress(QemuError):
            qmp.execute("migrate_cancel")
        raise QemuError(f"{what} failed: QEMU's migration did not finish in {timeout:g} s")
    status = event["data"]["status"]
    if status == "completed":
        return
    info: dict[str, Any] = qmp.execute("query-migrate")
    reason = info.get("error-desc") or status
    raise QemuError(f"{what} failed: QEMU's migration {status}: {reason}")
