"""`vmkit console`: drive a guest through a pipe or a terminal, detach, history, one at a time."""

from __future__ import annotations

import contextlib
import os
import select
import subprocess
import sys
import termios
import time
from collections.abc import Iterator

import pytest
from lifecycle_checks import log_of, wait_log
from vmkit_cli import VmkitEnv

from vmkit.guest import BOOT_MARKER, PROMPT

pytestmark = pytest.mark.integration


@pytest.fixture
def booted(vk: VmkitEnv) -> str:
    vk.ok("define", str(vk.domain_xml("con", machine="microvm")))
    vk.ok("start", "con")
    vk.wait_booted("con")
    return "con"


@contextlib.contextmanager
def console_process(
    vk: VmkitEnv, *args: str, stdin: int, stdout: int, stderr: int
) -> Iterator[subprocess.Popen[bytes]]:
    """`vmkit console ...` in the background; killed by pid if the test leaves it running."""
    argv = [sys.executable, "-m", "vmkit", "console", *args]
    proc = subprocess.Popen(argv, env=vk.env, stdin=stdin, stdout=stdout, stderr=stderr)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)


def read_until(fd: int, pattern: bytes, timeout: float = 30) -> bytes:
    deadline = time.monotonic() + timeout
    data = b""
    while pattern not in data:
        left = deadline - time.monotonic()
        assert left > 0, f"{pattern!r} not read; got {data[-500:]!r}"
        if select.select([fd], [], [], min(left, 0.5))[0]:
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # EIO: the other side of the pty closed
                chunk = b""
            assert chunk, f"closed before {pattern!r}; got {data[-500:]!r}"
            data += chunk
    return data


def wait_raw(master: int, timeout: float = 30) -> None:
    """Wait until the console has put the terminal in raw mode (no echo: attached)."""
    deadline = time.monotonic() + timeout
    while termios.tcgetattr(master)[3] & termios.ECHO:
        assert time.monotonic() < deadline, "the console never put the terminal in raw mode"
        time.sleep(0.02)


def test_pipe_command_answer_detach_history(vk: VmkitEnv, booted: str) -> None:
    # One console session per command: each sends, reads the answer and detaches.
    assert vk.guest(booted, "echo answer-$((6*7))") == "answer-42"
    assert vk.ok("domstate", booted) == "running\n\n"
    assert vk.guest(booted, "cat /proc/cmdline").startswith("console=")
    history = vk.ok("console", "--history", booted)
    assert BOOT_MARKER in history
    assert "answer-42" in history
    assert history.count(PROMPT) >= 2
    vk.ok("destroy", booted)
    assert BOOT_MARKER in vk.ok("console", "--history", booted), "the history outlives the run"


def test_tty_attach_and_escape(vk: VmkitEnv, booted: str) -> None:
    master, slave = os.openpty()
    try:
        with console_process(vk, booted, stdin=slave, stdout=slave, stderr=slave) as proc:
            os.close(slave)
            slave = -1
            read_until(master, b"Escape character is ^]")
            wait_raw(master)  # typeahead before raw mode is flushed, like on any terminal
            os.write(master, b"echo tty-$((3*3))\r")
            read_until(master, b"tty-9")
            os.write(master, b"\x1d")
            assert proc.wait(timeout=30) == 0
    finally:
        os.close(master)
        if slave >= 0:
            os.close(slave)
    assert vk.ok("domstate", booted) == "running\n\n"
    assert vk.guest(booted, "echo after-$((1+1))") == "after-2"


def test_second_attach_refused_unless_force(vk: VmkitEnv, booted: str) -> None:
    log = log_of(vk, vk.uuid(booted))
    pipe = subprocess.PIPE
    with console_process(vk, booted, stdin=pipe, stdout=pipe, stderr=pipe) as holder:
        assert holder.stdin is not None
        holder.stdin.write(b"echo held-$((1+1))\n")
        holder.stdin.flush()  # stdin stays open: the holder stays attached
        wait_log(log, "held-2")

        before = log.read_text(errors="replace")
        vk.fails(
            4,
            "console",
            booted,
            input="echo intruder-$((2+2))\n",
            match=f"console of domain '{booted}' is in use by pid {holder.pid}",
        )
        assert "intruder-4" not in log.read_text(errors="replace")[len(before) :]
        assert holder.poll() is None, "the refused attach left the holder alone"

        r = vk.run("console", "--force", booted, input="echo forced-$((2+3))\n")
        assert r.returncode == 0, r.stderr
        assert "forced-5" in r.stdout
        assert holder.wait(timeout=30) == 0, "the holder is told it was taken over"
        out, _ = holder.communicate(timeout=30)
        assert b"held-2" in out
    assert vk.guest(booted, "echo free-$((1+5))") == "free-6"
