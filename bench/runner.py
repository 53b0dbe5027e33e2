"""Running a case: set up each system, run the interleaved schedule, record samples and errors.

A case measures one or more rows per iteration (one boot yields "start", "boot", "suspend +
resume", ...). The runner never lets a failure of one system stop the others: a failed
iteration is noted in the cells, the case's `recover` cleans up, and a system that fails
`MAX_FAILURES` times is dropped from the rest of the schedule.
"""

from __future__ import annotations

import os
import sys
import time
import traceback
from collections.abc import Callable, Mapping

from bench.model import RowResult, Status
from bench.stats import interleave

MAX_FAILURES = 2

Log = Callable[[str], None]


_T0 = time.monotonic()


def log_stderr(message: str) -> None:
    print(f"bench [{time.monotonic() - _T0:6.1f}s] {message}", file=sys.stderr, flush=True)


class Case:
    """Base of the cases; subclasses set `name`, `rows` and override the hooks."""

    name = "case"
    rows: tuple[str, ...] = ()

    def unavailable(self, system: str) -> tuple[Status, str] | None:
        """Why `system` cannot take part (status, note), or None."""
        return None

    def row_status(self, system: str) -> dict[str, tuple[Status, str]]:
        """Rows this case cannot measure on `system` although the system takes part (a command
        vmkit does not have yet): row key -> (status, note). Asked after `setup`."""
        return {}

    def setup(self, system: str) -> None:
        """Untimed preparation of one system (define domains, ...)."""

    def run_once(self, system: str) -> Mapping[str, float]:
        """One iteration on `system`: the measured value of each row it covers."""
        raise NotImplementedError

    def recover(self, system: str) -> None:
        """Clean up after a failed iteration (destroy what it left running)."""

    def teardown(self, system: str) -> None:
        """Untimed clean-up of one system after the schedule."""


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    first = text[-1] if text else ""
    return f"{type(exc).__name__}: {first}"[:300]


def run_case(
    case: Case,
    results: Mapping[str, RowResult],
    systems: tuple[str, ...],
    warmup: int,
    runs: int,
    log: Log = log_stderr,
) -> None:
    """Run `case` on every available system of `systems`, interleaved, into `results`."""
    ready = _set_up(case, results, systems, log)
    failures = dict.fromkeys(ready, 0)
    try:
        for step in interleave(ready, warmup, runs):
            if failures[step.system] >= MAX_FAILURES:
                continue
            kind = "run" if step.counted else "warm-up"
            log(f"{case.name}: {step.system} {kind} (round {step.round + 1}/{warmup + runs})")
            if not _run_step(case, results, step.system, step.counted, log):
                failures[step.system] += 1
    finally:
        for system in ready:
            _safe(case.teardown, system, log)


def _set_up(
    case: Case, results: Mapping[str, RowResult], systems: tuple[str, ...], log: Log
) -> list[str]:
    """Record why systems cannot take part; set up the others; the systems that are ready."""
    ready: list[str] = []
    for system in systems:
        why = case.unavailable(system)
        if why is not None:
            for key in case.rows:
                cell = results[key].cells[system]
                cell.status, cell.note = why
            continue
        try:
            log(f"{case.name}: setting up {system}")
            case.setup(system)
        except Exception as exc:
            log(f"{case.name}: {system} setup failed: {_short(exc)}")
            _fail(case, results, system, f"setup failed: {_short(exc)}")
            _safe(case.teardown, system, log)
            continue
        ready.append(system)
        for key, (status, note) in case.row_status(system).items():
            results[key].cells[system].status = status
            results[key].cells[system].note = note
    return ready


def _run_step(
    case: Case, results: Mapping[str, RowResult], system: str, counted: bool, log: Log
) -> bool:
    """One iteration; its values go into the cells. False (noted, recovered) when it failed."""
    started = time.monotonic()
    try:
        values = case.run_once(system)
    except Exception as exc:
        log(f"{case.name}: {system} failed: {_short(exc)}")
        if "BENCH_TRACEBACK" in os.environ:
            traceback.print_exc()
        _fail(case, results, system, _short(exc))
        _safe(case.recover, system, log)
        return False
    for key, value in values.items():
        results[key].cells[system].add(value, counted)
    log(f"{case.name}: {system} done in {time.monotonic() - started:.1f} s")
    return True


def _fail(case: Case, results: Mapping[str, RowResult], system: str, message: str) -> None:
    for key in case.rows:
        results[key].cells[system].fail(message)


def _safe(hook: Callable[[str], None], system: str, log: Log) -> None:
    try:
        hook(system)
    except Exception as exc:
        log(f"clean-up on {system} failed: {_short(exc)}")
