"""N domains (10 by default) started one after another, and all at once, until all booted.

"One after another": each start command returns before the next is issued; the clock stops
when the boot marker is on every console. "In parallel": all start commands are issued at once.
Domains are stopped (untimed) between the two measurements.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from bench.driver import Dom, Driver, wait_booted
from bench.model import Status
from bench.runner import Case
from bench.session import Session


class ScaleCase(Case):
    name = "scale"

    def __init__(self, session: Session, count: int, sequential: bool = True) -> None:
        self.session = session
        self.count = count
        self.sequential = sequential
        self.rows = ("scale.seq", "scale.par") if sequential else ("scale.par",)
        self.doms: dict[str, list[Dom]] = {}

    def unavailable(self, system: str) -> tuple[Status, str] | None:
        problem = self.session.system_problem(system)
        if problem is None and system not in self.session.drivers:
            problem = (Status.ERROR, self.session.guest_problem or "no driver")
        return problem

    def setup(self, system: str) -> None:
        driver = self.session.drivers[system]
        self.doms[system] = [driver.define(f"many{i}") for i in range(self.count)]

    def run_once(self, system: str) -> Mapping[str, float]:
        driver = self.session.drivers[system]
        doms = self.doms[system]
        values = {}
        if self.sequential:
            values["scale.seq"] = self._all_booted(driver, doms, parallel=False)
        values["scale.par"] = self._all_booted(driver, doms, parallel=True)
        return values

    def _all_booted(self, driver: Driver, doms: list[Dom], parallel: bool) -> float:
        offsets = [driver.console_offset(d) for d in doms]
        begin = time.perf_counter()
        driver.start_many(doms, parallel=parallel)
        elapsed = wait_booted(driver, doms, offsets) - begin
        self._stop_all(driver, doms)
        return elapsed

    def _stop_all(self, driver: Driver, doms: list[Dom]) -> None:
        for dom in doms:
            driver.force_off(dom)

    def recover(self, system: str) -> None:
        self._stop_all(self.session.drivers[system], self.doms.get(system, []))

    def teardown(self, system: str) -> None:
        driver = self.session.drivers[system]
        for dom in self.doms.pop(system, []):
            driver.force_off(dom)
            driver.undefine(dom)
