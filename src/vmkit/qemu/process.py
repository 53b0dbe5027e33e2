"""Launching a detached QEMU and telling, later and from another process, whether it still runs.

vmkit has no daemon: `launch` starts QEMU with `-daemonize`, returns once QEMU is ready, and
the CLI process may exit. A `QemuProcess` (pid + start time) is what callers store to find
the QEMU again. `process_state` reads /proc only: a zombie, a vanished pid or a pid whose
start time differs (the pid was reused) all count as dead, and nothing here ever waits for
the reaper (PID 1 reaps orphans only after 1-2 s).

The pidfile race: QEMU writes the pidfile from the daemon child, after forking. QEMU 7.2's
launcher process exits 0 only once the child has written it and signalled "ready", but
`launch` does not rely on that ordering: it polls until the pidfile holds a whole line with
the pid of a process that started after the launch began (never a stale pidfile of an
earlier run), and gives up after `timeout`.

Errors after daemonizing: QEMU points stdin/stdout at /dev/null and, because `-D log_file`
is given, its stderr at `log_file` (truncated by QEMU at each start). Messages of the
synchronous part (bad options) come back on the launcher's stderr; a QEMU that dies right
after forking writes to `log_file`. `LaunchFailed` carries both.

This module does not build argv (see argv.py) and does not talk QMP (see qmp.py).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import math
import os
import select
import signal
import time
from collections.abc import Sequence
from pathlib import Path

from vmkit.errors import LaunchFailed

TYPE_CHECKING = False  # typing and subprocess cost `vmkit list` ~5 ms: imported when needed
if TYPE_CHECKING:
    from typing import Literal

    ProcessState = Literal["running", "zombie", "gone"]

_POLL_INTERVAL = 0.003
_CLK_TCK = os.sysconf("SC_CLK_TCK")


class QemuProcess:
    """A QEMU process identified by pid and start time (clock ticks since boot, stat field 22)."""

    __slots__ = ("pid", "start_time")

    def __init__(self, pid: int, start_time: int) -> None:
        self.pid = pid
        self.start_time = start_time

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, QemuProcess):
            return NotImplemented
        return (self.pid, self.start_time) == (other.pid, other.start_time)

    def __hash__(self) -> int:
        return hash((self.pid, self.start_time))

    def __repr__(self) -> str:
        return f"QemuProcess(pid={self.pid}, start_time={self.start_time})"


class ProcStat:
    """The fields of /proc/PID/stat that vmkit uses."""

    __slots__ = ("comm", "pid", "start_time", "state")

    def __init__(self, pid: int, comm: str, state: str, start_time: int) -> None:
        self.pid = pid
        self.comm = comm
        self.state = state
        self.start_time = start_time


def parse_stat(text: str) -> ProcStat:
    """Parse /proc/PID/stat; comm (field 2) may contain spaces and parentheses."""
    head, sep, tail = text.rpartition(")")
    pid_text, open_paren, comm = head.partition(" (")
    fields = tail.split()
    if not sep or not open_paren or len(fields) < 20:
        raise ValueError(f"malformed /proc stat line: {text[:80]!r}")
    # fields[0] is field 3 (state); field 22 (starttime) is fields[19].
    return ProcStat(int(pid_text), comm, fields[0], int(fields[19]))


def read_stat(pid: int) -> ProcStat | None:
    """/proc/PID/stat of `pid`, or None if there is no such process."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return parse_stat(text)


def process_state(pid: int, start_time: int) -> ProcessState:
    """Whether the process `pid` that started at `start_time` runs, is a zombie or is gone."""
    stat = read_stat(pid)
    if stat is None or stat.start_time != start_time or stat.state in ("X", "x"):
        return "gone"
    return "zombie" if stat.state == "Z" else "running"


def is_alive(proc: QemuProcess) -> bool:
    """True while `proc` runs (neither zombie nor gone)."""
    return process_state(proc.pid, proc.start_time) == "running"


def kill_process(proc: QemuProcess, sig: int = signal.SIGKILL) -> bool:
    """Send `sig` to `proc` if it still runs; False if it was already dead.

    A pidfd pins the process between the start-time check and the signal, so a pid reused
    in between is never signalled.
    """
    try:
        pidfd = os.pidfd_open(proc.pid)
    except ProcessLookupError:
        return False
    try:
        if not is_alive(proc):
            return False
        signal.pidfd_send_signal(pidfd, sig)
        return True
    except ProcessLookupError:
        return False
    finally:
        os.close(pidfd)


def wait_dead(proc: QemuProcess, timeout: float) -> bool:
    """Wait until `proc` is a zombie or gone; False if it still runs at `timeout`.

    A pidfd wakes the caller the moment the process exits (it need not be our child).
    """
    try:
        pidfd = os.pidfd_open(proc.pid)
    except ProcessLookupError:
        return True
    try:
        if not is_alive(proc):  # already dead, or the pid now belongs to another process
            return True
        poller = select.poll()
        poller.register(pidfd, select.POLLIN)
        return bool(poller.poll(math.ceil(timeout * 1000))) or not is_alive(proc)
    finally:
        os.close(pidfd)


def launch(
    argv: Sequence[str],
    *,
    pidfile: Path,
    log_file: Path,
    timeout: float = 10,
    pass_fds: Sequence[int] = (),
) -> QemuProcess:
    """Start QEMU detached (`-daemonize`) in its own session; return once its pidfile is there.

    Raises LaunchFailed (with QEMU's messages) if QEMU exits non-zero, does not daemonize
    within `timeout`, or leaves no usable pidfile; a pidfile left behind is then removed.
    Give absolute paths in `argv`: a daemonized QEMU changes its directory to /. `pass_fds`
    are inherited by QEMU under the same numbers (e.g. for `-incoming fd:N`).
    """
    full = [*argv, "-daemonize", "-pidfile", str(pidfile), "-D", str(log_file)]
    _truncate(log_file, full)
    since = _boot_ticks()
    try:
        rc, output = _run_launcher(full, timeout, pass_fds)
        if rc == 0:
            return _wait_pidfile(pidfile, since, timeout)
        message = output
    except _LaunchTimeout as exc:
        rc, message = None, str(exc)
    _kill_fresh_daemon(pidfile, since)
    remove_pidfile(pidfile)
    raise LaunchFailed(full, rc, _join(message, _read_text(log_file)))


class _LaunchTimeout(Exception):
    """Internal: QEMU did not finish starting in time (reported as LaunchFailed)."""


def _run_launcher(argv: list[str], timeout: float, pass_fds: Sequence[int]) -> tuple[int, str]:
    """Run the foreground part of a daemonizing QEMU; return its exit code and output."""
    import subprocess

    try:
        child = subprocess.Popen(  # noqa: S603 - argv list, no shell
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            pass_fds=tuple(pass_fds),
        )
    except OSError as exc:
        raise LaunchFailed(argv, None, f"cannot execute {argv[0]}: {exc.strerror}") from exc
    try:
        out, _ = child.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, signal.SIGKILL)
        out, _ = child.communicate()
        text = out.decode(errors="replace")
        raise _LaunchTimeout(_join(f"QEMU did not daemonize within {timeout:g} s", text)) from None
    return child.returncode, out.decode(errors="replace")


def _wait_pidfile(pidfile: Path, since: int, timeout: float) -> QemuProcess:
    """Poll until `pidfile` names a process started at or after tick `since`."""
    deadline = time.monotonic() + timeout
    while True:
        proc = _read_fresh_pid(pidfile, since)
        if proc is not None:
            return proc
        if time.monotonic() >= deadline:
            raise _LaunchTimeout(f"QEMU exited 0 but wrote no usable pidfile {pidfile}")
        time.sleep(_POLL_INTERVAL)


def _read_fresh_pid(pidfile: Path, since: int) -> QemuProcess | None:
    """The process named in `pidfile` if the line is complete and it started after `since`."""
    try:
        text = pidfile.read_text()
    except FileNotFoundError:
        return None
    if not text.endswith("\n") or not text.strip().isdigit():
        return None  # QEMU has created the file but not yet written the line
    stat = read_stat(int(text))
    # Start times are whole ticks; allow one tick of rounding against `since`.
    if stat is None or stat.state == "Z" or stat.start_time < since - 1:
        return None
    return QemuProcess(stat.pid, stat.start_time)


def _kill_fresh_daemon(pidfile: Path, since: int) -> None:
    """After a failed launch, kill a daemon child that got as far as writing its pidfile."""
    proc = _read_fresh_pid(pidfile, since)
    if proc is not None:
        kill_process(proc, signal.SIGKILL)
        wait_dead(proc, 1.0)


def remove_pidfile(pidfile: Path) -> None:
    """Remove `pidfile` unless a live QEMU holds its lock (QEMU locks the pidfile it writes)."""
    try:
        fd = os.open(pidfile, os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        return
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno in (errno.EAGAIN, errno.EACCES):
            return  # another QEMU owns this pidfile
        raise
    else:
        pidfile.unlink(missing_ok=True)
    finally:
        os.close(fd)


def _boot_ticks() -> int:
    """Now, in the clock of /proc start times (ticks since boot, CLOCK_BOOTTIME)."""
    return int(time.clock_gettime(time.CLOCK_BOOTTIME) * _CLK_TCK)


def _truncate(log_file: Path, argv: list[str]) -> None:
    """Empty `log_file` so that it holds this run's messages only (QEMU truncates it too)."""
    try:
        log_file.write_bytes(b"")
    except OSError as exc:
        raise LaunchFailed(argv, None, f"cannot write {log_file}: {exc.strerror}") from exc


def _read_text(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def _join(*parts: str) -> str:
    return "\n".join(p.strip() for p in parts if p.strip())
