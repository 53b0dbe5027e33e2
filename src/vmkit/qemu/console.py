"""The serial console of a running QEMU: a program's client, a person's attach, the history.

QEMU serves the console as `-chardev socket,id=ser0,path=X.sock,server=on,wait=off,
logfile=X.log,logappend=on -serial chardev:ser0`. The guest never blocks on it; what it
prints while nobody is attached is only in X.log (`read_history`).

Owns: `ConsoleClient` (send, read_until, run: for programs and tests), `attach_interactive`
(a person's terminal or a script's pipe, like `virsh console`), the exclusive-attach lock and
`read_history`. Must not: build QEMU's argv (argv.py) or know which domain a socket belongs to.

One client at a time: QEMU accepts a second connection but never reads or writes it until
the first one goes, so a second client would hang. Every client therefore holds
`ConsoleLock`, an flock on X.sock.lock (the file holds the holder's pid); a second client
gets ConsoleBusy. `force=True` steals the console: it atomically renames a new, already
locked lock file over X.sock.lock. Holders check every `TICK` seconds whether the lock file
at that path is still the one they locked; if not they disconnect from QEMU and then let go
of the old file's flock. The stealer waits for that (up to `STEAL_GRACE`) before it connects,
so QEMU serves it. A holder that does not notice in time (hung) makes force fail with
ConsoleBusy; nothing here kills processes.

Errors: ConsoleUnavailable (QemuError: socket missing/refused/closed, or taken over),
ConsoleBusy (Conflict), ConsoleTimeout (QemuError and TimeoutError, with the tail read).
"""

from __future__ import annotations

import codecs
import contextlib
import fcntl
import os
import re
import select
import signal
import socket
import tempfile
import termios
import threading
import time
import tty
from collections.abc import Iterator
from pathlib import Path
from types import FrameType, TracebackType
from typing import Literal

from vmkit.errors import Conflict, QemuError

DetachReason = Literal[
    "escape",  # the user typed the escape byte (TTY only)
    "guest-closed",  # QEMU closed the console (it exited)
    "input-ended",  # stdin reached EOF and the guest then stayed quiet for `linger` s
    "taken-over",  # another session attached with force
    "output-closed",  # stdout could not be written any more
    "signal",  # SIGTERM/SIGHUP while a terminal was attached
]

TICK = 0.2
STEAL_GRACE = 2.0
LOCK_SUFFIX = ".lock"
_TAIL_CHARS = 300
_READ_SIZE = 65536


class ConsoleUnavailable(QemuError):
    """The console socket at `path` cannot be used: `reason` says why."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"console {path} unavailable: {reason}")
        self.path = path
        self.reason = reason


class ConsoleBusy(Conflict):
    """Another session holds the console (pid `holder`, if known)."""

    def __init__(self, path: str, holder: int | None, detail: str = "") -> None:
        who = f"pid {holder}" if holder else "another session"
        message = detail or f"console {path} is in use by {who}; force to take it over"
        super().__init__("console", path, message)
        self.holder = holder


class ConsoleTimeout(QemuError, TimeoutError):
    """`pattern` did not appear within `timeout` s; `tail` is the end of what was read."""

    def __init__(self, path: str, pattern: str, timeout: float, tail: str) -> None:
        super().__init__(
            f"console {path}: {pattern!r} not seen within {timeout:g} s; last output: {tail!r}"
        )
        self.path = path
        self.pattern = pattern
        self.timeout = timeout
        self.tail = tail


class ConsoleLock:
    """The exclusive right to talk on one console socket (see the module docstring)."""

    def __init__(self, lock_path: Path, fd: int) -> None:
        self.path = lock_path
        self._fd = fd
        stat = os.fstat(fd)
        self._identity = (stat.st_dev, stat.st_ino)

    @classmethod
    def acquire(
        cls, sock_path: str | os.PathLike[str], *, force: bool = False, grace: float = STEAL_GRACE
    ) -> ConsoleLock:
        """Lock the console of `sock_path`; ConsoleBusy if held (and not stolen with `force`)."""
        lock_path = Path(f"{os.fspath(sock_path)}{LOCK_SUFFIX}")
        for _ in range(10):  # the file can be replaced between open and flock: retry
            fd = _open_lock(lock_path)
            if not _try_flock(fd):
                if not force:
                    holder = _read_holder(fd)
                    os.close(fd)
                    raise ConsoleBusy(os.fspath(sock_path), holder)
                return cls._steal(lock_path, fd, grace)
            lock = cls(lock_path, fd)
            if not lock.stolen():
                lock._write_holder()
                return lock
            lock.release()
        raise ConsoleBusy(os.fspath(sock_path), None, "console lock keeps changing hands")

    @classmethod
    def _steal(cls, lock_path: Path, old_fd: int, grace: float) -> ConsoleLock:
        """Put a locked lock file in place, then wait for the old holder to let go."""
        holder = _read_holder(old_fd)
        fd, tmp = tempfile.mkstemp(prefix=f"{lock_path.name}.", dir=lock_path.parent)
        lock = cls(Path(tmp), fd)
        _try_flock(fd)  # a brand-new file: nobody else can hold it
        lock._write_holder()
        os.replace(tmp, lock_path)
        lock.path = lock_path
        try:
            released = _wait_flock(old_fd, grace)
        finally:
            os.close(old_fd)
        if not released:
            lock.release()
            detail = f"pid {holder} did not let go of console {lock_path} within {grace:g} s"
            raise ConsoleBusy(str(lock_path), holder, detail)
        return lock

    def stolen(self) -> bool:
        """True if the lock file at our path is no longer the one we locked."""
        try:
            stat = os.stat(self.path)
        except FileNotFoundError:
            return True
        return (stat.st_dev, stat.st_ino) != self._identity

    def release(self) -> None:
        """Let go (the file stays: removing it would race with the next locker)."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def _write_holder(self) -> None:
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, f"{os.getpid()}\n".encode(), 0)


class ConsoleClient:
    """A program's connection to a console: send text, wait for patterns, run commands."""

    def __init__(self, sock_path: str | os.PathLike[str], *, force: bool = False) -> None:
        self.path = os.fspath(sock_path)
        self._lock = ConsoleLock.acquire(sock_path, force=force)
        try:
            self._sock = connect_console(sock_path)
        except BaseException:
            self._lock.release()
            raise
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._text = ""

    def __enter__(self) -> ConsoleClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def send(self, text: str | bytes) -> None:
        """Type `text` into the guest (send "\\n" yourself to end a line)."""
        data = text.encode() if isinstance(text, str) else text
        try:
            self._sock.sendall(data)
        except OSError as exc:
            raise ConsoleUnavailable(self.path, exc.strerror or "send failed") from exc

    def read_until(self, pattern: str | re.Pattern[str], timeout: float) -> str:
        """Read until `pattern` (a plain string or a regex) appears; return text up to its end."""
        before, match = self._read_match(_compile(pattern), timeout)
        return before + match.group(0)

    def run(self, command: str, prompt: str | re.Pattern[str], timeout: float) -> str:
        """Type `command`, return its output: the text between its echo and the next `prompt`.

        Output printed before the call is discarded first. Line ends come back as "\\n". The
        command must fit on one terminal line, or the guest's echo of it is not recognised.
        """
        deadline = time.monotonic() + timeout
        self._discard_pending(deadline)
        self.send(command + "\n")
        self._read_match(re.compile(re.escape(command) + r"[^\n]*\n"), timeout)
        left = max(0.0, deadline - time.monotonic())
        output, _ = self._read_match(_compile(prompt), left)
        output = output.replace("\r\n", "\n").replace("\r", "")
        return output.removesuffix("\n")

    def close(self) -> None:
        """Disconnect from QEMU, then release the lock (in that order, see ConsoleLock)."""
        self._sock.close()
        self._lock.release()

    def _read_match(self, regex: re.Pattern[str], timeout: float) -> tuple[str, re.Match[str]]:
        deadline = time.monotonic() + timeout
        while True:
            match = regex.search(self._text)
            if match is not None:
                before = self._text[: match.start()]
                self._text = self._text[match.end() :]
                return before, match
            left = deadline - time.monotonic()
            if left <= 0:
                tail = self._text[-_TAIL_CHARS:]
                raise ConsoleTimeout(self.path, regex.pattern, timeout, tail)
            self._fill(min(left, TICK))

    def _fill(self, wait: float) -> bool:
        """Append what the guest printed within `wait` s to the buffer; False if nothing came."""
        if self._lock.stolen():
            raise ConsoleUnavailable(self.path, "taken over by another session")
        if not _readable(self._sock, wait):
            return False
        try:
            data = self._sock.recv(_READ_SIZE)
        except OSError as exc:
            raise ConsoleUnavailable(self.path, exc.strerror or "receive failed") from exc
        if not data:
            raise ConsoleUnavailable(self.path, "QEMU closed the console")
        self._text += self._decoder.decode(data)
        return True

    def _discard_pending(self, deadline: float) -> None:
        while time.monotonic() < deadline and self._fill(0):
            pass
        self._text = ""


def connect_console(sock_path: str | os.PathLike[str]) -> socket.socket:
    """A connected socket to QEMU's console server (no lock: callers hold ConsoleLock)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    try:
        sock.connect(os.fspath(sock_path))
    except OSError as exc:
        sock.close()
        raise ConsoleUnavailable(os.fspath(sock_path), exc.strerror or str(exc)) from exc
    return sock


def attach_interactive(
    sock_path: str | os.PathLike[str],
    stdin_fd: int,
    stdout_fd: int,
    *,
    escape: bytes = b"\x1d",
    force: bool = False,
    linger: float = 1.0,
) -> DetachReason:
    """Connect a terminal or a pipe to the console until the user or the input is done.

    TTY stdin: raw mode (always restored, also on SIGTERM/SIGHUP when called from the main
    thread), both directions copied until the `escape` byte (Ctrl-]) or QEMU closes.
    Other stdin (pipe, file): its bytes go to the guest unchanged (no escape byte); after its
    EOF, guest output is copied until the guest stays silent for `linger` seconds.
    """
    lock = ConsoleLock.acquire(sock_path, force=force)
    try:
        with contextlib.closing(connect_console(sock_path)) as sock:
            bridge = _Bridge(sock, lock, stdin_fd, stdout_fd)
            if not os.isatty(stdin_fd):
                return bridge.run(None, linger)
            try:
                with _signals_raise(), _raw_mode(stdin_fd):
                    return bridge.run(escape, None)
            except _Signalled:
                return "signal"
    finally:
        lock.release()


def read_history(log_path: str | os.PathLike[str], max_bytes: int | None = None) -> bytes:
    """What the guest printed on the console (the last `max_bytes`); b"" if there is no log."""
    try:
        with open(log_path, "rb") as log:
            if max_bytes is not None:
                log.seek(max(0, os.fstat(log.fileno()).st_size - max_bytes))
            return log.read()
    except FileNotFoundError:
        return b""


class _Bridge:
    """Copies bytes between a console socket and an input/output pair of fds."""

    def __init__(self, sock: socket.socket, lock: ConsoleLock, stdin_fd: int, out_fd: int) -> None:
        self._sock = sock
        self._lock = lock
        self._in = stdin_fd
        self._out = out_fd
        self._poll = select.poll()
        self._poll.register(sock, select.POLLIN)
        self._poll.register(stdin_fd, select.POLLIN)
        self._quiet_until: float | None = None  # set once the input has ended

    def run(self, escape: bytes | None, linger: float | None) -> DetachReason:
        while True:
            for fd, _ in self._poll.poll(self._wait() * 1000):
                if fd == self._sock.fileno():
                    reason = self._from_guest(linger)
                else:
                    reason = self._from_input(escape, linger)
                if reason is not None:
                    return reason
            if self._lock.stolen():
                return "taken-over"
            if self._quiet_until is not None and time.monotonic() >= self._quiet_until:
                return "input-ended"

    def _wait(self) -> float:
        if self._quiet_until is None:
            return TICK
        return max(0.0, min(TICK, self._quiet_until - time.monotonic()))

    def _from_guest(self, linger: float | None) -> DetachReason | None:
        try:
            data = self._sock.recv(_READ_SIZE)
        except OSError:
            data = b""  # reset by QEMU: same as a close
        if not data:
            return "guest-closed"
        try:
            _write_all(self._out, data)
        except OSError:
            return "output-closed"
        if self._quiet_until is not None and linger is not None:
            self._quiet_until = time.monotonic() + linger
        return None

    def _from_input(self, escape: bytes | None, linger: float | None) -> DetachReason | None:
        data = os.read(self._in, 4096)
        if escape is not None and escape in data:
            self._send(data[: data.index(escape)])
            return "escape"
        if data:
            return None if self._send(data) else "guest-closed"
        if linger is None:
            return "input-ended"
        self._poll.unregister(self._in)
        self._quiet_until = time.monotonic() + linger
        return None

    def _send(self, data: bytes) -> bool:
        try:
            self._sock.sendall(data)
        except OSError:
            return False  # QEMU went away; the next poll sees the close
        return True


class _Signalled(Exception):
    """Internal: SIGTERM/SIGHUP arrived while a terminal was in raw mode."""


@contextlib.contextmanager
def _raw_mode(fd: int) -> Iterator[None]:
    saved = termios.tcgetattr(fd)
    tty.setraw(fd)
    try:
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


@contextlib.contextmanager
def _signals_raise() -> Iterator[None]:
    """Turn SIGTERM/SIGHUP into _Signalled so that `finally` blocks restore the terminal."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        raise _Signalled(signum)

    saved = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, previous in saved.items():
            signal.signal(sig, previous)


def _readable(sock: socket.socket, wait: float) -> bool:
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    return bool(poller.poll(wait * 1000))


def _compile(pattern: str | re.Pattern[str]) -> re.Pattern[str]:
    return re.compile(re.escape(pattern)) if isinstance(pattern, str) else pattern


def _open_lock(path: Path) -> int:
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise ConsoleUnavailable(str(path), f"cannot open lock: {exc.strerror}") from exc


def _try_flock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _wait_flock(fd: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not _try_flock(fd):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.01)
    return True


def _read_holder(fd: int) -> int | None:
    text = os.pread(fd, 32, 0).decode(errors="replace").strip()
    return int(text) if text.isdigit() else None


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
