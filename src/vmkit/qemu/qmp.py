"""A synchronous QMP session to one QEMU over its unix socket.

Owns: connecting to a QMP socket, running commands, buffering and waiting for events,
passing file descriptors (`getfd`), and turning socket and protocol failures into vmkit's
errors. Must not: know what the commands mean (the engine does), launch QEMU (process.py), or
be shared between threads.

Why not qemu.qmp: its asyncio base costs 40-60 ms of imports on every command that talks to
QEMU (save, suspend, shutdown, ...), more than the whole QMP exchange of most commands. QMP
over a unix socket is JSON lines both ways, so a blocking socket does the job; the shape
follows qemu.qmp's: a session state with a guard naming current and required state, and one
error tree.

Errors (all QemuError):

    QemuError
    +-- QmpError            QEMU answered a command with an error (vmkit.errors)
    +-- QmpTimeout          no answer within the timeout (also a TimeoutError); the session
    |                       stays usable, a late answer is recognised by its id and dropped
    +-- QmpUnavailable      QEMU cannot be reached: socket missing, connection refused,
        |                   EOF, broken pipe ("QEMU is gone or not ours to talk to")
        +-- QmpStateError   the session is not connected; names current and required state

Events: every event that arrives while the session reads (during `execute` too) goes into the
session's buffer, so an event that came before or during an unrelated command is still found
by `wait_event` later. Each event is handed out once; the oldest are dropped beyond
`MAX_BUFFERED_EVENTS`.
"""

from __future__ import annotations

import enum
import json
import os
import socket
import time
from collections import deque

from vmkit.errors import QemuError, QmpError

TYPE_CHECKING = False  # typing costs every command that talks to QEMU ~2 ms at start-up
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from types import TracebackType
    from typing import Any

    Event = dict[str, Any]
    EventMatch = Callable[[Event], bool]

MAX_BUFFERED_EVENTS = 1000
_RECV_SIZE = 65536


class SessionState(enum.Enum):
    """Where a QmpSession is; only CONNECTED allows commands."""

    CONNECTED = "connected"
    DISCONNECTED = "disconnected"  # QEMU hung up or the connection broke
    CLOSED = "closed"  # closed by this side


class QmpUnavailable(QemuError):
    """QEMU cannot be reached over QMP at `path` (it is gone, or the socket is not there)."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"QMP socket {path} unavailable: {reason}")
        self.path = path
        self.reason = reason


class QmpStateError(QmpUnavailable):
    """An operation needed the session in `required` state but it was in `state`."""

    def __init__(
        self, path: str, operation: str, state: SessionState, required: SessionState
    ) -> None:
        reason = f"'{operation}' requires a {required.value} session, but it is {state.value}"
        super().__init__(path, reason)
        self.operation = operation
        self.state = state
        self.required = required


class QmpTimeout(QemuError, TimeoutError):
    """QEMU did not answer `what` within `timeout` seconds (it may still be alive)."""

    def __init__(self, path: str, what: str, timeout: float) -> None:
        super().__init__(f"QMP {what} on {path} got no answer within {timeout:g} s")
        self.path = path
        self.what = what
        self.timeout = timeout


class _Hangup(Exception):
    """QEMU closed the connection (internal; becomes QmpUnavailable)."""


class _Expired(Exception):
    """The deadline of a read passed (internal; becomes QmpTimeout or a None result)."""


class QmpSession:
    """One QMP connection; use `QmpSession.connect(path)`, preferably as a context manager."""

    def __init__(self, path: str, sock: socket.socket) -> None:
        self.path = path
        self._sock = sock
        self._state = SessionState.CONNECTED
        self._events: deque[Event] = deque(maxlen=MAX_BUFFERED_EVENTS)
        self._buffer = b""
        self._next_id = 0

    @classmethod
    def connect(cls, path: str | os.PathLike[str], *, timeout: float = 5.0) -> QmpSession:
        """Connect to the QMP socket at `path` and negotiate capabilities."""
        where = os.fspath(path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        session = cls(where, sock)
        try:
            session._handshake(timeout)
        except BaseException:
            session.close()
            raise
        return session

    @property
    def state(self) -> SessionState:
        return self._state

    def __enter__(self) -> QmpSession:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def execute(
        self, command: str, args: Mapping[str, object] | None = None, *, timeout: float = 30.0
    ) -> Any:
        """Run `command`; return QEMU's `return` value, or raise QmpError with its error."""
        self._require("execute")
        return self._call(command, args, timeout, fds=())

    def wait_event(
        self, name: str, timeout: float, match: EventMatch | None = None
    ) -> Event | None:
        """The first buffered or new event `name` that `match` accepts; None after `timeout`.

        Raises QmpUnavailable if QEMU hangs up before such an event came.
        """

        def accept(event: Event) -> bool:
            return event.get("event") == name and (match is None or match(event))

        found = self._take(accept)
        if found is not None:
            return found
        self._require("wait_event")
        deadline = time.monotonic() + timeout
        while True:
            try:
                message = self._read(deadline)
            except _Expired:
                return None
            except (_Hangup, OSError) as exc:
                raise self._lost(exc) from exc
            if "event" in message:
                if accept(message):
                    return message
                self._events.append(message)
            # a stray answer (to a command that timed out earlier) is dropped

    def send_fd(self, fd: int, fdname: str, *, timeout: float = 30.0) -> None:
        """Pass `fd` to QEMU over SCM_RIGHTS and name it `fdname` (`getfd`); fd stays open here."""
        self._require("send_fd")
        self._call("getfd", {"fdname": fdname}, timeout, fds=(fd,))

    def close(self) -> None:
        """Disconnect (if connected); idempotent."""
        self._sock.close()
        self._state = SessionState.CLOSED

    # -- internals ------------------------------------------------------------------------

    def _require(self, operation: str) -> None:
        if self._state is not SessionState.CONNECTED:
            raise QmpStateError(self.path, operation, self._state, SessionState.CONNECTED)

    def _handshake(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        self._connect(deadline, timeout)
        try:
            greeting = self._read(deadline)
        except _Expired as exc:
            self._state = SessionState.DISCONNECTED
            reason = f"no QMP greeting within {timeout:g} s (is another client attached?)"
            raise QmpUnavailable(self.path, reason) from exc
        except (_Hangup, OSError) as exc:
            raise self._lost(exc) from exc
        if "QMP" not in greeting:
            self._state = SessionState.DISCONNECTED
            raise QemuError(f"QMP protocol error on {self.path}: no greeting but {greeting!r}")
        self._call("qmp_capabilities", None, max(deadline - time.monotonic(), 0.001), fds=())

    def _connect(self, deadline: float, timeout: float) -> None:
        """Connect the socket; a full listen backlog (another client attached) is retried."""
        self._sock.settimeout(timeout)
        while True:
            try:
                self._sock.connect(self.path)
                return
            except BlockingIOError as exc:
                if time.monotonic() < deadline:
                    time.sleep(0.005)
                    continue
                reason = f"no connection within {timeout:g} s (is another client attached?)"
                self._state = SessionState.DISCONNECTED
                raise QmpUnavailable(self.path, reason) from exc
            except OSError as exc:
                self._state = SessionState.DISCONNECTED
                raise QmpUnavailable(self.path, exc.strerror or str(exc)) from exc

    def _call(
        self,
        command: str,
        args: Mapping[str, object] | None,
        timeout: float,
        *,
        fds: tuple[int, ...],
    ) -> Any:
        self._next_id += 1
        ident = f"vmkit#{self._next_id}"
        request: dict[str, object] = {"execute": command, "id": ident}
        if args is not None:
            request["arguments"] = dict(args)
        data = json.dumps(request, separators=(",", ":")).encode() + b"\n"
        deadline = time.monotonic() + timeout
        try:
            self._sock.settimeout(timeout)
            if fds:
                socket.send_fds(self._sock, [data], list(fds))
            else:
                self._sock.sendall(data)
            reply = self._answer_to(ident, deadline)
        except _Expired as exc:
            raise QmpTimeout(self.path, f"'{command}'", timeout) from exc
        except (_Hangup, OSError) as exc:
            raise self._lost(exc) from exc
        if "error" in reply:
            error = reply["error"]
            raise QmpError(command, str(error.get("class")), str(error.get("desc")))
        return reply.get("return")

    def _answer_to(self, ident: str, deadline: float) -> dict[str, Any]:
        """Read until the answer with id `ident`; buffer events, drop late answers."""
        while True:
            message = self._read(deadline)
            if "event" in message:
                self._events.append(message)
            elif message.get("id", ident) == ident:
                return message

    def _read(self, deadline: float) -> dict[str, Any]:
        """The next JSON message from QEMU (one per line)."""
        while True:
            line, sep, rest = self._buffer.partition(b"\n")
            if sep:
                self._buffer = rest
                if not line.strip():
                    continue
                try:
                    message = json.loads(line)
                except ValueError as exc:
                    raise QemuError(f"QMP protocol error on {self.path}: {exc}") from exc
                if not isinstance(message, dict):
                    raise QemuError(f"QMP protocol error on {self.path}: {message!r}")
                return message
            left = deadline - time.monotonic()
            if left <= 0:
                raise _Expired
            self._sock.settimeout(left)
            try:
                chunk = self._sock.recv(_RECV_SIZE)
            except TimeoutError as exc:
                raise _Expired from exc
            if not chunk:
                raise _Hangup
            self._buffer += chunk

    def _lost(self, exc: BaseException) -> QmpUnavailable:
        """The connection broke: mark the session and describe why."""
        self._sock.close()
        self._state = SessionState.DISCONNECTED
        if isinstance(exc, TimeoutError):
            reason = "QEMU stopped reading its QMP socket"
        elif isinstance(exc, OSError) and exc.strerror:
            reason = exc.strerror
        else:
            reason = "QEMU closed the connection"
        return QmpUnavailable(self.path, reason)

    def _take(self, accept: EventMatch) -> Event | None:
        for index, event in enumerate(self._events):
            if accept(event):
                del self._events[index]
                return event
        return None
