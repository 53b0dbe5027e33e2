"""bench.stats: the interleaved schedule, summaries, ratios and target verdicts."""

from __future__ import annotations

import pytest
from bench.model import Cell, Row, Status, Target, TargetKind, Unit
from bench.stats import Step, evaluate, interleave, median_of, ratio, summarize


def test_interleave_runs_warmup_rounds_first_then_alternates_systems() -> None:
    steps = interleave(["floor", "vmkit", "libvirt"], warmup=1, runs=2)
    assert [(s.round, s.system, s.counted) for s in steps] == [
        (0, "floor", False),
        (0, "vmkit", False),
        (0, "libvirt", False),
        (1, "floor", True),
        (1, "vmkit", True),
        (1, "libvirt", True),
        (2, "floor", True),
        (2, "vmkit", True),
        (2, "libvirt", True),
    ]


def test_interleave_counts() -> None:
    steps = interleave(["a", "b"], warmup=2, runs=5)
    assert sum(s.counted for s in steps) == 10
    assert sum(not s.counted for s in steps) == 4
    assert steps[0] == Step(0, "a", False)


def test_interleave_without_systems_or_rounds_is_empty() -> None:
    assert interleave([], 1, 5) == []
    assert interleave(["a"], 0, 0) == []


def test_interleave_rejects_negative_counts() -> None:
    with pytest.raises(ValueError):
        interleave(["a"], -1, 5)


def test_summarize_min_median_max() -> None:
    summary = summarize([3.0, 1.0, 2.0, 10.0])
    assert summary is not None
    assert (summary.n, summary.min, summary.median, summary.max) == (4, 1.0, 2.5, 10.0)
    assert summarize([]) is None


def test_median_of_only_ok_cells() -> None:
    cell = Cell()
    cell.add(1.0, counted=False)
    assert median_of(cell) is None  # warm-up only
    cell.add(4.0, counted=True)
    cell.add(2.0, counted=True)
    assert median_of(cell) == 3.0
    assert median_of(Cell(Status.NOT_INSTALLED)) is None
    assert median_of(None) is None


def test_ratio_handles_missing_and_zero() -> None:
    assert ratio(2.0, 4.0) == 0.5
    assert ratio(None, 4.0) is None
    assert ratio(2.0, None) is None
    assert ratio(2.0, 0.0) is None
    assert ratio(0.0, 2.0) == 0.0


def _row(kind: TargetKind, limit: float, against: str) -> Row:
    return Row("k", "t", Unit.SECONDS, "floor", "g", Target(kind, limit, against, "text"))


def _status(row: Row, medians: dict[str, float | None], rows: dict[str, float | None]) -> str:
    verdict = evaluate(row, medians, rows)
    assert verdict is not None
    return verdict.status


def test_evaluate_ratio() -> None:
    row = _row(TargetKind.RATIO, 0.5, "libvirt")
    assert _status(row, {"vmkit": 0.1, "libvirt": 0.25}, {}) == "PASS"
    verdict = evaluate(row, {"vmkit": 0.2, "libvirt": 0.25}, {})
    assert verdict is not None and verdict.status == "MISS"
    assert verdict.measured == pytest.approx(0.8)


def test_evaluate_overhead() -> None:
    row = _row(TargetKind.OVERHEAD, 0.050, "floor")
    verdict = evaluate(row, {"vmkit": 2.34, "floor": 2.30}, {})
    assert verdict is not None and verdict.status == "PASS"
    assert verdict.measured == pytest.approx(0.04)
    assert _status(row, {"vmkit": 2.40, "floor": 2.30}, {}) == "MISS"


def test_evaluate_delta_between_rows() -> None:
    row = _row(TargetKind.DELTA_ROW, 0.010, "cli.list1")
    assert _status(row, {"vmkit": 0.065}, {"cli.list1": 0.060}) == "PASS"
    assert _status(row, {"vmkit": 0.080}, {"cli.list1": 0.060}) == "MISS"


def test_evaluate_maximum() -> None:
    row = _row(TargetKind.MAXIMUM, 0.0, "")
    assert _status(row, {"vmkit": 0.0}, {}) == "PASS"
    assert _status(row, {"vmkit": 4096.0}, {}) == "MISS"


def test_evaluate_without_figures_is_not_applicable() -> None:
    row = _row(TargetKind.RATIO, 1.1, "libvirt")
    assert _status(row, {"vmkit": None, "libvirt": 1.0}, {}) == "n/a"
    assert _status(row, {"vmkit": 1.0, "libvirt": None}, {}) == "n/a"
    plain = Row("k", "t", Unit.SECONDS, "floor", "g")
    assert evaluate(plain, {"vmkit": 1.0}, {}) is None


def test_cell_keeps_samples_when_a_later_run_fails() -> None:
    cell = Cell()
    cell.add(1.0, counted=True)
    cell.fail("boom")
    assert cell.status is Status.OK and cell.note == "boom"
    empty = Cell()
    empty.fail("boom")
    empty.fail("again")
    assert empty.status is Status.ERROR and empty.note == "boom; again"
