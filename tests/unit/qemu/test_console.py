"""vmkit.qemu.console against a fake serial console: a unix socket served by a thread that,
like QEMU, serves one connection at a time and, like a shell, echoes input and prompts."""

from __future__ import annotations

import os
import signal
import socket
import tempfile
import termios
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from vmkit.errors import Conflict, QemuError
from vmkit.qemu.console import (
    ConsoleBusy,
    ConsoleClient,
    ConsoleLock,
    ConsoleTimeout,
    ConsoleUnavailable,
    attach_interactive,
    read_history,
)

PROMPT = "fake# "
COMMANDS = {"echo hi": "hi", "two lines": "one\r\ntwo", "true": ""}


class FakeConsole:
    """Serves connections one after another; echoes typed bytes and answers COMMANDS."""

    def __init__(self, path: Path, banner: bytes = b"") -> None:
        self.path = path
        self.banner = banner
        self.received = bytearray()
        self.connections = 0
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(str(path))
        self._listener.listen(4)
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        self._thread.join(5)

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            with conn:
                self.connections += 1
                try:
                    conn.sendall(self.banner)
                    self._shell(conn)
                except OSError:
                    pass  # the client went away

    def _shell(self, conn: socket.socket) -> None:
        line = b""
        while data := _recv(conn):
            self.received += data
            for byte in data:
                char = bytes([byte])
                if char not in b"\r\n":
                    conn.sendall(char)
                    line += char
                    continue
                command = line.decode()
                if command == "exit":
                    return
                output = COMMANDS.get(command, f"sh: {command}: not found")
                conn.sendall(b"\r\n" + (output + "\r\n" if output else "").encode())
                conn.sendall(PROMPT.encode())
                line = b""


def _recv(conn: socket.socket) -> bytes:
    try:
        return conn.recv(4096)
    except OSError:
        return b""


@pytest.fixture
def sockdir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="vk"))
    yield path
    for child in path.iterdir():
        child.unlink()
    path.rmdir()


@pytest.fixture
def console(sockdir: Path) -> Iterator[FakeConsole]:
    server = FakeConsole(sockdir / "ser0.sock", banner=b"Linux booting\r\nMARKER\r\n" + b"fake# ")
    yield server
    server.stop()


def test_read_until_string_and_regex(console: FakeConsole) -> None:
    import re

    with ConsoleClient(console.path) as con:
        assert con.read_until("MARKER", 2) == "Linux booting\r\nMARKER"
        assert con.read_until(re.compile(r"\w+# "), 2) == "\r\nfake# "
        con.send("echo hi\n")
        assert con.read_until("hi", 2) == "echo hi"  # the echo comes first
        assert con.read_until("hi", 2) == "\r\nhi"


def test_read_until_timeout_has_the_tail(console: FakeConsole) -> None:
    with ConsoleClient(console.path) as con:
        started = time.monotonic()
        with pytest.raises(ConsoleTimeout) as info:
            con.read_until("login:", 0.3)
        assert 0.25 < time.monotonic() - started < 2
    err = info.value
    assert isinstance(err, TimeoutError) and isinstance(err, QemuError)
    assert err.tail.endswith("MARKER\r\nfake# ")
    assert "login:" in str(err) and "MARKER" in str(err)


def test_run_returns_the_output_between_echo_and_prompt(console: FakeConsole) -> None:
    with ConsoleClient(console.path) as con:
        assert con.run("echo hi", PROMPT, 2) == "hi"  # banner before it is discarded
        assert con.run("two lines", PROMPT, 2) == "one\ntwo"
        assert con.run("true", PROMPT, 2) == ""
    assert console.received == b"echo hi\ntwo lines\ntrue\n"


def test_detach_and_reattach(console: FakeConsole) -> None:
    for _ in range(3):
        with ConsoleClient(console.path) as con:
            assert con.run("echo hi", PROMPT, 2) == "hi"
    assert console.connections == 3


def test_missing_socket(sockdir: Path) -> None:
    with pytest.raises(ConsoleUnavailable) as info:
        ConsoleClient(sockdir / "none.sock")
    assert "No such file" in str(info.value)
    ConsoleLock.acquire(sockdir / "none.sock").release()  # the failed client let go


def test_guest_side_closes(console: FakeConsole) -> None:
    with ConsoleClient(console.path) as con:
        con.send("exit\n")
        with pytest.raises(ConsoleUnavailable) as info:
            con.read_until("never", 2)
    assert "closed" in str(info.value)


def test_second_client_is_refused(console: FakeConsole) -> None:
    with ConsoleClient(console.path):
        with pytest.raises(ConsoleBusy) as info:
            ConsoleClient(console.path)
        assert info.value.holder == os.getpid()
        assert isinstance(info.value, Conflict)
        assert "in use" in str(info.value)
    with ConsoleClient(console.path) as con:
        assert con.run("echo hi", PROMPT, 2) == "hi"


def test_force_takes_over_from_a_reading_holder(console: FakeConsole) -> None:
    first = ConsoleClient(console.path)
    seen: list[BaseException] = []

    def hold() -> None:
        try:
            first.read_until("never", 10)
        except ConsoleUnavailable as exc:
            seen.append(exc)
        finally:
            first.close()

    holder = threading.Thread(target=hold)
    holder.start()
    started = time.monotonic()
    with ConsoleClient(console.path, force=True) as second:
        assert time.monotonic() - started < 2
        assert second.run("echo hi", PROMPT, 2) == "hi"
    holder.join(5)
    assert "taken over" in str(seen[0])


def test_force_gives_up_on_a_holder_that_does_not_let_go(sockdir: Path) -> None:
    path = sockdir / "ser0.sock"
    stuck = ConsoleLock.acquire(path)
    try:
        with pytest.raises(ConsoleBusy) as info:
            ConsoleLock.acquire(path, force=True, grace=0.1)
        assert "did not let go" in str(info.value)
        assert stuck.stolen()
    finally:
        stuck.release()
    ConsoleLock.acquire(path).release()


def test_lock_file_holds_the_pid(sockdir: Path) -> None:
    lock = ConsoleLock.acquire(sockdir / "ser0.sock")
    try:
        assert Path(f"{sockdir}/ser0.sock.lock").read_text() == f"{os.getpid()}\n"
    finally:
        lock.release()
    lock.release()  # idempotent


def _pipe_with(data: bytes) -> int:
    read_end, write_end = os.pipe()
    os.write(write_end, data)
    os.close(write_end)
    return read_end


def _drain(fd: int) -> bytes:
    os.set_blocking(fd, False)
    chunks = []
    while True:
        try:
            chunk = os.read(fd, 65536)
        except BlockingIOError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


def test_attach_from_a_pipe_lingers_then_detaches(console: FakeConsole) -> None:
    stdin = _pipe_with(b"echo hi\ntwo lines\n")
    out_r, out_w = os.pipe()
    try:
        started = time.monotonic()
        assert attach_interactive(console.path, stdin, out_w, linger=0.3) == "input-ended"
        assert 0.3 <= time.monotonic() - started < 3
        output = _drain(out_r)
    finally:
        for fd in (stdin, out_r, out_w):
            os.close(fd)
    assert b"MARKER" in output
    assert b"echo hi\r\nhi\r\nfake# two lines\r\none\r\ntwo\r\nfake# " in output
    assert bytes(console.received) == b"echo hi\ntwo lines\n"


def test_attach_from_a_pipe_ends_when_the_guest_closes(console: FakeConsole) -> None:
    stdin = _pipe_with(b"exit\n")
    out_r, out_w = os.pipe()
    try:
        assert attach_interactive(console.path, stdin, out_w, linger=5) == "guest-closed"
    finally:
        for fd in (stdin, out_r, out_w):
            os.close(fd)


def _later(seconds: float, action: Callable[[], object]) -> threading.Thread:
    thread = threading.Thread(target=lambda: (time.sleep(seconds), action()))
    thread.start()
    return thread


def test_attach_a_terminal_raw_until_escape(console: FakeConsole) -> None:
    master, slave = os.openpty()
    out_r, out_w = os.pipe()
    before = termios.tcgetattr(slave)
    typist = _later(0.3, lambda: os.write(master, b"echo hi\r\x03"))
    escaper = _later(0.8, lambda: os.write(master, b"\x1dnot sent"))
    try:
        assert attach_interactive(console.path, slave, out_w) == "escape"
        assert termios.tcgetattr(slave) == before
        output = _drain(out_r)
    finally:
        typist.join()
        escaper.join()
        for fd in (master, slave, out_r, out_w):
            os.close(fd)
    # Raw mode: CR is not turned into NL, and Ctrl-C is a byte for the guest.
    assert bytes(console.received) == b"echo hi\r\x03"
    assert b"hi\r\nfake# " in output


def test_attach_a_terminal_restores_it_on_sigterm(console: FakeConsole) -> None:
    master, slave = os.openpty()
    out_r, out_w = os.pipe()
    before = termios.tcgetattr(slave)
    previous = signal.getsignal(signal.SIGTERM)
    killer = _later(0.3, lambda: os.kill(os.getpid(), signal.SIGTERM))
    try:
        assert attach_interactive(console.path, slave, out_w) == "signal"
        assert termios.tcgetattr(slave) == before
        assert signal.getsignal(signal.SIGTERM) == previous
    finally:
        killer.join()
        for fd in (master, slave, out_r, out_w):
            os.close(fd)


def test_attach_ends_when_output_is_closed(console: FakeConsole) -> None:
    stdin = _pipe_with(b"echo hi\n")
    out_r, out_w = os.pipe()
    os.close(out_r)
    try:
        assert attach_interactive(console.path, stdin, out_w) == "output-closed"
    finally:
        os.close(stdin)
        os.close(out_w)


def test_attach_refused_while_another_client_holds_it(console: FakeConsole) -> None:
    stdin = _pipe_with(b"")
    try:
        with ConsoleClient(console.path), pytest.raises(ConsoleBusy):
            attach_interactive(console.path, stdin, 1)
    finally:
        os.close(stdin)


def test_attach_is_taken_over(console: FakeConsole) -> None:
    in_r, in_w = os.pipe()  # input stays open: the attach would run forever
    out_r, out_w = os.pipe()
    reasons: list[str] = []
    attached = threading.Thread(
        target=lambda: reasons.append(attach_interactive(console.path, in_r, out_w))
    )
    attached.start()
    try:
        time.sleep(0.3)
        with ConsoleClient(console.path, force=True) as con:
            assert con.run("echo hi", PROMPT, 2) == "hi"
        attached.join(5)
        assert reasons == ["taken-over"]
    finally:
        for fd in (in_r, in_w, out_r, out_w):
            os.close(fd)


def test_read_history(sockdir: Path) -> None:
    log = sockdir / "ser0.log"
    assert read_history(log) == b""
    log.write_bytes(b"boot\r\nMARKER\r\n")
    assert read_history(log) == b"boot\r\nMARKER\r\n"
    assert read_history(log, max_bytes=8) == b"MARKER\r\n"
    assert read_history(log, max_bytes=1000) == b"boot\r\nMARKER\r\n"
