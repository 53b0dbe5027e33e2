"""Per-object locks: commands on one object serialise, commands on different objects never wait.

`object_lock(paths, "domain", uuid, name="vm1")` holds an exclusive `flock(2)` on
`Paths.locks_dir/domain-<uuid>.lock` for the duration of a `with` block. Why flock:
- the kernel drops it when the holder dies, even by SIGKILL: no stale lock to clean up, no pid
  files to judge;
- it belongs to the open file description, which vmkit opens close-on-exec (Python's default),
  so a QEMU that vmkit launches never inherits its lock;
- two threads of one process (`vmkit serve`) exclude each other too, because each acquisition
  opens the file anew. Within one thread the lock is re-entrant, so an engine operation that
  calls another on the same object does not deadlock on itself.

Lock by uuid when the object has one (it survives a rename) and pass `name` for the message.
Lock files are never deleted: unlinking a lock file while another process waits on it would let
two processes hold "the" lock at once. They are empty and live on the runtime filesystem.

There is no store-wide lock: what needs uniqueness across objects (a name or uuid taken by
`define`) is checked and written inside one `BEGIN IMMEDIATE` transaction of the store, which
SQLite serialises (see store.py). Locks are taken before the store's transactions, never inside.
"""

from __future__ import annotations

import fcntl
import os
import time
from _thread import get_ident  # `threading` itself costs start-up ~1 ms
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from vmkit.errors import Conflict, VmkitError
from vmkit.state.paths import Paths

LOCK_TIMEOUT = 30.0
"""Seconds a command waits for another command on the same object by default."""

_SAFE = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")
_held: dict[tuple[int, str], int] = {}  # (thread, lock file) -> depth, for re-entry


def lock_path(paths: Paths, kind: str, key: str) -> Path:
    """The lock file of object `key` of `kind`; any name maps to one safe file name."""
    safe = "".join(c if c in _SAFE else "".join(f"%{b:02X}" for b in c.encode()) for c in key)
    if not key or len(safe) > 200:
        import hashlib  # only for names too long for a file name (rare; keeps startup fast)

        safe = "sha256-" + hashlib.sha256(key.encode()).hexdigest()
    return paths.locks_dir / f"{kind}-{safe}.lock"


@contextmanager
def object_lock(
    paths: Paths,
    kind: str,
    key: str,
    *,
    name: str | None = None,
    timeout: float | None = LOCK_TIMEOUT,
) -> Iterator[None]:
    """Hold the lock of one object; `timeout` None waits forever, 0 tries once.

    Raises Conflict ("domain 'vm1' is busy: ...") when another command keeps it past `timeout`.
    """
    path = lock_path(paths, kind, key)
    token = (get_ident(), str(path))
    if token in _held:
        _held[token] += 1
        try:
            yield
        finally:
            _held[token] -= 1
        return
    fd = _open(path)
    try:
        _acquire(fd, timeout, kind, name or key)
        _held[token] = 1
        try:
            yield
        finally:
            del _held[token]
    finally:
        os.close(fd)  # releases the flock


def _open(path: Path) -> int:
    try:
        try:
            return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except FileNotFoundError:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError as e:
        raise VmkitError(f"cannot open lock file {path}: {e.strerror}") from e


def _acquire(fd: int, timeout: float | None, kind: str, name: str) -> None:
    """flock with a deadline: poll with a short, growing sleep (flock itself has no timeout)."""
    if timeout is None:
        fcntl.flock(fd, fcntl.LOCK_EX)
        return
    deadline = time.monotonic() + timeout
    delay = 0.001
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            pass
        left = deadline - time.monotonic()
        if left <= 0:
            raise Conflict(
                kind,
                name,
                f"{kind} '{name}' is busy: another vmkit command holds its lock"
                f" (waited {timeout:g} s)",
            )
        time.sleep(min(delay, left))
        delay = min(delay * 2, 0.02)
