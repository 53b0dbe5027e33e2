"""vmkit.qemu.process without QEMU: /proc parsing, process states, and launch against fakes.

The fake "QEMU" is `python -c SCRIPT`: launch appends `-daemonize -pidfile P -D LOG`, which the
script finds in sys.argv.
"""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from vmkit.errors import LaunchFailed
from vmkit.qemu.process import (
    QemuProcess,
    kill_process,
    launch,
    parse_stat,
    process_state,
    read_stat,
    remove_pidfile,
    wait_dead,
)


def _stat_line(pid: int, comm: str, state: str, start_time: int) -> str:
    """A /proc/PID/stat line: fields 4..52 hold their own field number, except 22."""
    rest = [str(start_time) if n == 22 else str(n) for n in range(4, 53)]
    return f"{pid} ({comm}) {state} " + " ".join(rest) + "\n"


def test_parse_stat_plain() -> None:
    stat = parse_stat(_stat_line(1234, "qemu-system-x86", "S", 424242))
    assert (stat.pid, stat.comm, stat.state, stat.start_time) == (
        1234,
        "qemu-system-x86",
        "S",
        424242,
    )


def test_parse_stat_comm_with_spaces_and_parentheses() -> None:
    stat = parse_stat(_stat_line(77, "a) b (c) Z 9", "Z", 99))
    assert (stat.pid, stat.comm, stat.state, stat.start_time) == (77, "a) b (c) Z 9", "Z", 99)


def test_parse_stat_real_line_of_a_process_named_with_parentheses(tmp_path: Path) -> None:
    odd = tmp_path / "x) (y z"  # the kernel takes comm from the executable's file name
    odd.symlink_to("/bin/sleep")
    child = subprocess.Popen([str(odd), "60"])
    try:
        stat = read_stat(child.pid)
        assert stat is not None
        assert (stat.pid, stat.comm) == (child.pid, "x) (y z")
        assert stat.state in ("R", "S", "D")  # alive (D: still paging in its binary; seen in CI)
        assert process_state(child.pid, stat.start_time) == "running"
    finally:
        child.kill()
        child.wait()


@pytest.mark.parametrize("line", ["", "12 sh S 1 2", "12 (sh) S 1 2 3"])
def test_parse_stat_malformed(line: str) -> None:
    with pytest.raises(ValueError):
        parse_stat(line)


def test_read_stat_of_self_matches_proc() -> None:
    stat = read_stat(os.getpid())
    assert stat is not None
    assert stat.pid == os.getpid()
    assert stat.state in ("R", "S")
    assert read_stat(_gone_pid()) is None


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    child = subprocess.Popen(["sleep", "60"])
    try:
        yield child
    finally:
        child.kill()
        child.wait()


def _proc(pid: int) -> QemuProcess:
    stat = read_stat(pid)
    assert stat is not None
    return QemuProcess(pid, stat.start_time)


def _gone_pid() -> int:
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def test_state_running(sleeper: subprocess.Popen[bytes]) -> None:
    proc = _proc(sleeper.pid)
    assert process_state(proc.pid, proc.start_time) == "running"


def test_state_zombie_without_reaping() -> None:
    child = subprocess.Popen(["true"])
    try:
        proc = _proc(child.pid)
        assert wait_dead(proc, 5.0)
        # Not reaped: the pid still exists, as a zombie.
        assert process_state(proc.pid, proc.start_time) == "zombie"
        assert not kill_process(proc, signal.SIGTERM)
    finally:
        child.wait()
    assert process_state(proc.pid, proc.start_time) == "gone"


def test_state_gone() -> None:
    assert process_state(_gone_pid(), 1) == "gone"


def test_state_reused_pid_is_gone(sleeper: subprocess.Popen[bytes]) -> None:
    proc = _proc(sleeper.pid)
    assert process_state(proc.pid, proc.start_time + 1) == "gone"
    assert process_state(os.getpid(), proc.start_time + 12345) == "gone"


def test_kill_process_never_signals_a_reused_pid(sleeper: subprocess.Popen[bytes]) -> None:
    real = _proc(sleeper.pid)
    assert not kill_process(QemuProcess(real.pid, real.start_time - 1))
    assert process_state(real.pid, real.start_time) == "running"
    assert kill_process(real, signal.SIGKILL)
    assert wait_dead(real, 2.0)


def test_wait_dead_times_out_on_a_live_process(sleeper: subprocess.Popen[bytes]) -> None:
    started = time.monotonic()
    assert not wait_dead(_proc(sleeper.pid), 0.05)
    assert time.monotonic() - started < 1.0


def test_wait_dead_is_prompt(sleeper: subprocess.Popen[bytes]) -> None:
    proc = _proc(sleeper.pid)
    os.kill(proc.pid, signal.SIGKILL)
    started = time.monotonic()
    assert wait_dead(proc, 2.0)
    assert time.monotonic() - started < 0.5


# -- launch, against fake QEMUs ----------------------------------------------------------------

ARGS = """
import os, subprocess, sys, time
args = sys.argv[1:]
pidfile = args[args.index("-pidfile") + 1]
log = args[args.index("-D") + 1]
assert "-daemonize" in args
"""

# Like QEMU: a detached child in its own session writes the pidfile; the parent exits 0.
DAEMONIZE = (
    ARGS
    + """
delay = float(os.environ.get("FAKE_DELAY", "0"))
code = (
    f"import os, time; time.sleep({delay}); "
    f"open({pidfile!r}, 'w').write(str(os.getpid()) + chr(10)); time.sleep(60)"
)
subprocess.Popen([sys.executable, "-c", code], start_new_session=True,
                 stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
"""
)


def _fake(script: str) -> list[str]:
    return [sys.executable, "-c", script]


@pytest.fixture
def rundir(tmp_path: Path) -> Path:
    return tmp_path


def _kill(proc: QemuProcess) -> None:
    kill_process(proc, signal.SIGKILL)
    assert wait_dead(proc, 2.0)


def test_launch_returns_the_daemon(rundir: Path) -> None:
    proc = launch(_fake(DAEMONIZE), pidfile=rundir / "pid", log_file=rundir / "log")
    try:
        assert process_state(proc.pid, proc.start_time) == "running"
        assert int((rundir / "pid").read_text()) == proc.pid
    finally:
        _kill(proc)


def test_launch_waits_for_a_late_pidfile(rundir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_DELAY", "0.3")
    proc = launch(_fake(DAEMONIZE), pidfile=rundir / "pid", log_file=rundir / "log")
    try:
        assert process_state(proc.pid, proc.start_time) == "running"
    finally:
        _kill(proc)


def test_launch_ignores_a_stale_pidfile(rundir: Path) -> None:
    # An earlier run's pidfile names a live but older process (this test): not ours.
    (rundir / "pid").write_text(f"{os.getpid()}\n")
    script = ARGS + "sys.exit(0)"
    with pytest.raises(LaunchFailed) as info:
        launch(_fake(script), pidfile=rundir / "pid", log_file=rundir / "log", timeout=0.3)
    assert "pidfile" in str(info.value)
    assert not (rundir / "pid").exists()


def test_launch_failure_reports_stderr_and_log_and_removes_pidfile(rundir: Path) -> None:
    script = (
        ARGS
        + """
open(pidfile, "w").write("999999\\n")
open(log, "w").write("written after daemonize\\n")
sys.stderr.write("fake-qemu: -bogus: invalid option\\n")
sys.exit(1)
"""
    )
    (rundir / "log").write_text("from an earlier run\n")
    with pytest.raises(LaunchFailed) as info:
        launch(_fake(script), pidfile=rundir / "pid", log_file=rundir / "log")
    err = info.value
    assert err.rc == 1
    assert "invalid option" in err.stderr
    assert "written after daemonize" in err.stderr
    assert "earlier run" not in err.stderr
    assert "invalid option" in str(err)
    assert err.argv[-5:] == [
        "-daemonize",
        "-pidfile",
        str(rundir / "pid"),
        "-D",
        str(rundir / "log"),
    ]
    assert not (rundir / "pid").exists()


def test_launch_timeout_kills_the_launcher(rundir: Path) -> None:
    script = ARGS + "print('starting', flush=True); time.sleep(60)"
    started = time.monotonic()
    with pytest.raises(LaunchFailed) as info:
        launch(_fake(script), pidfile=rundir / "pid", log_file=rundir / "log", timeout=0.5)
    assert time.monotonic() - started < 5
    assert info.value.rc is None
    assert "did not daemonize" in info.value.stderr
    assert "starting" in info.value.stderr


def test_launch_missing_binary(rundir: Path) -> None:
    with pytest.raises(LaunchFailed) as info:
        launch(["/nonexistent/qemu"], pidfile=rundir / "pid", log_file=rundir / "log")
    assert "cannot execute" in str(info.value)


def test_remove_pidfile_spares_a_locked_one(rundir: Path) -> None:
    pidfile = rundir / "pid"
    pidfile.write_text("1\n")
    locker = (
        "import fcntl, os, sys, time\n"
        f"fd = os.open({str(pidfile)!r}, os.O_RDWR)\n"
        "fcntl.lockf(fd, fcntl.LOCK_EX)\n"
        "print('locked', flush=True)\n"
        "time.sleep(60)\n"
    )
    with subprocess.Popen(_fake(locker), stdout=subprocess.PIPE) as holder:
        try:
            assert holder.stdout is not None
            assert holder.stdout.readline() == b"locked\n"
            remove_pidfile(pidfile)
            assert pidfile.exists()
        finally:
            holder.kill()
    remove_pidfile(pidfile)
    assert not pidfile.exists()
    remove_pidfile(pidfile)  # missing: no error


def test_remove_pidfile_lock_is_posix(rundir: Path) -> None:
    # Our own lockf in this process does not block us (POSIX locks are per process).
    pidfile = rundir / "pid"
    pidfile.write_text("1\n")
    fd = os.open(pidfile, os.O_RDWR)
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX)
        remove_pidfile(pidfile)
    finally:
        os.close(fd)
    assert not pidfile.exists()
