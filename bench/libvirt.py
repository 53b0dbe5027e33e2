"""libvirt as the reference: the bench's own libvirtd + virtlogd, driven with virsh.

`LibvirtHost.start()` runs bench.libvirt_host in a private mount namespace (see there): all of
libvirt's files, sockets and definitions live in the run's folder, the daemons run under a
subreaper, and everything is stopped by pid at the end. The libvirt rows are refused when the
binaries are missing ("not installed") or when a system libvirtd/virtqemud is running (its
domains would share the host and distort the figures).
"""

from __future__ import annotations

import json
import os
import select
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from bench import procs
from bench.driver import Dom
from bench.guest import Guest, domain_uuid, domain_xml
from bench.vmkit_side import run_parallel

INSTALL = "apt-get install -y libvirt-daemon-system libvirt-clients"
DAEMONS = ("libvirtd", "virtqemud", "virtlogd")


def libvirt_problem() -> str | None:
    """None when the libvirt rows can run; else why not."""
    missing = [b for b in ("virsh", "libvirtd", "virtlogd", "unshare") if not shutil.which(b)]
    if missing:
        return f"not installed ({', '.join(missing)} missing; {INSTALL})"
    running = procs.processes_named(DAEMONS)
    if running:
        return f"a system libvirt daemon is running (pids {running}); stop it to compare"
    return None


class LibvirtHost:
    """The private libvirtd + virtlogd of one run."""

    def __init__(self, base: Path, tracked: procs.Tracked) -> None:
        self.base = base
        self.tracked = tracked
        self.helper: subprocess.Popen[bytes] | None = None
        self.daemons: dict[str, int] = {}
        self.uri = f"qemu:///system?socket={base / 'sock' / 'libvirt-sock'}"

    def start(self, timeout: float = 60.0) -> None:
        self.base.mkdir(parents=True, exist_ok=True)
        self.base.chmod(0o755)
        package_root = Path(__file__).resolve().parent.parent
        argv = ["unshare", "--mount", "--propagation", "private", "--"]
        argv += [sys.executable, "-m", "bench.libvirt_host", str(self.base)]
        self.helper = procs.spawn(argv, cwd=package_root, stderr=None)
        self.tracked.add(self.helper.pid)
        assert self.helper.stdout is not None
        ready, _, _ = select.select([self.helper.stdout], [], [], timeout)
        line = self.helper.stdout.readline() if ready else b""
        try:
            info = json.loads(line or b"{}")
        except json.JSONDecodeError:
            info = {"error": line.decode(errors="replace")}
        if "libvirtd" not in info:
            self.stop()
            log = self.base / "log" / "libvirtd.out"
            tail = log.read_text(errors="replace")[-500:] if log.exists() else ""
            raise RuntimeError(f"private libvirtd did not start: {info.get('error', '')} {tail}")
        self.daemons = {"libvirtd": info["libvirtd"], "virtlogd": info["virtlogd"]}
        for pid in self.daemons.values():
            self.tracked.add(pid)
        self.virsh("list", "--all")  # first connect probes QEMU's capabilities: not timed

    def virsh_argv(self, *args: str) -> list[str]:
        return ["virsh", "-c", self.uri, *args]

    def virsh(self, *args: str, check: bool = True, timeout: float = 120.0) -> procs.Result:
        return procs.run(self.virsh_argv(*args), check=check, timeout=timeout)

    def daemon_rss(self) -> int:
        return sum(procs.rss_bytes(pid) for pid in self.daemons.values())

    def extra_pids(self) -> list[int]:
        """Processes under the helper other than the daemons and QEMU (libvirt runs none)."""
        if self.helper is None:
            return []
        skip = set(self.daemons.values())
        found = []
        todo = [self.helper.pid]
        while todo:
            for child in procs.child_pids(todo.pop()):
                todo.append(child)
                argv = procs.cmdline(child)
                if child in skip or not argv or "qemu-system" in Path(argv[0]).name:
                    continue
                found.append(child)
        return found

    def stop(self) -> None:
        """SIGTERM the helper (it stops the daemons and its QEMUs), then anything left, by pid."""
        if self.helper is None:
            return
        if self.helper.poll() is None:
            self.helper.terminate()
            try:
                self.helper.wait(30)
            except subprocess.TimeoutExpired:
                self.helper.kill()
                self.helper.wait()
        procs.release(self.helper)
        self.tracked.forget(self.helper.pid)
        leftovers = [procs.Pid.of(pid) for pid in self.daemons.values()]
        procs.stop_pids([p for p in leftovers if p.alive()], grace=2)
        for pid in self.daemons.values():
            self.tracked.forget(pid)
        self.helper = None


class LibvirtDriver:
    system = "libvirt"

    def __init__(self, host: LibvirtHost, guest: Guest, workdir: Path) -> None:
        self.host = host
        self.guest = guest
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        workdir.chmod(0o755)

    def write_xml(self, name: str) -> Dom:
        uuid = domain_uuid(self.system, name)
        log = self.workdir / f"{name}.console.log"
        path = self.workdir / f"{name}.xml"
        path.write_text(domain_xml(self.guest, name, uuid, console_log=log))
        return Dom(name, uuid, log, path)

    def define(self, name: str) -> Dom:
        dom = self.write_xml(name)
        self.host.virsh("define", str(dom.xml_path))
        return dom

    def undefine(self, dom: Dom) -> None:
        self.host.virsh("undefine", dom.name, check=False)

    def console_offset(self, dom: Dom) -> int:
        dom.console_log.unlink(missing_ok=True)  # append='off': each start writes it anew
        return 0

    def start(self, dom: Dom) -> None:
        self.host.virsh("start", dom.name)

    def start_many(self, doms: list[Dom], parallel: bool) -> None:
        if not parallel:
            for dom in doms:
                self.start(dom)
            return
        run_parallel([self.host.virsh_argv("start", d.name) for d in doms])

    def destroy(self, dom: Dom) -> None:
        self.host.virsh("destroy", dom.name)

    def shutdown(self, dom: Dom) -> None:
        action, cleanup = self.prepare_shutdown(dom)
        try:
            action()
        finally:
            cleanup()

    def prepare_shutdown(self, dom: Dom) -> tuple[Callable[[], None], Callable[[], None]]:
        """(timed action, untimed clean-up): `virsh shutdown`, then libvirt's own "Stopped"
        lifecycle event, watched by a `virsh event` started (untimed) beforehand."""
        argv = self.host.virsh_argv(
            "event", "--domain", dom.name, "--event", "lifecycle", "--loop", "--timeout", "90"
        )
        watcher = procs.spawn(argv)
        time.sleep(0.3)  # let it register with libvirtd before the timed part begins

        def action() -> None:
            self.host.virsh("shutdown", dom.name)
            _wait_stopped(watcher, timeout=60)

        return action, lambda: _stop_watcher(watcher)

    def suspend_resume(self, dom: Dom) -> None:
        self.host.virsh("suspend", dom.name)
        self.host.virsh("resume", dom.name)

    def can(self, operation: str) -> bool:
        return True

    def save(self, dom: Dom, path: Path) -> None:
        self.host.virsh("save", dom.name, str(path))

    def restore(self, dom: Dom, path: Path) -> None:
        self.host.virsh("restore", str(path))

    def qemu_pid(self, dom: Dom) -> int | None:
        return procs.find_qemu(dom.uuid)

    def extra_rss(self) -> int:
        return sum(procs.rss_bytes(pid) for pid in self.host.extra_pids())

    def manager_rss(self) -> int:
        return self.host.daemon_rss()

    def force_off(self, dom: Dom) -> None:
        self.host.virsh("destroy", dom.name, check=False)


def _wait_stopped(watcher: subprocess.Popen[bytes], timeout: float) -> None:
    assert watcher.stdout is not None
    deadline = time.monotonic() + timeout
    buffered = b""
    fd = watcher.stdout.fileno()
    while b"Stopped" not in buffered:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("libvirt sent no 'Stopped' event")
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            chunk = os.read(fd, 4096)
            if not chunk:
                raise RuntimeError(f"virsh event ended early: {buffered.decode(errors='replace')}")
            buffered += chunk


def _stop_watcher(watcher: subprocess.Popen[bytes]) -> None:
    if watcher.poll() is None:
        watcher.kill()
    watcher.communicate()
    procs.release(watcher)
