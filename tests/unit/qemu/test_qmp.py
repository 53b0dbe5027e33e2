"""QmpSession against a fake QMP server (a unix socket served by a thread), no QEMU."""

from __future__ import annotations

import json
import os
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from vmkit.errors import QemuError, QmpError
from vmkit.qemu.qmp import (
    MAX_BUFFERED_EVENTS,
    QmpSession,
    QmpStateError,
    QmpTimeout,
    QmpUnavailable,
    SessionState,
)

GREETING = {"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7}, "package": ""},
                    "capabilities": []}}  # fmt: skip
DECODER = json.JSONDecoder()
CLOSE = {"close": True}  # in a reply list: hang up after sending what came before

Reply = list[dict[str, Any]]
Handler = Callable[[dict[str, Any]], Reply]


def event(name: str, **data: Any) -> dict[str, Any]:
    return {"event": name, "data": data, "timestamp": {"seconds": 1, "microseconds": 0}}


class FakeQmp:
    """Serves one QMP connection: greets, negotiates, then answers with `handler`."""

    def __init__(self, path: Path, handler: Handler, *, greet: bool = True) -> None:
        self.path = path
        self.handler = handler
        self.greet = greet
        self.on_connect: Reply = []  # sent right after qmp_capabilities is answered
        self.received: list[dict[str, Any]] = []
        self.fds: list[int] = []
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(str(path))
        self._listener.listen(1)
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def join(self) -> None:
        self._thread.join(5)

    def stop(self) -> None:
        self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        self._thread.join(5)
        for fd in self.fds:
            os.close(fd)

    def _serve(self) -> None:
        try:
            conn, _ = self._listener.accept()
        except OSError:
            return  # stopped before anyone connected
        with conn:
            if self.greet:
                _send(conn, [GREETING])
            self._converse(conn)

    def _converse(self, conn: socket.socket) -> None:
        """Read a stream of JSON objects (qemu.qmp sends no newlines between them)."""
        buf = ""
        while True:
            data, fds, _, _ = socket.recv_fds(conn, 65536, 4)
            self.fds.extend(fds)
            if not data:
                return
            buf += data.decode()
            while buf.strip():
                try:
                    msg, end = DECODER.raw_decode(buf.lstrip())
                except json.JSONDecodeError:
                    break  # incomplete: read more
                buf = buf.lstrip()[end:]
                if not _send(conn, self._answer(msg)):
                    return

    def _answer(self, msg: dict[str, Any]) -> Reply:
        self.received.append(msg)
        if msg["execute"] == "qmp_capabilities":
            return [{"return": {}, "id": msg.get("id")}, *self.on_connect]
        replies = self.handler(msg)
        for reply in replies:
            if "return" in reply or "error" in reply:
                reply.setdefault("id", msg.get("id"))
        return replies


def _send(conn: socket.socket, replies: Reply) -> bool:
    for reply in replies:
        if reply is CLOSE:
            return False
        if "sleep" in reply:
            time.sleep(reply["sleep"])
            continue
        conn.sendall(json.dumps(reply).encode() + b"\n")
    return True


def ok(value: Any = None) -> Reply:
    return [{"return": {} if value is None else value}]


@pytest.fixture
def sockdir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="vk"))
    yield path
    for child in path.iterdir():
        child.unlink()
    path.rmdir()


@pytest.fixture
def serve(sockdir: Path) -> Iterator[Callable[..., FakeQmp]]:
    servers: list[FakeQmp] = []

    def start(handler: Handler = lambda msg: ok(), **kwargs: Any) -> FakeQmp:
        server = FakeQmp(sockdir / f"qmp{len(servers)}.sock", handler, **kwargs)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def test_execute_returns_the_value(serve: Callable[..., FakeQmp]) -> None:
    server = serve(lambda msg: ok({"status": "prelaunch", "running": False}))
    with QmpSession.connect(server.path) as qmp:
        assert qmp.state is SessionState.CONNECTED
        assert qmp.execute("query-status") == {"status": "prelaunch", "running": False}
        qmp.execute("device_del", {"id": "disk1"})
    assert server.received[-1]["arguments"] == {"id": "disk1"}
    assert qmp.state is SessionState.CLOSED


def test_execute_error_is_qmp_error(serve: Callable[..., FakeQmp]) -> None:
    error = {"error": {"class": "DeviceNotFound", "desc": "Device 'x' not found"}}
    server = serve(lambda msg: [dict(error)])
    with QmpSession.connect(server.path) as qmp, pytest.raises(QmpError) as info:
        qmp.execute("device_del", {"id": "x"})
    assert (info.value.command, info.value.error_class) == ("device_del", "DeviceNotFound")
    assert info.value.desc == "Device 'x' not found"
    assert "device_del" in str(info.value)


def test_events_that_came_earlier_are_kept(serve: Callable[..., FakeQmp]) -> None:
    server = serve(lambda msg: [event("RESUME"), *ok()])
    server.on_connect = [
        event("DEVICE_DELETED", device="net1-backend"),
        event("DEVICE_DELETED", device="net1"),
        event("STOP"),
    ]
    with QmpSession.connect(server.path) as qmp:
        qmp.execute("cont")  # the events arrive while this runs
        assert qmp.wait_event("STOP", 0)["event"] == "STOP"  # type: ignore[index]
        got = qmp.wait_event("DEVICE_DELETED", 1, lambda e: e["data"]["device"] == "net1")
        assert got is not None and got["data"] == {"device": "net1"}
        assert qmp.wait_event("RESUME", 1) is not None
        other = qmp.wait_event("DEVICE_DELETED", 1)
        assert other is not None and other["data"] == {"device": "net1-backend"}
        assert qmp.wait_event("STOP", 0.05) is None  # each event is handed out once


def test_wait_event_waits_for_a_late_event(serve: Callable[..., FakeQmp]) -> None:
    server = serve(lambda msg: [*ok(), event("STOP")] if msg["execute"] == "stop" else ok())
    with QmpSession.connect(server.path) as qmp:
        assert qmp.wait_event("STOP", 0.1) is None
        qmp.execute("stop")
        assert qmp.wait_event("STOP", 1) is not None


def test_wait_event_timeout(serve: Callable[..., FakeQmp]) -> None:
    server = serve()
    with QmpSession.connect(server.path) as qmp:
        started = time.monotonic()
        assert qmp.wait_event("SHUTDOWN", 0.2) is None
        assert 0.15 < time.monotonic() - started < 1.0


def test_hangup_after_events(serve: Callable[..., FakeQmp]) -> None:
    def quit_(msg: dict[str, Any]) -> Reply:
        return [*ok(), event("SHUTDOWN", guest=False, reason="host-qmp-quit"), CLOSE]

    server = serve(quit_)
    with QmpSession.connect(server.path) as qmp:
        qmp.execute("quit")
        started = time.monotonic()
        shutdown = qmp.wait_event("SHUTDOWN", 5)
        assert shutdown is not None and shutdown["data"]["reason"] == "host-qmp-quit"
        with pytest.raises(QmpUnavailable) as info:
            qmp.wait_event("RESET", 5)
        assert time.monotonic() - started < 2  # noticed the EOF, did not sit out the timeout
        assert not isinstance(info.value, QmpStateError)
        assert qmp.state is SessionState.DISCONNECTED
        with pytest.raises(QmpStateError) as state:
            qmp.execute("query-status")
        assert state.value.state is SessionState.DISCONNECTED
        assert state.value.required is SessionState.CONNECTED
        assert "disconnected" in str(state.value) and "connected session" in str(state.value)


def test_hangup_during_execute(serve: Callable[..., FakeQmp]) -> None:
    server = serve(lambda msg: [CLOSE])
    with QmpSession.connect(server.path) as qmp:
        with pytest.raises(QmpUnavailable) as info:
            qmp.execute("query-status")
        assert "closed the connection" in str(info.value)
        assert qmp.state is SessionState.DISCONNECTED


def test_missing_socket(sockdir: Path) -> None:
    with pytest.raises(QmpUnavailable) as info:
        QmpSession.connect(sockdir / "nothing.sock")
    assert "No such file" in str(info.value)
    assert info.value.path == str(sockdir / "nothing.sock")


def test_connection_refused(sockdir: Path) -> None:
    path = sockdir / "dead.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as dead:
        dead.bind(str(path))  # bound, never listening: like a socket left by a dead QEMU
        with pytest.raises(QmpUnavailable) as info:
            QmpSession.connect(path)
    assert "refused" in str(info.value)


def test_no_greeting(serve: Callable[..., FakeQmp]) -> None:
    server = serve(greet=False)
    started = time.monotonic()
    with pytest.raises(QmpUnavailable) as info:
        QmpSession.connect(server.path, timeout=0.3)
    assert time.monotonic() - started < 2
    assert "greeting" in str(info.value)


def test_execute_timeout_keeps_the_session(serve: Callable[..., FakeQmp]) -> None:
    server = serve(lambda msg: [] if msg["execute"] == "slow" else ok(7))
    with QmpSession.connect(server.path) as qmp:
        with pytest.raises(QmpTimeout) as info:
            qmp.execute("slow", timeout=0.2)
        assert isinstance(info.value, TimeoutError)
        assert isinstance(info.value, QemuError)
        assert not isinstance(info.value, QmpUnavailable)
        assert qmp.state is SessionState.CONNECTED
        assert qmp.execute("query-fast") == 7


def test_closed_session_names_states(serve: Callable[..., FakeQmp]) -> None:
    server = serve()
    qmp = QmpSession.connect(server.path)
    qmp.close()
    qmp.close()  # idempotent
    for call in (lambda: qmp.execute("query-status"), lambda: qmp.wait_event("STOP", 1)):
        with pytest.raises(QmpStateError) as info:
            call()
        assert info.value.state is SessionState.CLOSED
        assert info.value.required is SessionState.CONNECTED
        assert "closed" in str(info.value)
    with pytest.raises(QmpStateError) as sent:
        qmp.send_fd(0, "x")
    assert sent.value.operation == "send_fd"


def test_send_fd(serve: Callable[..., FakeQmp]) -> None:
    server = serve()
    read_end, write_end = os.pipe()
    try:
        with QmpSession.connect(server.path) as qmp:
            qmp.send_fd(write_end, "migfd")
            assert server.received[-1] == {
                "execute": "getfd",
                "arguments": {"fdname": "migfd"},
                "id": server.received[-1]["id"],
            }
        assert len(server.fds) == 1
        os.write(server.fds[0], b"through the passed fd")
        assert os.read(read_end, 100) == b"through the passed fd"
    finally:
        os.close(read_end)
        os.close(write_end)


def test_send_fd_to_a_hung_up_server(serve: Callable[..., FakeQmp]) -> None:
    server = serve()
    server.on_connect = [{"sleep": 0.1}, CLOSE]
    read_end, write_end = os.pipe()
    try:
        with QmpSession.connect(server.path) as qmp:
            server.join()
            with pytest.raises(QmpUnavailable):
                qmp.send_fd(write_end, "x")
            assert qmp.state is SessionState.DISCONNECTED
    finally:
        os.close(read_end)
        os.close(write_end)


@pytest.mark.parametrize("attempt", range(5))
def test_hangup_right_after_the_handshake(serve: Callable[..., FakeQmp], attempt: int) -> None:
    server = serve()
    server.on_connect = [CLOSE]
    # Raised by connect, or by the first command, depending on who is faster.
    with pytest.raises(QmpUnavailable), QmpSession.connect(server.path) as qmp:
        server.join()
        qmp.execute("query-status")


def test_unasked_events_are_bounded(serve: Callable[..., FakeQmp]) -> None:
    server = serve()
    server.on_connect = [event("RTC_CHANGE", offset=n) for n in range(MAX_BUFFERED_EVENTS + 5)]
    with QmpSession.connect(server.path) as qmp:
        qmp.execute("query-status")  # its reply comes after all the events
        oldest = qmp.wait_event("RTC_CHANGE", 1)
        assert oldest is not None and oldest["data"]["offset"] == 5
