"""Processes of the benchmark: the subreaper, spawning, stopping by pid, resident memory.

The bench process makes itself a child subreaper (PLATFORM.md: PID 1 reaps orphans only after
1-2 s), so a daemonized QEMU that exits becomes *our* zombie, and a reaper thread reaps it within
~20 ms. Processes we wait for ourselves (every `spawn`/`run`) are registered under a lock before
the reaper can see them, so it never steals their exit status.

Every process the bench starts is remembered as (pid, start time) in `Tracked` and stopped by
that pid only, and only if the start time still matches (a reused pid is never signalled).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

PR_SET_CHILD_SUBREAPER = 36

_LOCK = threading.Lock()
_OWN: set[int] = set()  # pids whose exit status a Popen object collects


class CommandFailed(RuntimeError):
    """A command the bench ran exited non-zero (or timed out)."""

    def __init__(self, argv: Sequence[str], rc: int | None, stderr: str) -> None:
        tail = stderr.strip()[-600:]
        super().__init__(f"{' '.join(argv[:4])}... exited with {rc}: {tail}")
        self.argv = list(argv)
        self.rc = rc
        self.stderr = stderr


def become_subreaper() -> bool:
    """prctl(PR_SET_CHILD_SUBREAPER, 1) on this process; False if the kernel refused."""
    libc = ctypes.CDLL(None, use_errno=True)
    return int(libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)) == 0


def child_pids(pid: int | None = None) -> list[int]:
    """Direct children of `pid` (default: this process), from /proc/PID/task/*/children."""
    pid = os.getpid() if pid is None else pid
    found: list[int] = []
    with contextlib.suppress(OSError):
        for task in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError):
                text = Path(f"/proc/{pid}/task/{task}/children").read_text()
                found.extend(int(p) for p in text.split())
    return found


def proc_state(pid: int) -> str | None:
    """The one-letter state of a process (R, S, Z, ...), None when it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[0]


def start_time(pid: int) -> int | None:
    """Field 22 of /proc/PID/stat (clock ticks since boot): tells a reused pid apart."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[19])


def is_dead(pid: int) -> bool:
    """Gone or a zombie: a zombie has released its memory and sockets (PLATFORM.md)."""
    return proc_state(pid) in (None, "Z", "X")


def reap_orphans() -> int:
    """Reap zombie children that no Popen owns (orphans adopted as subreaper); how many."""
    reaped = 0
    with _LOCK:
        for pid in child_pids():
            if pid in _OWN or proc_state(pid) != "Z":
                continue
            with contextlib.suppress(ChildProcessError):
                if os.waitpid(pid, os.WNOHANG)[0] == pid:
                    reaped += 1
    return reaped


class Reaper(threading.Thread):
    """Reaps adopted orphans every `interval` seconds until stopped."""

    def __init__(self, interval: float = 0.02) -> None:
        super().__init__(name="bench-reaper", daemon=True)
        self.interval = interval
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.wait(self.interval):
            reap_orphans()

    def stop(self) -> None:
        self._stop_event.set()


def spawn(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    stdin: int | None = subprocess.DEVNULL,
    stdout: int | None = subprocess.PIPE,
    stderr: int | None = subprocess.PIPE,
    pass_fds: Sequence[int] = (),
) -> subprocess.Popen[bytes]:
    """Popen registered with the reaper; call `release(proc)` once it has been waited for."""
    with _LOCK:
        proc = subprocess.Popen(
            list(argv),
            env=None if env is None else dict(env),
            cwd=cwd,
            stdin=stdin,
            stdout=stdout,
            stderr=stderr,
            pass_fds=tuple(pass_fds),
            start_new_session=False,
        )
        _OWN.add(proc.pid)
    return proc


def release(proc: subprocess.Popen[bytes]) -> None:
    """Forget a spawned process after its Popen has collected the exit status."""
    with _LOCK:
        _OWN.discard(proc.pid)


@dataclass(frozen=True)
class Result:
    rc: int
    stdout: str
    stderr: str


def run(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 120.0,
    check: bool = True,
    input_data: bytes | None = None,
) -> Result:
    """Run a command to completion (no shell); raise CommandFailed on rc != 0 when `check`."""
    proc = spawn(
        argv,
        env=env,
        cwd=cwd,
        stdin=subprocess.PIPE if input_data is not None else subprocess.DEVNULL,
    )
    try:
        out, err = proc.communicate(input=input_data, timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        release(proc)
        raise CommandFailed(argv, None, f"timed out after {timeout} s; {err.decode()}") from None
    release(proc)
    result = Result(proc.returncode, out.decode(errors="replace"), err.decode(errors="replace"))
    if check and result.rc != 0:
        raise CommandFailed(argv, result.rc, result.stderr or result.stdout)
    return result


@dataclass(frozen=True)
class Pid:
    """A process we are responsible for: its pid and the start time that identifies it."""

    pid: int
    started: int | None

    @classmethod
    def of(cls, pid: int) -> Pid:
        return cls(pid, start_time(pid))

    def alive(self) -> bool:
        """Still our process (same start time) and not a zombie."""
        return start_time(self.pid) == self.started and not is_dead(self.pid)


class Tracked:
    """The registry of processes to stop at the end (finally/atexit), by pid only."""

    def __init__(self) -> None:
        self._pids: dict[int, Pid] = {}
        self._lock = threading.Lock()

    def add(self, pid: int) -> Pid:
        entry = Pid.of(pid)
        with self._lock:
            self._pids[pid] = entry
        return entry

    def forget(self, pid: int) -> None:
        with self._lock:
            self._pids.pop(pid, None)

    def stop_all(self, grace: float = 2.0) -> list[int]:
        """SIGTERM every live tracked process, SIGKILL what is left after `grace`; the pids."""
        with self._lock:
            entries = list(self._pids.values())
            self._pids.clear()
        live = [e for e in entries if e.alive()]
        stop_pids(live, grace)
        return [e.pid for e in live]


def stop_pids(entries: Iterable[Pid], grace: float = 2.0) -> None:
    """SIGTERM, wait up to `grace` s for death, then SIGKILL; only pids that are still ours."""
    live = [e for e in entries if e.alive()]
    for e in live:
        with contextlib.suppress(ProcessLookupError):
            os.kill(e.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(e.alive() for e in live):
        time.sleep(0.02)
    for e in live:
        if e.alive():
            with contextlib.suppress(ProcessLookupError):
                os.kill(e.pid, signal.SIGKILL)


def kill_and_wait(entry: Pid, sig: int = signal.SIGKILL, timeout: float = 10.0) -> None:
    """Send `sig` to our process and wait until it is dead (zombie or gone)."""
    if entry.alive():
        with contextlib.suppress(ProcessLookupError):
            os.kill(entry.pid, sig)
    wait_dead(entry, timeout)


def wait_dead(entry: Pid, timeout: float = 30.0, interval: float = 0.002) -> None:
    """Poll until the process is a zombie or gone; TimeoutError otherwise."""
    deadline = time.monotonic() + timeout
    while entry.alive():
        if time.monotonic() > deadline:
            raise TimeoutError(f"process {entry.pid} still alive after {timeout} s")
        time.sleep(interval)


def rss_bytes(pid: int) -> int:
    """VmRSS of a process in bytes (0 when it is gone or a zombie)."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    for line in text.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def cmdline(pid: int) -> list[str]:
    """The argv of a process ([] when unreadable)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def environ_has(pid: int, entry: str) -> bool:
    """True when the process environment contains exactly `entry` (e.g. 'VMKIT_ROOT=/x')."""
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return False
    return entry.encode() in raw.split(b"\0")


def all_pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def find_qemu(uuid: str) -> int | None:
    """The live QEMU process whose argv has `-uuid UUID`, if any."""
    for pid in all_pids():
        argv = cmdline(pid)
        if not argv or "qemu-system" not in Path(argv[0]).name:
            continue
        for i, arg in enumerate(argv[:-1]):
            if arg == "-uuid" and argv[i + 1] == uuid and not is_dead(pid):
                return pid
    return None


def processes_named(names: Iterable[str]) -> list[int]:
    """Live pids whose /proc/PID/comm is one of `names`."""
    wanted = set(names)
    found = []
    for pid in all_pids():
        try:
            comm = Path(f"/proc/{pid}/comm").read_text().strip()
        except OSError:
            continue
        if comm in wanted and not is_dead(pid):
            found.append(pid)
    return found
