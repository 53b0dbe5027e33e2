"""Booting the tiny guest under bare QEMU (no vmkit code in between), for integration tests.

    with boot_guest(image, machine="q35", extra_args=[...]) as guest:
        guest.wait_booted()                      # marker, then the shell prompt
        assert guest.console.run("echo $((6*7))") == "42"
        guest.qmp_socket                         # QMP (qemu.qmp QMPClient) for the test

QEMU runs in the foreground of a Popen under a short temporary folder (unix socket paths are
limited to 107 bytes) and is always killed by its pid when the block ends. The serial console is
a socket chardev with a logfile, as PLATFORM.md describes; on failure the console log and QEMU's
stderr are printed, so pytest shows them with the failing test.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from vmkit.guest import BOOT_MARKER, PROMPT, GuestImage

QEMU = "qemu-system-x86_64"
_ANSI = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]")


def host_tsc_khz() -> int:
    """The host's "cpu MHz" x 1000, for microvm's tsc_early_khz= (PLATFORM.md)."""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("cpu MHz"):
            return int(float(line.split(":", 1)[1]) * 1000)
    raise RuntimeError("no 'cpu MHz' in /proc/cpuinfo")


def guest_cmdline(image: GuestImage, machine: str, extra: str = "") -> str:
    """The image's command line, plus the TSC options microvm needs, plus `extra`."""
    parts = [image.cmdline]
    if machine == "microvm":
        parts.append(f"tsc_early_khz={host_tsc_khz()} tsc=reliable")
    if extra:
        parts.append(extra)
    return " ".join(parts)


def qemu_argv(
    image: GuestImage,
    workdir: Path,
    *,
    machine: str = "q35",
    memory_mib: int = 256,
    extra_args: Sequence[str] = (),
    extra_cmdline: str = "",
) -> list[str]:
    """Bare QEMU under TCG: direct kernel boot, serial on a socket chardev, QMP on a socket."""
    argv = [QEMU, "-accel", "tcg", "-machine", machine, "-m", str(memory_mib)]
    if machine == "microvm":
        argv += ["-cpu", "max"]
    argv += ["-nodefaults", "-no-user-config", "-display", "none"]
    argv += ["-kernel", str(image.kernel), "-initrd", str(image.initramfs)]
    argv += ["-append", guest_cmdline(image, machine, extra_cmdline)]
    console = f"path={workdir / 'console.sock'},server=on,wait=off"
    argv += ["-chardev", f"socket,id=ser0,{console},logfile={workdir / 'console.log'}"]
    argv += ["-serial", "chardev:ser0"]
    argv += ["-chardev", f"socket,id=qmp0,path={workdir / 'qmp.sock'},server=on,wait=off"]
    argv += ["-mon", "chardev=qmp0,mode=control"]
    return argv + list(extra_args)


@dataclass
class SerialConsole:
    """A client of the guest's serial socket: send text, wait for patterns in what comes back."""

    sock: socket.socket
    received: bytearray = field(default_factory=bytearray)
    cursor: int = 0  # expect() searches from here
    _serial: int = 0

    @classmethod
    def connect(
        cls, path: Path, proc: subprocess.Popen[bytes], timeout: float = 10
    ) -> SerialConsole:
        """Connect once QEMU has created the socket; fail early if QEMU exits."""
        deadline = time.monotonic() + timeout
        while True:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.connect(str(path))
                return cls(sock)
            except OSError:
                sock.close()
                if proc.poll() is not None:
                    raise RuntimeError(f"QEMU exited with code {proc.returncode}") from None
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)

    def send(self, text: str) -> None:
        self.sock.sendall(text.encode())

    def expect(self, pattern: str, timeout: float = 30) -> re.Match[bytes]:
        """Wait until regex `pattern` matches output after the cursor; move the cursor past it."""
        regex = re.compile(pattern.encode(), re.MULTILINE)
        deadline = time.monotonic() + timeout
        while True:
            match = regex.search(self.received, self.cursor)
            if match:
                self.cursor = match.end()
                return match
            left = deadline - time.monotonic()
            if left <= 0:
                tail = self.received[-2000:].decode(errors="replace")
                raise TimeoutError(f"no {pattern!r} on the serial console in {timeout} s:\n{tail}")
            self.sock.settimeout(min(left, 0.5))
            with contextlib.suppress(TimeoutError):
                chunk = self.sock.recv(65536)
                if not chunk:
                    raise EOFError("the serial console closed (QEMU exited?)")
                self.received += chunk

    def run(self, command: str, timeout: float = 30) -> str:
        """Type `command` into the shell and return its output (stripped, CRs and escapes gone).

        The output is framed by two echoes whose typed form (quoted) differs from what they
        print, so the shell's echo of the typed line never matches.
        """
        self._serial += 1
        begin, end = f"@@BEGIN-{self._serial}@@", f"@@END-{self._serial}@@"
        quoted = [f"'{mark[:2]}''{mark[2:]}'" for mark in (begin, end)]
        self.send(f"echo {quoted[0]}; {command}; echo {quoted[1]}\n")
        self.expect(re.escape(begin) + r"\r?\n", timeout)
        start = self.cursor
        match = self.expect(re.escape(end), timeout)
        output = _ANSI.sub(b"", bytes(self.received[start : match.start()]))
        return output.decode(errors="replace").replace("\r", "").strip()

    def close(self) -> None:
        self.sock.close()


@dataclass
class RunningGuest:
    """A QEMU started by `boot_guest`, with its console, QMP socket and logs."""

    proc: subprocess.Popen[bytes]
    workdir: Path
    console: SerialConsole
    started: float  # time.monotonic() just before QEMU was spawned

    @property
    def qmp_socket(self) -> Path:
        return self.workdir / "qmp.sock"

    @property
    def console_log(self) -> Path:
        return self.workdir / "console.log"

    def log_text(self) -> str:
        try:
            return self.console_log.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def wait_booted(self, timeout: float = 60) -> float:
        """Wait for the boot marker, then the prompt; the seconds since the process started."""
        self.console.expect(re.escape(BOOT_MARKER), timeout)
        self.console.expect(re.escape(PROMPT), timeout)
        return time.monotonic() - self.started

    def wait_exit(self, timeout: float) -> int:
        """The exit code once QEMU exits on its own within `timeout` s."""
        return self.proc.wait(timeout=timeout)


@contextlib.contextmanager
def boot_guest(
    image: GuestImage,
    *,
    machine: str = "q35",
    memory_mib: int = 256,
    extra_args: Sequence[str] = (),
    extra_cmdline: str = "",
    workdir: Path | None = None,
) -> Iterator[RunningGuest]:
    """Start QEMU on `image` and yield it (not yet booted: call wait_booted); kill it at the end."""
    own_dir = workdir is None
    work = Path(tempfile.mkdtemp(prefix="vmkg-", dir="/tmp")) if workdir is None else workdir
    argv = qemu_argv(
        image,
        work,
        machine=machine,
        memory_mib=memory_mib,
        extra_args=extra_args,
        extra_cmdline=extra_cmdline,
    )
    stderr_path = work / "qemu.stderr"
    proc: subprocess.Popen[bytes] | None = None
    console: SerialConsole | None = None
    try:
        with stderr_path.open("wb") as stderr:
            started = time.monotonic()
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=stderr, stderr=stderr)
        console = SerialConsole.connect(work / "console.sock", proc)
        guest = RunningGuest(proc, work, console, started)
        yield guest
    except BaseException:
        print(f"QEMU argv: {argv}")
        for title, path in (("console log", work / "console.log"), ("QEMU stderr", stderr_path)):
            text = path.read_text(errors="replace") if path.exists() else "(none)"
            print(f"---- {title} ----\n{text[-6000:]}")
        raise
    finally:
        if console is not None:
            console.close()
        if proc is not None:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=10)
        if own_dir:
            shutil.rmtree(work, ignore_errors=True)
