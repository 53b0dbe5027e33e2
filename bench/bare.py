"""The floor of the lifecycle rows: the very QEMU argv vmkit would run, started by hand.

The argv comes from `vmkit domxml-to-native qemu-argv` of the same domain XML; its temporary
socket/log folder is replaced by one folder per domain, and `-daemonize -pidfile` is added (as
vmkit does). Operations are what a person would do by hand: SIGKILL for destroy, QMP
`system_powerdown`, `stop`/`cont`, migrate to a file descriptor for save (bandwidth limit
lifted, PLATFORM.md) and `-incoming fd:N` for restore.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench import procs
from bench.driver import Dom, plain_shutdown
from bench.guest import Guest, domain_uuid, domain_xml, file_size
from bench.qmp import Qmp, QmpFailed
from bench.vmkit_side import Vmkit, run_parallel

MIGRATE_BANDWIDTH = 10 * 1024**3  # QEMU 7.2 defaults to 128 MiB/s


def native_dir(argv: list[str]) -> str:
    """The temporary folder of domxml-to-native's argv (from the QMP socket's path)."""
    for arg in argv:
        match = re.search(r"id=charmonitor,path=([^,]+)/[^/,]+", arg)
        if match:
            return match.group(1)
    raise ValueError("no QMP monitor socket (id=charmonitor) in the argv")


def relocate(argv: list[str], old_dir: str, new_dir: Path) -> list[str]:
    """The argv with every mention of `old_dir` pointing into `new_dir` instead."""
    return [arg.replace(old_dir, str(new_dir)) for arg in argv]


def chardev_path(argv: list[str], ident: str, key: str) -> Path:
    """A property of the chardev `ident` (path=, logfile=) in the argv."""
    for arg in argv:
        if f"id={ident}," in arg or arg.endswith(f"id={ident}"):
            match = re.search(rf"(?:^|,){key}=([^,]+)", arg)
            if match:
                return Path(match.group(1))
    raise ValueError(f"no {key}= for chardev {ident} in the argv")


@dataclass
class BareDom(Dom):
    argv: list[str]
    qmp_path: Path
    pidfile: Path
    pid: procs.Pid | None = None


class BareDriver:
    system = "floor"

    def __init__(self, vmkit: Vmkit, guest: Guest, workdir: Path) -> None:
        self.vmkit = vmkit
        self.guest = guest
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)

    def define(self, name: str) -> BareDom:
        uuid = domain_uuid(self.system, name)
        xml = self.workdir / f"{name}.xml"
        xml.write_text(domain_xml(self.guest, name, uuid))
        native = self.vmkit.native_argv(xml)
        home = self.workdir / name
        home.mkdir(exist_ok=True)
        argv = relocate(native, native_dir(native), home)
        qmp = chardev_path(argv, "charmonitor", "path")
        log = chardev_path(argv, "charserial0", "logfile")
        return BareDom(name, uuid, log, xml, argv, qmp, home / "qemu.pid")

    def undefine(self, dom: Dom) -> None:
        pass

    def console_offset(self, dom: Dom) -> int:
        return file_size(dom.console_log)

    def _launch_argv(self, dom: BareDom, extra: list[str]) -> list[str]:
        return [*dom.argv, *extra, "-daemonize", "-pidfile", str(dom.pidfile)]

    def _read_pid(self, dom: BareDom) -> None:
        dom.pid = procs.Pid.of(int(dom.pidfile.read_text().strip()))

    def start(self, dom: Dom) -> None:
        assert isinstance(dom, BareDom)
        dom.pidfile.unlink(missing_ok=True)
        procs.run(self._launch_argv(dom, []))
        self._read_pid(dom)

    def start_many(self, doms: list[Dom], parallel: bool) -> None:
        if not parallel:
            for dom in doms:
                self.start(dom)
            return
        bare = [d for d in doms if isinstance(d, BareDom)]
        for dom in bare:
            dom.pidfile.unlink(missing_ok=True)
        run_parallel([self._launch_argv(d, []) for d in bare])
        for dom in bare:
            self._read_pid(dom)

    def _pid(self, dom: Dom) -> procs.Pid:
        assert isinstance(dom, BareDom) and dom.pid is not None, "domain not started"
        return dom.pid

    def destroy(self, dom: Dom) -> None:
        procs.kill_and_wait(self._pid(dom))

    def shutdown(self, dom: Dom) -> None:
        assert isinstance(dom, BareDom)
        with Qmp(dom.qmp_path) as qmp:
            qmp.command("system_powerdown")
        procs.wait_dead(self._pid(dom), timeout=60)

    def prepare_shutdown(self, dom: Dom) -> tuple[Callable[[], None], Callable[[], None]]:
        return plain_shutdown(self, dom)

    def suspend_resume(self, dom: Dom) -> None:
        assert isinstance(dom, BareDom)
        with Qmp(dom.qmp_path) as qmp:
            qmp.command("stop")
            qmp.command("cont")

    def can(self, operation: str) -> bool:
        return True

    def save(self, dom: Dom, path: Path) -> None:
        assert isinstance(dom, BareDom)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with Qmp(dom.qmp_path) as qmp:
                qmp.command("migrate-set-parameters", {"max-bandwidth": MIGRATE_BANDWIDTH})
                qmp.command("getfd", {"fdname": "migfile"}, fds=[fd])
                qmp.command("migrate", {"uri": "fd:migfile"})
                _wait_migration(qmp)
                qmp.command("quit")
        finally:
            os.close(fd)
        procs.wait_dead(self._pid(dom), timeout=60)

    def restore(self, dom: Dom, path: Path) -> None:
        assert isinstance(dom, BareDom)
        fd = os.open(path, os.O_RDONLY)
        try:
            dom.pidfile.unlink(missing_ok=True)
            argv = self._launch_argv(dom, ["-incoming", f"fd:{fd}"])
            proc = procs.spawn(argv, pass_fds=[fd])
            _, err = proc.communicate(timeout=60)
            procs.release(proc)
            if proc.returncode != 0:
                raise procs.CommandFailed(argv, proc.returncode, err.decode(errors="replace"))
        finally:
            os.close(fd)
        self._read_pid(dom)
        with Qmp(dom.qmp_path) as qmp:
            deadline = time.monotonic() + 60
            while qmp.command("query-status")["status"] != "running":
                if time.monotonic() > deadline:
                    raise TimeoutError("restored QEMU did not start running")
                time.sleep(0.002)

    def qemu_pid(self, dom: Dom) -> int | None:
        assert isinstance(dom, BareDom)
        return dom.pid.pid if dom.pid is not None and dom.pid.alive() else None

    def extra_rss(self) -> int:
        return 0

    def manager_rss(self) -> int:
        return 0

    def force_off(self, dom: Dom) -> None:
        assert isinstance(dom, BareDom)
        if dom.pid is not None:
            procs.kill_and_wait(dom.pid)
        dom.pid = None


def _wait_migration(qmp: Qmp, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        status = qmp.command("query-migrate").get("status")
        if status == "completed":
            return
        if status in ("failed", "cancelled"):
            raise QmpFailed(f"migration {status}")
        if time.monotonic() > deadline:
            raise TimeoutError("migration did not complete")
        time.sleep(0.002)
