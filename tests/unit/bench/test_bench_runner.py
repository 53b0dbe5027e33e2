"""bench.runner with a fake case: interleaving, warm-up, failures, statuses, clean-up."""

from __future__ import annotations

from collections.abc import Mapping

from bench.model import SYSTEMS, Row, RowResult, Status, Unit
from bench.runner import MAX_FAILURES, Case, run_case

ROWS = (Row("t.a", "a", Unit.SECONDS, "floor", "g"), Row("t.b", "b", Unit.SECONDS, "floor", "g"))


class FakeCase(Case):
    name = "fake"
    rows = ("t.a", "t.b")

    def __init__(self, fail: dict[str, int] | None = None) -> None:
        self.calls: list[str] = []
        self.fail = fail or {}
        self.torn_down: list[str] = []
        self.recovered: list[str] = []
        self.value = 0.0

    def unavailable(self, system: str) -> tuple[Status, str] | None:
        if system == "libvirt":
            return (Status.NOT_INSTALLED, "not installed (--no-libvirt)")
        return None

    def row_status(self, system: str) -> dict[str, tuple[Status, str]]:
        return {"t.b": (Status.NOT_AVAILABLE, "no b")} if system == "vmkit" else {}

    def run_once(self, system: str) -> Mapping[str, float]:
        self.calls.append(system)
        if self.fail.get(system, 0) > 0:
            self.fail[system] -= 1
            raise RuntimeError(f"{system} broke")
        self.value += 1
        values = {"t.a": self.value}
        if system != "vmkit":
            values["t.b"] = self.value * 10
        return values

    def recover(self, system: str) -> None:
        self.recovered.append(system)

    def teardown(self, system: str) -> None:
        self.torn_down.append(system)


def _results() -> dict[str, RowResult]:
    return {row.key: RowResult(row) for row in ROWS}


def _quiet(message: str) -> None:
    pass


def test_runs_interleaved_with_warmup_apart() -> None:
    case = FakeCase()
    results = _results()
    run_case(case, results, SYSTEMS, warmup=1, runs=2, log=_quiet)
    assert case.calls == ["floor", "vmkit"] * 3
    floor = results["t.a"].cells["floor"]
    assert floor.warmup == [1.0] and floor.samples == [3.0, 5.0]
    assert results["t.a"].cells["vmkit"].samples == [4.0, 6.0]
    assert results["t.b"].cells["floor"].samples == [30.0, 50.0]
    assert case.torn_down == ["floor", "vmkit"]


def test_unavailable_system_and_rows_get_their_status() -> None:
    results = _results()
    run_case(FakeCase(), results, SYSTEMS, warmup=0, runs=1, log=_quiet)
    libvirt = results["t.a"].cells["libvirt"]
    assert libvirt.status is Status.NOT_INSTALLED and libvirt.note.startswith("not installed")
    b = results["t.b"].cells["vmkit"]
    assert b.status is Status.NOT_AVAILABLE and b.note == "no b" and b.samples == []


def test_a_failed_iteration_is_noted_and_recovered_then_the_system_continues() -> None:
    case = FakeCase(fail={"vmkit": 1})
    results = _results()
    run_case(case, results, SYSTEMS, warmup=0, runs=3, log=_quiet)
    cell = results["t.a"].cells["vmkit"]
    assert len(cell.samples) == 2 and cell.status is Status.OK
    assert "vmkit broke" in cell.note
    assert case.recovered == ["vmkit"]


def test_a_system_that_keeps_failing_is_dropped() -> None:
    case = FakeCase(fail={"vmkit": 100})
    results = _results()
    run_case(case, results, SYSTEMS, warmup=1, runs=5, log=_quiet)
    assert case.calls.count("vmkit") == MAX_FAILURES
    assert case.calls.count("floor") == 6
    assert results["t.a"].cells["vmkit"].status is Status.ERROR
    assert "vmkit" in case.torn_down


def test_a_failed_setup_marks_the_system_and_skips_it() -> None:
    class BadSetup(FakeCase):
        def setup(self, system: str) -> None:
            if system == "vmkit":
                raise OSError("no vmkit")

    case = BadSetup()
    results = _results()
    run_case(case, results, SYSTEMS, warmup=0, runs=2, log=_quiet)
    assert "vmkit" not in case.calls
    cell = results["t.a"].cells["vmkit"]
    assert cell.status is Status.ERROR and "setup failed" in cell.note
