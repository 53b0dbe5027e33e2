"""One benchmark run's resources: the temporary folder, the guest, vmkit, the private libvirt,
the drivers, and the clean-up that stops everything the run started, by pid."""

from __future__ import annotations

import atexit
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from bench import procs
from bench.bare import BareDriver
from bench.driver import Driver
from bench.guest import Guest
from bench.libvirt import LibvirtDriver, LibvirtHost, libvirt_problem
from bench.model import Status
from bench.runner import Log, log_stderr
from bench.vmkit_side import Vmkit, VmkitDriver


@dataclass
class Options:
    mode: str = "full"  # full | quick | selftest
    libvirt: bool = True
    keep: bool = False
    domains: int = 10
    guest_cache: Path = Path("/var/cache/vmkit-test-guest")


@dataclass
class Session:
    options: Options
    root: Path
    tracked: procs.Tracked = field(default_factory=procs.Tracked)
    log: Log = log_stderr
    vmkit: Vmkit | None = None
    vmkit_problem: str | None = None
    guest: Guest | None = None
    guest_problem: str | None = None
    libvirt: LibvirtHost | None = None
    libvirt_status: tuple[Status, str] | None = None
    drivers: dict[str, Driver] = field(default_factory=dict)
    reaper: procs.Reaper | None = None
    _closed: bool = False

    @classmethod
    def open(cls, options: Options, log: Log = log_stderr) -> Session:
        root = Path(tempfile.mkdtemp(prefix="vb-", dir="/tmp"))  # short: unix socket paths
        root.chmod(0o755)  # libvirt's QEMU runs as libvirt-qemu and must reach the guest files
        session = cls(options, root, log=log)
        atexit.register(session.close)
        if not procs.become_subreaper():
            log("warning: could not become a child subreaper; zombies reaped by PID 1")
        session.reaper = procs.Reaper()
        session.reaper.start()
        return session

    def prepare(self, need_guest: bool) -> None:
        """vmkit, the guest, libvirt and the drivers; each problem is recorded, never raised."""
        self.vmkit = Vmkit(self.root / "vmkit")
        try:
            self.vmkit.run("list", "--all", timeout=60)
        except Exception as exc:
            self.vmkit_problem = f"vmkit does not run: {exc}"
        if need_guest:
            self._prepare_guest()
        self._prepare_libvirt()
        if self.guest is not None:
            self.drivers["floor"] = BareDriver(self.vmkit, self.guest, self.root / "bare")
            self.drivers["vmkit"] = VmkitDriver(self.vmkit, self.guest, self.root / "vx")
            if self.libvirt is not None:
                self.drivers["libvirt"] = LibvirtDriver(self.libvirt, self.guest, self.root / "lv")

    def _prepare_guest(self) -> None:
        from bench.guest import prepare_guest

        try:
            assert self.vmkit is not None
            self.log("preparing the tiny guest (vmkit guest build)")
            self.guest = prepare_guest(self.vmkit, self.options.guest_cache, self.root / "guest")
        except Exception as exc:
            self.guest_problem = f"no guest: {exc}"
            self.log(self.guest_problem)

    def _prepare_libvirt(self) -> None:
        if not self.options.libvirt:
            self.libvirt_status = (Status.NOT_INSTALLED, "not installed (--no-libvirt)")
            return
        problem = libvirt_problem()
        if problem is not None:
            status = Status.NOT_INSTALLED if problem.startswith("not installed") else Status.ERROR
            self.libvirt_status = (status, problem)
            self.log(f"libvirt: {problem}")
            return
        host = LibvirtHost(self.root / "libvirt", self.tracked)
        try:
            self.log("starting the private libvirtd + virtlogd")
            host.start()
            self.libvirt = host
        except Exception as exc:
            host.stop()
            self.libvirt_status = (Status.ERROR, f"private libvirtd failed: {exc}")
            self.log(self.libvirt_status[1])

    def prime(self) -> None:
        """Start and destroy one domain per system, untimed: first-start costs (page cache,
        caches a manager fills on its first start) never land in a measured run."""
        for system, driver in self.drivers.items():
            if self.system_problem(system) is not None:
                continue
            try:
                dom = driver.define("prime0")
                try:
                    driver.console_offset(dom)
                    driver.start(dom)
                    driver.force_off(dom)
                finally:
                    driver.undefine(dom)
            except Exception as exc:
                self.log(f"priming {system} failed (the runs will say more): {exc}")

    def system_problem(self, system: str) -> tuple[Status, str] | None:
        """Why a system cannot take part in any row, or None."""
        if system == "libvirt" and self.libvirt_status is not None:
            return self.libvirt_status
        if system == "vmkit" and self.vmkit_problem is not None:
            return (Status.ERROR, self.vmkit_problem)
        return None

    def close(self) -> None:
        """Stop every process of this run (by pid) and remove the folder unless --keep."""
        if self._closed:
            return
        self._closed = True
        if self.libvirt is not None:
            self.libvirt.stop()
        stop_qemus_under(self.root)
        self.tracked.stop_all()
        if self.reaper is not None:
            procs.reap_orphans()
            self.reaper.stop()
        if not self.options.keep:
            shutil.rmtree(self.root, ignore_errors=True)


def stop_qemus_under(root: Path) -> list[int]:
    """Kill (by pid) every QEMU whose argv points into this run's folder: only ours do."""
    needle = str(root) + "/"
    found = []
    for pid in procs.all_pids():
        argv = procs.cmdline(pid)
        ours = argv and "qemu-system" in Path(argv[0]).name and any(needle in a for a in argv)
        if ours and not procs.is_dead(pid):
            found.append(procs.Pid.of(pid))
    for entry in found:
        procs.kill_and_wait(entry, timeout=5)
    return [e.pid for e in found]
