"""vmkit.qemu.process, .qmp and .console on real, daemonized QEMUs (TCG).

Every QEMU here is started with `launch` (so it outlives nothing but the test) and killed by
pid in the fixture's teardown, also when the test fails.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from vmkit.errors import LaunchFailed, QmpError
from vmkit.guest import BOOT_MARKER, PROMPT, GuestImage
from vmkit.qemu.console import (
    ConsoleBusy,
    ConsoleClient,
    attach_interactive,
    read_history,
)
from vmkit.qemu.process import (
    QemuProcess,
    kill_process,
    launch,
    process_state,
    wait_dead,
)
from vmkit.qemu.qmp import QmpSession, QmpUnavailable, SessionState

pytestmark = pytest.mark.integration

QEMU = "qemu-system-x86_64"
BASE = [QEMU, "-accel", "tcg", "-machine", "q35", "-nodefaults", "-no-user-config"]
BASE += ["-display", "none"]


class Rig:
    """One short temporary folder with the sockets and logs of the QEMUs a test launches."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.procs: list[QemuProcess] = []

    @property
    def qmp_path(self) -> Path:
        return self.root / "qmp.sock"

    @property
    def console_path(self) -> Path:
        return self.root / "ser0.sock"

    @property
    def console_log(self) -> Path:
        return self.root / "ser0.log"

    @property
    def pidfile(self) -> Path:
        return self.root / "qemu.pid"

    def argv(self, *extra: str, memory: int = 128, paused: bool = True) -> list[str]:
        chardev = f"socket,id=ser0,path={self.console_path},server=on,wait=off"
        chardev += f",logfile={self.console_log},logappend=on"
        argv = [*BASE, "-m", str(memory)] + (["-S"] if paused else [])
        argv += ["-qmp", f"unix:{self.qmp_path},server=on,wait=off"]
        return [*argv, "-chardev", chardev, "-serial", "chardev:ser0", *extra]

    def launch(self, argv: list[str]) -> QemuProcess:
        proc = launch(argv, pidfile=self.pidfile, log_file=self.root / "qemu.log")
        self.procs.append(proc)
        return proc

    def cleanup(self) -> None:
        for proc in self.procs:
            kill_process(proc, signal.SIGKILL)
            wait_dead(proc, 5)
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture
def rig() -> Iterator[Rig]:
    rig = Rig(Path(tempfile.mkdtemp(prefix="vk")))
    try:
        yield rig
    finally:
        rig.cleanup()


@pytest.fixture
def paused(rig: Rig) -> QemuProcess:
    """A QEMU with no guest, stopped before it runs (-S)."""
    return rig.launch(rig.argv())


def test_launch_is_detached_and_fast(rig: Rig) -> None:
    started = time.monotonic()
    proc = rig.launch(rig.argv())
    assert time.monotonic() - started < 5
    assert process_state(proc.pid, proc.start_time) == "running"
    assert int(rig.pidfile.read_text()) == proc.pid
    assert os.getsid(proc.pid) != os.getsid(0)  # its own session: a CLI exit does not hit it


def test_qmp_status_cont_stop_and_events(rig: Rig, paused: QemuProcess) -> None:
    with QmpSession.connect(rig.qmp_path) as qmp:
        assert qmp.execute("query-status")["status"] == "prelaunch"
        qmp.execute("cont")
        assert qmp.execute("query-status")["status"] == "running"
        qmp.execute("stop")
        stop = qmp.wait_event("STOP", 5)
        assert stop is not None and "timestamp" in stop
        assert qmp.execute("query-status")["status"] == "paused"
        assert qmp.wait_event("RESUME", 0) is not None  # from `cont`, kept in the buffer
        with pytest.raises(QmpError) as info:
            qmp.execute("device_del", {"id": "nonexistent"})
        assert info.value.error_class == "DeviceNotFound"


def test_quit_is_dead_without_waiting_for_the_reaper(rig: Rig, paused: QemuProcess) -> None:
    with QmpSession.connect(rig.qmp_path) as qmp:
        started = time.monotonic()
        qmp.execute("quit")
        assert wait_dead(paused, 1.0)
        elapsed = time.monotonic() - started
        shutdown = qmp.wait_event("SHUTDOWN", 1)
        assert shutdown is not None and shutdown["data"]["reason"] == "host-qmp-quit"
    assert elapsed < 1.0
    assert process_state(paused.pid, paused.start_time) in ("zombie", "gone")
    assert not kill_process(paused, signal.SIGKILL)


def test_bad_option_fails_synchronously(rig: Rig) -> None:
    with pytest.raises(LaunchFailed) as info:
        rig.launch(rig.argv("-no-such-option"))
    assert info.value.rc == 1
    assert "-no-such-option: invalid option" in info.value.stderr
    assert "invalid option" in str(info.value)
    assert not rig.pidfile.exists()


def test_failure_after_daemonizing_is_reported_from_the_log(rig: Rig) -> None:
    missing = rig.root / "missing.qcow2"
    with pytest.raises(LaunchFailed) as info:
        rig.launch(rig.argv("-drive", f"file={missing},if=none,id=d0"))
    assert "Could not open" in info.value.stderr
    assert not rig.pidfile.exists()


def test_kill_9_makes_qmp_unavailable(rig: Rig, paused: QemuProcess) -> None:
    with QmpSession.connect(rig.qmp_path) as qmp:
        assert qmp.execute("query-status")["status"] == "prelaunch"
        assert kill_process(paused, signal.SIGKILL)
        assert wait_dead(paused, 1.0)
        with pytest.raises(QmpUnavailable):
            qmp.execute("query-status")
        assert qmp.state is SessionState.DISCONNECTED
    with pytest.raises(QmpUnavailable):
        QmpSession.connect(rig.qmp_path)  # socket file left behind, nobody listening


def _fd_targets(pid: int) -> set[str]:
    targets = set()
    for name in os.listdir(f"/proc/{pid}/fd"):
        with contextlib.suppress(FileNotFoundError):
            targets.add(os.readlink(f"/proc/{pid}/fd/{name}"))
    return targets


def test_send_fd_hands_a_pipe_to_qemu(rig: Rig, paused: QemuProcess) -> None:
    read_end, write_end = os.pipe()
    pipe = f"pipe:[{os.fstat(write_end).st_ino}]"
    try:
        with QmpSession.connect(rig.qmp_path) as qmp:
            assert pipe not in _fd_targets(paused.pid)
            qmp.send_fd(write_end, "migrate-fd")
            assert pipe in _fd_targets(paused.pid)
            assert isinstance(qmp.execute("query-fdsets"), list)
            qmp.execute("closefd", {"fdname": "migrate-fd"})
            with pytest.raises(QmpError):
                qmp.execute("closefd", {"fdname": "migrate-fd"})
    finally:
        os.close(read_end)
        os.close(write_end)


def test_console_socket_and_history_while_paused(rig: Rig, paused: QemuProcess) -> None:
    assert rig.console_log.exists()
    with ConsoleClient(rig.console_path) as con:
        with pytest.raises(ConsoleBusy):
            ConsoleClient(rig.console_path)
        assert con.path == str(rig.console_path)
    assert read_history(rig.console_log) == b""


# -- a booted tiny guest -------------------------------------------------------------------


@pytest.fixture
def booted(rig: Rig, tiny_guest: GuestImage) -> QemuProcess:
    """The tiny guest, launched detached; the console log shows it reached the marker."""
    boot = ["-kernel", str(tiny_guest.kernel), "-initrd", str(tiny_guest.initramfs)]
    boot += ["-append", tiny_guest.cmdline]
    return rig.launch(rig.argv(*boot, memory=256, paused=False))


def _wait_for(predicate: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _prompt_shown(rig: Rig) -> Callable[[], bool]:
    def shown() -> bool:
        history = read_history(rig.console_log)
        return BOOT_MARKER.encode() in history and PROMPT.encode() in history

    return shown


def test_boot_run_detach_reattach(rig: Rig, booted: QemuProcess, tiny_guest: GuestImage) -> None:
    with ConsoleClient(rig.console_path) as con:
        con.read_until(BOOT_MARKER, 60)
        con.read_until(PROMPT, 30)
        assert con.run("echo $((6*7))", PROMPT, 10) == "42"
        assert con.run("echo a; echo b", PROMPT, 10) == "a\nb"
    with ConsoleClient(rig.console_path) as again:
        assert again.run("uname -r", PROMPT, 10) == tiny_guest.kernel_version
    history = read_history(rig.console_log)
    assert BOOT_MARKER.encode() in history
    assert b"42" in history and tiny_guest.kernel_version.encode() in history


def test_attach_from_a_pipe_drives_the_guest(rig: Rig, booted: QemuProcess) -> None:
    assert _wait_for(_prompt_shown(rig), 60), read_history(rig.console_log)[-2000:]
    read_in, write_in = os.pipe()
    os.write(write_in, b"echo $((6*7))\n")
    os.close(write_in)
    out_path = rig.root / "out"
    with out_path.open("wb") as out:
        reason = attach_interactive(rig.console_path, read_in, out.fileno(), linger=1.0)
    os.close(read_in)
    assert reason == "input-ended"
    assert re.search(rb"\r?\n42\r?\n", out_path.read_bytes()), out_path.read_bytes()
    with ConsoleClient(rig.console_path) as con:  # the lock was released
        assert con.run("echo ok", PROMPT, 10) == "ok"
