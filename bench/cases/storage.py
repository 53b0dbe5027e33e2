"""Storage rows: vol-clone of a qcow2 volume, snapshot-create and snapshot-revert of a shut-off
domain's qcow2 disk; floor = qemu-img by hand (convert; snapshot -c / -a).

Each system gets its own directory pool with its own copy of the source image (1 GiB virtual,
DATA_MIB written), so no two systems share a file. A row whose vmkit command does not exist
yet says "not available yet".
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Mapping
from pathlib import Path

from bench import procs
from bench.guest import domain_uuid, domain_xml
from bench.libvirt import LibvirtDriver
from bench.model import Status
from bench.runner import Case
from bench.session import Session
from bench.vmkit_side import VmkitDriver

DATA_MIB = 64
CLONE_COMMANDS = ("pool-create-as", "pool-refresh", "vol-clone", "vol-delete")
SNAPSHOT_COMMANDS = ("snapshot-create-as", "snapshot-revert", "snapshot-delete")
CLONE_ROWS = ("store.vol_clone",)
SNAPSHOT_ROWS = ("store.snapshot_create", "store.snapshot_revert")


def make_image(path: Path) -> None:
    """A qcow2 of 1 GiB with DATA_MIB of non-zero data at its start."""
    procs.run(["qemu-img", "create", "-q", "-f", "qcow2", str(path), "1G"])
    write = f"write -P 0xab 0 {DATA_MIB}M"
    procs.run(["qemu-io", "-f", "qcow2", "-c", write, str(path)])


def timed_run(argv: list[str], env: Mapping[str, str] | None = None) -> float:
    start = time.perf_counter()
    procs.run(argv, env=env)
    return time.perf_counter() - start


def disk_xml(path: Path) -> str:
    return (
        "<disk type='file' device='disk'><driver name='qemu' type='qcow2'/>"
        f"<source file='{path}'/><target dev='vda' bus='virtio'/></disk>"
    )


class StorageCase(Case):
    name = "storage"
    rows = (*CLONE_ROWS, *SNAPSHOT_ROWS)

    def __init__(self, session: Session) -> None:
        self.session = session
        self.base = session.root / "store"
        self.counter = 0

    def unavailable(self, system: str) -> tuple[Status, str] | None:
        problem = self.session.system_problem(system)
        if problem is None and system not in self.session.drivers:
            problem = (Status.ERROR, self.session.guest_problem or "no driver")
        return problem

    def _vmkit_has(self, commands: tuple[str, ...]) -> bool:
        vmkit = self.session.vmkit
        return vmkit is not None and all(vmkit.has(c) for c in commands)

    def row_status(self, system: str) -> dict[str, tuple[Status, str]]:
        if system != "vmkit":
            return {}
        status: dict[str, tuple[Status, str]] = {}
        for rows, commands in ((CLONE_ROWS, CLONE_COMMANDS), (SNAPSHOT_ROWS, SNAPSHOT_COMMANDS)):
            if not self._vmkit_has(commands):
                note = f"not available yet (needs {', '.join(commands)})"
                status.update(dict.fromkeys(rows, (Status.NOT_AVAILABLE, note)))
        return status

    def pool_dir(self, system: str) -> Path:
        return self.base / system

    def setup(self, system: str) -> None:
        pool = self.pool_dir(system)
        pool.mkdir(parents=True, exist_ok=True)
        pool.chmod(0o755)
        make_image(pool / "src.qcow2")
        make_image(pool / "disk.qcow2")
        if system == "floor":
            return
        if system == "libvirt" or self._vmkit_has(CLONE_COMMANDS):
            self._cli(system, "pool-create-as", "bench", "dir", "--target", str(pool))
        if system == "libvirt" or self._vmkit_has(SNAPSHOT_COMMANDS):
            self._define_disk_domain(system)

    def _define_disk_domain(self, system: str) -> None:
        driver = self.session.drivers[system]
        assert self.session.guest is not None
        uuid = domain_uuid(system, "snap0")
        xml = domain_xml(self.session.guest, "snap0", uuid)
        xml = xml.replace(
            "<devices>", "<devices>\n    " + disk_xml(self.pool_dir(system) / "disk.qcow2")
        )
        path = self.pool_dir(system) / "snap0.xml"
        path.write_text(xml)
        assert isinstance(driver, VmkitDriver | LibvirtDriver)
        self._cli(system, "define", str(path))

    def _cli_argv(self, system: str, *args: str) -> tuple[list[str], dict[str, str] | None]:
        driver = self.session.drivers[system]
        if isinstance(driver, VmkitDriver):
            return driver.vmkit.argv(*args), driver.vmkit.env
        assert isinstance(driver, LibvirtDriver)
        return driver.host.virsh_argv(*args), None

    def _cli(self, system: str, *args: str, check: bool = True) -> None:
        argv, env = self._cli_argv(system, *args)
        procs.run(argv, env=env, check=check)

    def _timed_cli(self, system: str, *args: str) -> float:
        argv, env = self._cli_argv(system, *args)
        return timed_run(argv, env)

    def run_once(self, system: str) -> Mapping[str, float]:
        self.counter += 1
        values: dict[str, float] = {}
        pool = self.pool_dir(system)
        clone = f"clone{self.counter}.qcow2"
        snap = f"s{self.counter}"
        disk = str(pool / "disk.qcow2")
        if system == "floor":
            src = str(pool / "src.qcow2")
            argv = ["qemu-img", "convert", "-f", "qcow2", "-O", "qcow2", src, str(pool / clone)]
            values["store.vol_clone"] = timed_run(argv)
            (pool / clone).unlink()
            values["store.snapshot_create"] = timed_run(["qemu-img", "snapshot", "-c", snap, disk])
            values["store.snapshot_revert"] = timed_run(["qemu-img", "snapshot", "-a", snap, disk])
            procs.run(["qemu-img", "snapshot", "-d", snap, disk])
            return values
        if system == "libvirt" or self._vmkit_has(CLONE_COMMANDS):
            self._cli(system, "pool-refresh", "bench")
            values["store.vol_clone"] = self._timed_cli(
                system, "vol-clone", "--pool", "bench", "src.qcow2", clone
            )
            self._cli(system, "vol-delete", "--pool", "bench", clone)
        if system == "libvirt" or self._vmkit_has(SNAPSHOT_COMMANDS):
            values["store.snapshot_create"] = self._timed_cli(
                system, "snapshot-create-as", "snap0", snap
            )
            values["store.snapshot_revert"] = self._timed_cli(
                system, "snapshot-revert", "snap0", snap
            )
            self._cli(system, "snapshot-delete", "snap0", snap)
        return values

    def teardown(self, system: str) -> None:
        if system != "floor":
            if system == "libvirt" or self._vmkit_has(SNAPSHOT_COMMANDS):
                self._cli(system, "undefine", "snap0", "--snapshots-metadata", check=False)
                self._cli(system, "undefine", "snap0", check=False)
            self._cli(system, "pool-destroy", "bench", check=False)
        shutil.rmtree(self.pool_dir(system), ignore_errors=True)
