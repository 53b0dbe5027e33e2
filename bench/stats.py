"""Pure numbers: the A B A B schedule, min/median/max, ratios of medians, target verdicts."""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from bench.model import Cell, Row, Status, TargetKind


@dataclass(frozen=True)
class Step:
    round: int  # 0-based, warm-up rounds first
    system: str
    counted: bool  # False for warm-up


def interleave(systems: Sequence[str], warmup: int, runs: int) -> list[Step]:
    """Warm-up rounds, then counted rounds; each round runs every system once, A B C A B C."""
    if warmup < 0 or runs < 0:
        raise ValueError("warmup and runs must be >= 0")
    steps = []
    for rnd in range(warmup + runs):
        for system in systems:
            steps.append(Step(rnd, system, rnd >= warmup))
    return steps


@dataclass(frozen=True)
class Summary:
    n: int
    min: float
    median: float
    max: float


def summarize(samples: Sequence[float]) -> Summary | None:
    """min / median / max of the counted samples; None when there are none."""
    if not samples:
        return None
    return Summary(len(samples), min(samples), statistics.median(samples), max(samples))


def median_of(cell: Cell | None) -> float | None:
    if cell is None or cell.status is not Status.OK:
        return None
    summary = summarize(cell.samples)
    return None if summary is None else summary.median


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    """numerator / denominator, None when either is missing or the denominator is 0."""
    if numerator is None or denominator is None or denominator == 0:
        return None
    return numerator / denominator


@dataclass(frozen=True)
class Verdict:
    status: str  # "PASS", "MISS" or "n/a"
    measured: float | None  # the value compared with the limit (ratio, seconds, bytes)
    reason: str = ""


def evaluate(
    row: Row, medians: Mapping[str, float | None], row_medians: Mapping[str, float | None]
) -> Verdict | None:
    """The verdict of `row`'s target from the medians of this row (by system) and of vmkit in
    the other rows (by row key, for DELTA_ROW). None when the row has no target."""
    target = row.target
    if target is None:
        return None
    mine = medians.get("vmkit")
    if mine is None:
        return Verdict("n/a", None, "no vmkit figure")
    measured: float | None
    if target.kind is TargetKind.MAXIMUM:
        measured = mine
    elif target.kind is TargetKind.RATIO:
        measured = ratio(mine, medians.get(target.against))
    elif target.kind is TargetKind.OVERHEAD:
        other = medians.get(target.against)
        measured = None if other is None else mine - other
    else:
        other = row_medians.get(target.against)
        measured = None if other is None else mine - other
    if measured is None:
        return Verdict("n/a", None, f"no {target.against} figure")
    ok = measured <= target.limit + 1e-12
    return Verdict("PASS" if ok else "MISS", measured)
