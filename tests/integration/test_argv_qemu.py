"""Every golden argv case, run by the real QEMU: it must start paused (-S) and answer QMP.

The cases come from tests/unit/qemu/test_argv_cases.py (XML and Python-built domains). Each
domain is rewritten to point at real things in a short temporary folder before its argv is
built: small disk images (qcow2 via qemu-img, raw as sparse files), a character device node
for `type='block'` sources (there are no loop devices here; it takes no O_DIRECT, so such a
disk's cache none/directsync becomes writeback), the tiny guest's kernel and
initramfs for direct kernel boot, listening sockets for chardevs that connect, a no-op ifup
script. QEMU runs inside a throwaway network namespace, where it creates the taps it is
told to use (never in the root namespace). Each QEMU must answer `query-status` with
`prelaunch` and exit 0 on `quit`; it is killed by pid in any case.

Cases skipped: those the builder refuses (their golden file holds the error), kvm ones (no
usable KVM here) and vhost=on ones where /dev/vhost-net is missing (QEMU aborts).
"""

from __future__ import annotations

import contextlib
import copy
import importlib.util
import json
import os
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from vmkit.errors import InvalidConfig
from vmkit.model.devices import (
    CharDevice,
    CharType,
    DiskCache,
    DiskDevice,
    DiskFormat,
    DiskIo,
    DiskType,
)
from vmkit.qemu.argv import RuntimePaths, build_argv

pytestmark = pytest.mark.integration

CASES_FILE = Path(__file__).resolve().parents[1] / "unit" / "qemu" / "test_argv_cases.py"
SEABIOS = Path("/usr/share/seabios/bios.bin")
START_TIMEOUT = 10.0


def _load_cases() -> ModuleType:
    spec = importlib.util.spec_from_file_location("argv_golden_cases", CASES_FILE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while defining
    spec.loader.exec_module(module)
    return module


CASES = _load_cases()


@pytest.fixture(scope="module")
def netns() -> Iterator[str]:
    """A throwaway network namespace with lo up; QEMU creates its taps in there."""
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("needs root and iproute2 for a network namespace")
    name = f"vk-argv-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A short folder: unix socket paths are limited to 107 bytes."""
    path = Path(tempfile.mkdtemp(prefix="vk"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


class Rewriter:
    """Points a case's domain at real files under `root`; records sockets to listen on."""

    def __init__(self, root: Path, request: pytest.FixtureRequest) -> None:
        self.root = root
        self.request = request
        self.listen_paths: list[Path] = []

    def rewrite(self, case: Any) -> Any:
        case = copy.copy(case)
        case.dom = copy.deepcopy(case.dom)
        dom = case.dom
        self._disks(dom)
        self._boot(dom)
        chardevs = [*dom.devices.serials, *dom.devices.consoles, *dom.devices.channels]
        for n, dev in enumerate(chardevs):
            self._chardev(dev, n)
        for nic in dom.devices.interfaces:
            if nic.script_path is not None:
                nic.script_path = str(self._script())
        return case

    def _disks(self, dom: Any) -> None:
        for disk in dom.devices.disks:
            if disk.source is None:
                continue
            path = self.root / f"{disk.target_dev}.img"
            disk.source = str(path)
            if disk.type is DiskType.BLOCK:
                os.mknod(path, stat.S_IFCHR | 0o600, os.makedev(1, 3))  # like /dev/null
                if disk.driver_cache in (DiskCache.NONE, DiskCache.DIRECTSYNC):
                    disk.driver_cache = DiskCache.WRITEBACK  # no O_DIRECT on a char device
                    disk.driver_io = None if disk.driver_io is DiskIo.NATIVE else disk.driver_io
            elif disk.driver_type is DiskFormat.QCOW2 and disk.device is not DiskDevice.CDROM:
                subprocess.run(
                    ["qemu-img", "create", "-q", "-f", "qcow2", str(path), "16M"], check=True
                )
            else:
                with path.open("wb") as f:
                    f.truncate(1440 * 1024)

    def _boot(self, dom: Any) -> None:
        os_ = dom.os
        if os_.kernel is not None:
            guest = self.request.getfixturevalue("tiny_guest")
            os_.kernel = str(guest.kernel)
            if os_.initrd is not None:
                os_.initrd = str(guest.initramfs)
        if os_.loader is not None:
            os_.loader = str(SEABIOS)

    def _chardev(self, dev: CharDevice, n: int) -> None:
        if dev.log_file is not None:
            dev.log_file = str(self.root / f"char{n}.log")
        if dev.type in (CharType.FILE, CharType.UNIX) and dev.source_path is not None:
            dev.source_path = str(self.root / f"char{n}.{dev.type}")
            if dev.type is CharType.UNIX and dev.source_mode == "connect":
                self.listen_paths.append(Path(dev.source_path))

    def _script(self) -> Path:
        path = self.root / "ifup"
        path.write_text("#!/bin/sh\nexit 0\n")
        path.chmod(0o755)
        return path


class Qmp:
    """Just enough QMP over a unix socket: greeting, capabilities, commands."""

    def __init__(self, path: Path) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.file: Any = None
        try:
            self.sock.settimeout(START_TIMEOUT)
            self.sock.connect(str(path))
            self.file = self.sock.makefile("rw")
            greeting = json.loads(self.file.readline())
            assert "QMP" in greeting
            self.execute("qmp_capabilities")
        except BaseException:
            self.close()
            raise

    def execute(self, command: str) -> Any:
        self.file.write(json.dumps({"execute": command}) + "\n")
        self.file.flush()
        while True:
            reply = json.loads(self.file.readline())
            if "event" not in reply:
                break
        assert "error" not in reply, f"{command}: {reply['error']}"
        return reply["return"]

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
        self.sock.close()


def _connect(proc: subprocess.Popen[bytes], path: Path, stderr: Path) -> Qmp:
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        if proc.poll() is not None:
            pytest.fail(f"QEMU exited with {proc.returncode}:\n{stderr.read_text()}")
        if path.exists():
            with contextlib.suppress(ConnectionRefusedError):
                return Qmp(path)
        if time.monotonic() > deadline:
            pytest.fail(f"no QMP socket after {START_TIMEOUT} s:\n{stderr.read_text()}")
        time.sleep(0.01)


def _listeners(paths: list[Path]) -> list[socket.socket]:
    socks = []
    for path in paths:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(str(path))
        s.listen(1)
        socks.append(s)
    return socks


@pytest.mark.parametrize("name", CASES.all_case_names())
def test_qemu_accepts_argv(
    name: str, netns: str, short_dir: Path, request: pytest.FixtureRequest
) -> None:
    case = CASES.load_case(name)
    if case.accel == "kvm":
        pytest.skip("no usable KVM on this host")
    if case.vhost_net and not Path("/dev/vhost-net").exists():
        pytest.skip("no /dev/vhost-net: QEMU aborts on vhost=on")
    rewriter = Rewriter(short_dir, request)
    case = rewriter.rewrite(case)
    paths = RuntimePaths(
        short_dir / "qmp.sock", short_dir / "console.sock", short_dir / "console.log", short_dir
    )
    try:
        argv = build_argv(case.dom, case.options(), paths)
    except InvalidConfig as exc:
        # A case QEMU cannot run: its expected result is this refusal (its golden file).
        golden = Path(__file__).resolve().parents[1] / "data" / "argv" / f"{name}.args"
        assert golden.read_text().startswith("error: "), f"builder refused {name}: {exc}"
        return
    _run_paused(["ip", "netns", "exec", netns, *argv, "-S"], paths, rewriter.listen_paths)


def _run_paused(argv: list[str], paths: RuntimePaths, listen: list[Path]) -> None:
    stderr = paths.run_dir / "qemu.stderr"
    socks = _listeners(listen)
    with stderr.open("wb") as err:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=err, stderr=err)
    qmp: Qmp | None = None
    try:
        qmp = _connect(proc, paths.qmp_socket, stderr)
        status = qmp.execute("query-status")
        assert status["status"] == "prelaunch", status
        qmp.execute("quit")
        assert proc.wait(timeout=START_TIMEOUT) == 0
        assert "deprecated" not in stderr.read_text()
    except (AssertionError, OSError, ValueError) as exc:
        proc.poll()
        pytest.fail(f"{exc!r}; QEMU rc {proc.returncode}, stderr:\n{stderr.read_text()}")
    finally:
        if qmp is not None:
            qmp.close()
        if proc.poll() is None:
            proc.kill()  # `ip netns exec` execs QEMU: this pid is QEMU's
            proc.wait()
        for s in socks:
            s.close()
