"""QEMU's migration stream to and from a file descriptor (`fd:` URIs), over one QMP session.

Used by save/restore, managed save and memory snapshots. The fd is passed with `getfd`
(SCM_RIGHTS), so QEMU writes and reads at the file's current offset: the caller places the
offset after its header first. Works under `-sandbox on` (PLATFORM.md: `exec:` does not).
Callers hold the domain's lock; this module does not touch the store.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

from vmkit.errors import QemuError, QmpError
from vmkit.qemu.qmp import QmpSession

# QEMU 7.2 caps migration at 128 MiB/s by default; a save to a local file wants no cap.
MAX_BANDWIDTH = 10 * 1024**3
FDNAME = "vmkit-migration"
_POLL = 0.005
_DONE = ("completed", "failed", "cancelled")


def migrate_to_fd(qmp: QmpSession, fd: int, *, timeout: float = 600.0) -> None:
    """Stream the (stopped) guest's state into `fd`; QemuError with QEMU's reason on failure."""
    qmp.execute("migrate-set-parameters", {"max-bandwidth": MAX_BANDWIDTH})
    qmp.send_fd(fd, FDNAME)
    try:
        qmp.execute("migrate", {"uri": f"fd:{FDNAME}"})
    except QmpError:
        with contextlib.suppress(QemuError):
            qmp.execute("closefd", {"fdname": FDNAME})
        raise
    _wait_migration(qmp, timeout, "save")


def migrate_from_fd(qmp: QmpSession, fd: int, *, timeout: float = 600.0) -> None:
    """Load a stream from `fd` into a QEMU started with `-incoming defer`; it stays paused."""
    qmp.send_fd(fd, FDNAME)
    try:
        qmp.execute("migrate-incoming", {"uri": f"fd:{FDNAME}"})
    except QmpError:
        with contextlib.suppress(QemuError):
            qmp.execute("closefd", {"fdname": FDNAME})
        raise
    _wait_migration(qmp, timeout, "restore")


def _wait_migration(qmp: QmpSession, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while True:
        info: dict[str, Any] = qmp.execute("query-migrate")
        status = info.get("status", "")
        if status == "completed":
            return
        if status in _DONE:
            reason = info.get("error-desc") or status
            raise QemuError(f"{what} failed: QEMU's migration {status}: {reason}")
        if time.monotonic() > deadline:
            with contextlib.suppress(QemuError):
                qmp.execute("migrate_cancel")
            raise QemuError(f"{what} failed: QEMU's migration did not finish in {timeout:g} s")
        time.sleep(_POLL)
