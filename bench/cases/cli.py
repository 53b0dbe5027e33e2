"""CLI latency rows: `list --all` (1 and 200 domains), `dominfo`, `dumpxml`, `define` +
`undefine`; vmkit and virsh each as one process per command, floor `python3 -c pass`."""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from bench import procs
from bench.driver import Dom
from bench.libvirt import LibvirtDriver
from bench.model import Status
from bench.runner import Case
from bench.session import Session
from bench.vmkit_side import VmkitDriver

FLOOR_ARGV = [sys.executable, "-c", "pass"]


def timed_run(argv: Sequence[str], env: Mapping[str, str] | None = None) -> float:
    start = time.perf_counter()
    procs.run(argv, env=env)
    return time.perf_counter() - start


class CliBase(Case):
    def __init__(self, session: Session) -> None:
        self.session = session

    def unavailable(self, system: str) -> tuple[Status, str] | None:
        problem = self.session.system_problem(system)
        if problem is not None:
            return problem
        if system != "floor" and system not in self.session.drivers:
            return (Status.ERROR, self.session.guest_problem or "no driver")
        return None

    def cli(self, system: str, *args: str) -> float:
        """Time one command of `system` (vmkit or virsh)."""
        if system == "floor":
            return timed_run(FLOOR_ARGV)
        driver = self.session.drivers[system]
        if isinstance(driver, VmkitDriver):
            return timed_run(driver.vmkit.argv(*args), driver.vmkit.env)
        assert isinstance(driver, LibvirtDriver)
        return timed_run(driver.host.virsh_argv(*args))


class CliCase(CliBase):
    """list --all with one domain, dominfo, dumpxml, define + undefine."""

    name = "cli"
    rows = ("cli.list1", "cli.dominfo", "cli.dumpxml", "cli.define_undefine")

    def __init__(self, session: Session) -> None:
        super().__init__(session)
        self.doms: dict[str, Dom] = {}
        self.spare: dict[str, Path] = {}

    def setup(self, system: str) -> None:
        if system == "floor":
            return
        driver = self.session.drivers[system]
        assert isinstance(driver, VmkitDriver | LibvirtDriver)
        self.doms[system] = driver.define("cli0")
        self.spare[system] = driver.write_xml("cli-spare").xml_path

    def run_once(self, system: str) -> Mapping[str, float]:
        name = self.doms[system].name if system in self.doms else ""
        values = {
            "cli.list1": self.cli(system, "list", "--all"),
            "cli.dominfo": self.cli(system, "dominfo", name),
            "cli.dumpxml": self.cli(system, "dumpxml", name),
        }
        if system == "floor":
            both = self.cli(system) + self.cli(system)
        else:
            both = self.cli(system, "define", str(self.spare[system]))
            both += self.cli(system, "undefine", "cli-spare")
        values["cli.define_undefine"] = both
        return values

    def recover(self, system: str) -> None:
        if system in self.doms:
            self.session.drivers[system].undefine(Dom("cli-spare", "", Path(), Path()))

    def teardown(self, system: str) -> None:
        if system in self.doms:
            self.session.drivers[system].undefine(self.doms.pop(system))


class ListManyCase(CliBase):
    """list --all with `count` domains defined (200 by default)."""

    name = "cli-200"
    rows = ("cli.list200",)

    def __init__(self, session: Session, count: int = 200) -> None:
        super().__init__(session)
        self.count = count
        self.names: dict[str, list[str]] = {}

    def setup(self, system: str) -> None:
        if system == "floor":
            return
        driver = self.session.drivers[system]
        assert isinstance(driver, VmkitDriver | LibvirtDriver)
        doms = [driver.write_xml(f"many{i:03d}") for i in range(self.count)]
        files = [d.xml_path for d in doms]
        self.names[system] = [d.name for d in doms]
        if isinstance(driver, VmkitDriver):
            bulk_vmkit(driver, "define", [str(f) for f in files])
        else:
            bulk_virsh(driver, "define", [str(f) for f in files])

    def run_once(self, system: str) -> Mapping[str, float]:
        return {"cli.list200": self.cli(system, "list", "--all")}

    def teardown(self, system: str) -> None:
        names = self.names.pop(system, [])
        if not names:
            return
        driver = self.session.drivers[system]
        if isinstance(driver, VmkitDriver):
            bulk_vmkit(driver, "undefine", names)
        elif isinstance(driver, LibvirtDriver):
            bulk_virsh(driver, "undefine", names)


def bulk_vmkit(driver: VmkitDriver, verb: str, items: list[str]) -> None:
    """Define/undefine many domains fast (vmkit's engine in one process), else one by one."""
    argv = [sys.executable, "-m", "bench.vmkit_bulk", verb, *items]
    cwd = Path(__file__).resolve().parents[2]
    result = procs.run(argv, env=driver.vmkit.env, cwd=cwd, check=False, timeout=600)
    if result.rc == 0:
        return
    for item in items:  # the engine's API moved: fall back to the CLI
        driver.vmkit.run(verb, item, check=verb == "define")


def bulk_virsh(driver: LibvirtDriver, verb: str, items: list[str], chunk: int = 50) -> None:
    """virsh runs several commands per process when they are separated by ';'."""
    for i in range(0, len(items), chunk):
        script = " ; ".join(f"{verb} {item}" for item in items[i : i + chunk])
        driver.host.virsh(script, check=verb == "define", timeout=600)
