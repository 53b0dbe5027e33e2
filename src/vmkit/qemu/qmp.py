"""A synchronous QMP session to one QEMU, built on qemu.qmp's asyncio QMPClient.

Owns: connecting to a QMP unix socket, running commands, buffering and waiting for events,
passing file descriptors (`getfd`), and turning qemu.qmp's errors into vmkit's.
Must not: know what the commands mean (the engine does), launch QEMU (process.py), or be
shared between threads. Each session runs qemu.qmp on its own private event loop, driven
only while a call is in progress; call it from synchronous code (not from inside a running
asyncio loop).

Errors (all QemuError):

    QemuError
    +-- QmpError            QEMU answered a command with an error (vmkit.errors)
    +-- QmpTimeout          no answer within the timeout (also a TimeoutError)
    +-- QmpUnavailable      QEMU cannot be reached: socket missing, connection refused,
        |                   EOF, broken pipe ("QEMU is gone or not ours to talk to")
        +-- QmpStateError   the session is not connected; names current and required state

Events: from the moment the session is established, a listener puts every event into this
session's buffer (QMPClient's default listener is muted, so nothing piles up twice), so an
event that arrived before or during an unrelated `execute` is still found by `wait_event`
later. Each event is handed out once; the oldest are dropped beyond `MAX_BUFFERED_EVENTS`.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import os
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from types import TracebackType
from typing import Any, TypeVar

from qemu.qmp import (
    ConnectError,
    EventListener,
    ExecInterruptedError,
    ExecuteError,
    Message,
    QMPClient,
    QMPError,
)
from qemu.qmp import Runstate as _Runstate
from qemu.qmp import StateError as _ClientStateError

from vmkit.errors import QemuError, QmpError

T = TypeVar("T")
Event = dict[str, Any]
EventMatch = Callable[[Event], bool]

MAX_BUFFERED_EVENTS = 1000
_CLOSE_TIMEOUT = 2.0


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


class _EventSink(EventListener):
    """Appends every event to a buffer and signals `arrived`; queues nothing, keeps no history."""

    def __init__(self, buffer: deque[Event]) -> None:
        super().__init__()
        self._buffer = buffer
        self.arrived = asyncio.Event()

    def accept(self, event: Message) -> bool:
        self._buffer.append(dict(event))
        self.arrived.set()
        return False


class QmpSession:
    """One QMP connection; use `QmpSession.connect(path)`, preferably as a context manager."""

    def __init__(self, path: str, loop: asyncio.AbstractEventLoop, client: QMPClient) -> None:
        self.path = path
        self._loop = loop
        self._client = client
        self._state = SessionState.CONNECTED
        self._events: deque[Event] = deque(maxlen=MAX_BUFFERED_EVENTS)
        self._sink = _EventSink(self._events)
        client.events.event_filter = lambda event: False  # the sink gets them all
        client.register_listener(self._sink)

    @classmethod
    def connect(cls, path: str | os.PathLike[str], *, timeout: float = 5.0) -> QmpSession:
        """Connect to the QMP socket at `path` and negotiate capabilities."""
        loop = asyncio.new_event_loop()
        session = cls(os.fspath(path), loop, QMPClient())
        try:
            session._connect(timeout)
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
        try:
            return self._run(self._client.execute(command, args), timeout, f"'{command}'")
        except ExecuteError as exc:
            raise QmpError(command, exc.error_class, exc.error.error.desc) from exc

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
        return self._run(self._await_event(accept, timeout), None, f"wait for {name}")

    def send_fd(self, fd: int, fdname: str, *, timeout: float = 30.0) -> None:
        """Pass `fd` to QEMU over SCM_RIGHTS and name it `fdname` (`getfd`); fd stays open here."""
        self._require("send_fd")
        try:
            self._client.send_fd_scm(fd)
        except (OSError, _ClientStateError) as exc:
            self._lose()
            raise QmpUnavailable(self.path, _describe(exc)) from exc
        self.execute("getfd", {"fdname": fdname}, timeout=timeout)

    def close(self) -> None:
        """Disconnect (if connected) and release the private event loop; idempotent."""
        if self._loop.is_closed():
            self._state = SessionState.CLOSED
            return
        try:
            self._disconnect_quietly()
            self._cancel_leftover_tasks()
        finally:
            self._loop.close()
            self._state = SessionState.CLOSED

    # -- internals ------------------------------------------------------------------------

    def _require(self, operation: str) -> None:
        if self._state is not SessionState.CONNECTED:
            raise QmpStateError(self.path, operation, self._state, SessionState.CONNECTED)

    def _connect(self, timeout: float) -> None:
        try:
            self._run(self._client.connect(self.path), timeout, "connect")
        except AssertionError as exc:
            # qemu.qmp asserts RUNNING at the end of connect(); a peer that hangs up right
            # after the handshake trips it.
            self._lose()
            raise QmpUnavailable(self.path, "QEMU closed the connection") from exc

    def _run(self, aw: Awaitable[T], timeout: float | None, what: str) -> T:
        """Drive `aw` on the private loop; convert connection-level failures."""
        try:
            return self._loop.run_until_complete(asyncio.wait_for(aw, timeout))
        except ExecuteError:
            raise
        except TimeoutError as exc:
            if what == "connect":
                reason = f"no QMP greeting within {timeout:g} s (is another client attached?)"
                raise QmpUnavailable(self.path, reason) from exc
            raise QmpTimeout(self.path, what, timeout or 0) from exc
        except (ConnectError, ExecInterruptedError, _ClientStateError, EOFError, OSError) as exc:
            self._lose()
            raise QmpUnavailable(self.path, _describe(exc)) from exc
        except QMPError as exc:
            raise QemuError(f"QMP protocol error on {self.path}: {exc}") from exc

    def _lose(self) -> None:
        """The connection is broken: collect qemu.qmp's tasks and mark the session."""
        self._disconnect_quietly()
        self._state = SessionState.DISCONNECTED

    def _disconnect_quietly(self) -> None:
        if self._client.runstate is _Runstate.IDLE:
            return
        aw = asyncio.wait_for(self._client.disconnect(), _CLOSE_TIMEOUT)
        # The peer is gone or broke the protocol; the stream is closed either way.
        with contextlib.suppress(QMPError, EOFError, OSError, TimeoutError):
            self._loop.run_until_complete(aw)

    def _cancel_leftover_tasks(self) -> None:
        tasks = asyncio.all_tasks(self._loop)
        for task in tasks:
            task.cancel()
        if tasks:
            gathered = asyncio.gather(*tasks, return_exceptions=True)
            self._loop.run_until_complete(gathered)

    async def _await_event(self, accept: EventMatch, timeout: float) -> Event | None:
        deadline = self._loop.time() + timeout
        while True:
            found = self._take(accept)
            if found is not None:
                return found
            if self._client.runstate is not _Runstate.RUNNING:
                raise EOFError("QEMU closed the QMP connection")
            left = deadline - self._loop.time()
            if left <= 0:
                return None
            await self._next_change(left)

    async def _next_change(self, timeout: float) -> None:
        """Wait until an event arrives, the connection changes state, or `timeout` passes."""
        self._sink.arrived.clear()
        waits = {
            asyncio.ensure_future(self._sink.arrived.wait()),
            asyncio.ensure_future(self._client.runstate_changed()),
        }
        first = asyncio.FIRST_COMPLETED
        _, pending = await asyncio.wait(waits, timeout=timeout, return_when=first)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    def _take(self, accept: EventMatch) -> Event | None:
        for index, event in enumerate(self._events):
            if accept(event):
                del self._events[index]
                return event
        return None


def _describe(exc: BaseException) -> str:
    """A short reason for a connection failure, from qemu.qmp's wrapped root cause."""
    root = exc.exc if isinstance(exc, ConnectError) else exc
    if isinstance(root, OSError) and root.strerror:
        return root.strerror
    if isinstance(root, EOFError | ExecInterruptedError):
        return "QEMU closed the connection"
    return str(root) or type(root).__name__
