"""Lifecycle rows on one domain per system, and the per-domain memory rows.

One iteration, on each system in turn:
  1. start -> boot marker (timed); at the prompt: QEMU RSS and the manager's per-domain
     processes; suspend + resume; save (+ file size) and restore; ACPI shutdown -> shut off;
  2. start (timed: the command returns), 0.5 s, destroy (timed).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

from bench import procs
from bench.driver import Dom, Driver, wait_booted, wait_prompt
from bench.model import Status
from bench.runner import Case
from bench.session import Session

SAVE_ROWS = ("life.save", "life.save_size", "life.restore")


def timed(action: Callable[[], None]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


class LifecycleCase(Case):
    name = "lifecycle"
    rows = (
        "life.boot",
        "life.start",
        "life.destroy",
        "life.start_destroy",
        "life.shutdown",
        "life.suspend_resume",
        *SAVE_ROWS,
        "mem.domain_qemu",
        "mem.domain_extra",
    )

    def __init__(self, session: Session) -> None:
        self.session = session
        self.doms: dict[str, Dom] = {}

    def unavailable(self, system: str) -> tuple[Status, str] | None:
        problem = self.session.system_problem(system)
        if problem is None and system not in self.session.drivers:
            problem = (Status.ERROR, self.session.guest_problem or "no driver")
        return problem

    def row_status(self, system: str) -> dict[str, tuple[Status, str]]:
        driver = self.session.drivers[system]
        if driver.can("save") and driver.can("restore"):
            return {}
        note = "not available yet (no 'save'/'restore' command)"
        return dict.fromkeys(SAVE_ROWS, (Status.NOT_AVAILABLE, note))

    def setup(self, system: str) -> None:
        self.doms[system] = self.session.drivers[system].define("life0")

    def run_once(self, system: str) -> Mapping[str, float]:
        driver = self.session.drivers[system]
        dom = self.doms[system]
        values = self._boot_and_operate(driver, dom)
        start = timed(lambda: driver.start(dom))
        let_run(driver, dom)
        destroy = timed(lambda: driver.destroy(dom))
        values.update(
            {"life.start": start, "life.destroy": destroy, "life.start_destroy": start + destroy}
        )
        return values

    def _boot_and_operate(self, driver: Driver, dom: Dom) -> dict[str, float]:
        values: dict[str, float] = {}
        offset = driver.console_offset(dom)
        begin = time.perf_counter()
        driver.start(dom)
        values["life.boot"] = wait_booted(driver, [dom], [offset]) - begin
        wait_prompt(driver, dom, offset)
        pid = driver.qemu_pid(dom)
        if pid is None:
            raise RuntimeError("no QEMU process found for the running domain")
        values["mem.domain_qemu"] = procs.rss_bytes(pid)
        values["mem.domain_extra"] = driver.extra_rss()
        values["life.suspend_resume"] = timed(lambda: driver.suspend_resume(dom))
        if driver.can("save") and driver.can("restore"):
            path = self.session.root / f"{driver.system}.save"
            path.unlink(missing_ok=True)
            values["life.save"] = timed(lambda: driver.save(dom, path))
            values["life.save_size"] = path.stat().st_size
            values["life.restore"] = timed(lambda: driver.restore(dom, path))
            path.unlink()
            time.sleep(0.5)
        action, cleanup = driver.prepare_shutdown(dom)
        try:
            values["life.shutdown"] = timed(action)
        finally:
            cleanup()
        return values

    def recover(self, system: str) -> None:
        if system in self.doms:
            self.session.drivers[system].force_off(self.doms[system])
        (self.session.root / f"{system}.save").unlink(missing_ok=True)

    def teardown(self, system: str) -> None:
        dom = self.doms.pop(system, None)
        if dom is not None:
            driver = self.session.drivers[system]
            driver.force_off(dom)
            driver.undefine(dom)


def let_run(driver: Driver, dom: Dom) -> None:
    """Before the timed destroy: let the just-started QEMU run guest code for 0.5 s."""
    time.sleep(0.5)
    if driver.qemu_pid(dom) is None:
        raise RuntimeError("the domain is not running before destroy")
