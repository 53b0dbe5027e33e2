"""vmkit as its users run it: the `vmkit` command, one process per operation, in a private
VMKIT_ROOT (the bench's temporary folder), with nothing resident between commands."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Sequence
from functools import cache
from pathlib import Path

from bench import procs
from bench.driver import Dom, plain_shutdown
from bench.guest import Guest, domain_uuid, domain_xml, file_size


def vmkit_argv0() -> list[str]:
    """The console script next to this interpreter (what `pip install` gives), else -m vmkit."""
    script = Path(sys.executable).parent / "vmkit"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "vmkit"]


class Vmkit:
    """The vmkit CLI bound to one VMKIT_ROOT."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.env = {**os.environ, "VMKIT_ROOT": str(root)}
        self.argv0 = vmkit_argv0()

    def argv(self, *args: str) -> list[str]:
        return [*self.argv0, *args]

    def run(self, *args: str, check: bool = True, timeout: float = 120.0) -> procs.Result:
        return procs.run(self.argv(*args), env=self.env, check=check, timeout=timeout)

    @cache  # noqa: B019 - one Vmkit per run
    def has(self, command: str) -> bool:
        """True when `vmkit COMMAND --help` works (the command exists in this build)."""
        return self.run(command, "--help", check=False, timeout=30).rc == 0

    def console_log(self, uuid: str) -> Path:
        return self.root / "lib" / "log" / uuid / "console.log"

    def native_argv(self, xml_file: Path) -> list[str]:
        """`vmkit domxml-to-native qemu-argv --json FILE`: the argv vmkit would run."""
        out = self.run("domxml-to-native", "qemu-argv", "--json", str(xml_file)).stdout
        argv: list[str] = json.loads(out)["argv"]
        return argv

    def own_processes(self) -> list[int]:
        """Processes vmkit left running in this VMKIT_ROOT other than QEMU (daemons, helpers)."""
        marker = f"VMKIT_ROOT={self.root}"
        found = []
        for pid in procs.all_pids():
            argv = procs.cmdline(pid)
            if not argv or "qemu-system" in Path(argv[0]).name or procs.is_dead(pid):
                continue
            if procs.environ_has(pid, marker):
                found.append(pid)
        return found


class VmkitDriver:
    system = "vmkit"

    def __init__(self, vmkit: Vmkit, guest: Guest, workdir: Path) -> None:
        self.vmkit = vmkit
        self.guest = guest
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)

    def write_xml(self, name: str) -> Dom:
        uuid = domain_uuid(self.system, name)
        path = self.workdir / f"{name}.xml"
        path.write_text(domain_xml(self.guest, name, uuid))
        return Dom(name, uuid, self.vmkit.console_log(uuid), path)

    def define(self, name: str) -> Dom:
        dom = self.write_xml(name)
        self.vmkit.run("define", str(dom.xml_path))
        return dom

    def undefine(self, dom: Dom) -> None:
        self.vmkit.run("undefine", dom.name, check=False)

    def console_offset(self, dom: Dom) -> int:
        return file_size(dom.console_log)  # vmkit appends to console.log across runs

    def start(self, dom: Dom) -> None:
        self.vmkit.run("start", dom.name)

    def start_many(self, doms: list[Dom], parallel: bool) -> None:
        if not parallel:
            for dom in doms:
                self.start(dom)
            return
        run_parallel([self.vmkit.argv("start", d.name) for d in doms], self.vmkit.env)

    def destroy(self, dom: Dom) -> None:
        self.vmkit.run("destroy", dom.name)

    def shutdown(self, dom: Dom) -> None:
        self.vmkit.run("shutdown", "--wait", "--timeout", "60", dom.name, timeout=90)

    def prepare_shutdown(self, dom: Dom) -> tuple[Callable[[], None], Callable[[], None]]:
        return plain_shutdown(self, dom)

    def suspend_resume(self, dom: Dom) -> None:
        self.vmkit.run("suspend", dom.name)
        self.vmkit.run("resume", dom.name)

    def can(self, operation: str) -> bool:
        return self.vmkit.has(operation)

    def save(self, dom: Dom, path: Path) -> None:
        self.vmkit.run("save", dom.name, str(path))

    def restore(self, dom: Dom, path: Path) -> None:
        self.vmkit.run("restore", str(path))

    def qemu_pid(self, dom: Dom) -> int | None:
        return procs.find_qemu(dom.uuid)

    def extra_rss(self) -> int:
        return sum(procs.rss_bytes(pid) for pid in self.vmkit.own_processes())

    def manager_rss(self) -> int:
        return self.extra_rss()

    def force_off(self, dom: Dom) -> None:
        self.vmkit.run("destroy", dom.name, check=False)
        pid = procs.find_qemu(dom.uuid)
        if pid is not None:  # vmkit failed to stop it: by pid, as a last resort
            procs.kill_and_wait(procs.Pid.of(pid))


def run_parallel(argvs: Sequence[list[str]], env: dict[str, str] | None = None) -> None:
    """Start all commands at once and wait for all; CommandFailed for the first that failed."""
    running = [procs.spawn(argv, env=env) for argv in argvs]
    failed: procs.CommandFailed | None = None
    for argv, proc in zip(argvs, running, strict=True):
        _, err = proc.communicate(timeout=300)
        procs.release(proc)
        if proc.returncode != 0 and failed is None:
            failed = procs.CommandFailed(argv, proc.returncode, err.decode(errors="replace"))
    if failed is not None:
        raise failed
