"""`python -m bench`: options, the plan of each mode, running it, writing the results.

python -m bench                 every row, warm-up + 5 counted runs (about 15-20 minutes)
python -m bench --quick         fewer runs, 4 domains in parallel (under 3 minutes)
python -m bench --selftest      1 warm-up + 2 runs of the cheap rows (CI smoke test)
--no-libvirt                    leave libvirt out ("not installed")
--out DIR                       results folder (default ./results/<timestamp>/)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from bench.chart import write_chart
from bench.model import SYSTEMS, RowResult, RunInfo, Status
from bench.report import table_lines, to_json
from bench.rows import ALL_ROWS
from bench.runner import Case, log_stderr, run_case
from bench.session import Options, Session

GROUPS = ("cli", "life", "scale", "mem", "net", "store")


@dataclass(frozen=True)
class Plan:
    """How many runs each kind of case gets in a mode, and which groups run."""

    mode: str
    warmup: int
    runs: int
    cli_warmup: int
    cli_runs: int
    heavy_warmup: int  # lifecycle
    heavy_runs: int
    scale_warmup: int
    scale_runs: int
    scale_domains: int
    scale_sequential: bool
    list_domains: int
    groups: tuple[str, ...]


def make_plan(mode: str, runs: int | None, warmup: int | None, domains: int | None) -> Plan:
    """The plan of a mode; --runs/--warmup/--domains override every case's counts."""
    if mode == "selftest":
        plan = Plan(mode, 1, 2, 1, 2, 1, 2, 0, 1, 2, False, 200, ("cli", "mem"))
    elif mode == "quick":
        plan = Plan(mode, 1, 3, 1, 3, 1, 2, 0, 2, 4, False, 200, GROUPS)
    else:
        plan = Plan(mode, 1, 5, 2, 10, 1, 5, 1, 5, 10, True, 200, GROUPS)
    if runs is not None or warmup is not None or domains is not None:
        w = plan.warmup if warmup is None else warmup
        r = plan.runs if runs is None else runs
        plan = Plan(
            plan.mode,
            w,
            r,
            w,
            r,
            w,
            r,
            w,
            r,
            plan.scale_domains if domains is None else domains,
            plan.scale_sequential,
            plan.list_domains,
            plan.groups,
        )
    return plan


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench",
        description="vmkit against bare QEMU and libvirt, side by side, as ratios (issue 6).",
    )
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="day-to-day run, under 3 minutes")
    mode.add_argument("--selftest", action="store_true", help="tiny run proving the harness works")
    p.add_argument("--no-libvirt", action="store_true", help="leave libvirt out")
    p.add_argument("--out", type=Path, help="results folder (default ./results/<timestamp>/)")
    p.add_argument("--only", help=f"comma-separated groups to run: {','.join(GROUPS)}")
    p.add_argument("--runs", type=int, help="counted runs per row (default 5; 10 for CLI rows)")
    p.add_argument("--warmup", type=int, help="warm-up runs per row (default 1)")
    p.add_argument("--domains", type=int, help="domains of the scale rows (default 10)")
    p.add_argument(
        "--guest-dir",
        type=Path,
        default=Path("/var/cache/vmkit-test-guest"),
        help="cache folder of the tiny guest (built there when missing)",
    )
    p.add_argument("--keep", action="store_true", help="keep the temporary folder (debugging)")
    return p.parse_args(argv)


def build_cases(session: Session, plan: Plan, groups: set[str]) -> list[tuple[Case, int, int]]:
    """(case, warm-up, runs) in the order they run."""
    from bench.cases.cli import CliCase, ListManyCase
    from bench.cases.lifecycle import LifecycleCase
    from bench.cases.memory import IdleMemoryCase
    from bench.cases.network import NetworkCase
    from bench.cases.scale import ScaleCase
    from bench.cases.storage import StorageCase

    cases: list[tuple[Case, int, int]] = []
    if "cli" in groups:
        cases.append((CliCase(session), plan.cli_warmup, plan.cli_runs))
        if plan.mode != "selftest":
            cases.append((ListManyCase(session, plan.list_domains), plan.cli_warmup, plan.cli_runs))
    if "mem" in groups:
        cases.append((IdleMemoryCase(session), plan.warmup, plan.runs))
    if "life" in groups:
        cases.append((LifecycleCase(session), plan.heavy_warmup, plan.heavy_runs))
    if "scale" in groups:
        scale = ScaleCase(session, plan.scale_domains, plan.scale_sequential)
        cases.append((scale, plan.scale_warmup, plan.scale_runs))
    if "store" in groups:
        cases.append((StorageCase(session), plan.warmup, plan.runs))
    if "net" in groups:
        quick = plan.mode != "full"
        cases.append((NetworkCase(session, seconds=1 if quick else 3), 0, plan.runs))
    return cases


def mark_skipped(results: dict[str, RowResult], note: str) -> None:
    for result in results.values():
        for cell in result.cells.values():
            if cell.status is Status.PENDING:
                cell.status = Status.SKIPPED
                cell.note = note


def retitle_scale(results: dict[str, RowResult], count: int) -> None:
    """The scale rows say how many domains they really started."""
    for key in ("scale.seq", "scale.par"):
        row = results[key].row
        results[key].row = replace(row, title=row.title.replace("10 ", f"{count} ", 1))


def default_out() -> Path:
    return Path("results") / datetime.now().strftime("%Y%m%d-%H%M%S")


def host_facts() -> dict[str, str]:
    facts = {"python": platform.python_version(), "kernel": platform.release()}
    facts["cpus"] = str(os.cpu_count())
    facts["kvm"] = "no (TCG)" if not Path("/sys/module/kvm_intel").exists() else "maybe"
    return facts


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    mode = "selftest" if args.selftest else "quick" if args.quick else "full"
    plan = make_plan(mode, args.runs, args.warmup, args.domains)
    groups = set(plan.groups)
    if args.only:
        wanted = {g.strip() for g in args.only.split(",") if g.strip()}
        unknown = wanted - set(GROUPS)
        if unknown:
            print(f"error: unknown group(s) {sorted(unknown)}; use {GROUPS}", file=sys.stderr)
            return 2
        groups &= wanted
    if os.geteuid() != 0:
        print("error: the bench needs root (QEMU, libvirt, namespaces)", file=sys.stderr)
        return 2
    out = (args.out or default_out()).absolute()
    out.mkdir(parents=True, exist_ok=True)
    started = datetime.now(UTC).isoformat(timespec="seconds")
    info = RunInfo(mode, plan.warmup, plan.runs, started, host_facts())
    results = {row.key: RowResult(row) for row in ALL_ROWS}
    options = Options(
        mode=mode, libvirt=not args.no_libvirt, keep=args.keep, guest_cache=args.guest_dir
    )
    session = Session.open(options)
    try:
        session.prepare(need_guest=bool(groups & {"cli", "life", "scale", "store"}))
        info.notes += session_notes(session, plan, groups)
        for case, warmup, runs in build_cases(session, plan, groups):
            run_case(case, results, SYSTEMS, warmup, runs)
    except KeyboardInterrupt:
        info.notes.append("interrupted: partial results")
        log_stderr("interrupted; writing partial results")
    finally:
        session.close()
    mark_skipped(results, f"not part of this run ({mode}{', --only' if args.only else ''})")
    retitle_scale(results, plan.scale_domains)
    return write_results(out, info, list(results.values()))


def session_notes(session: Session, plan: Plan, groups: set[str]) -> list[str]:
    notes = [f"temporary folder {session.root}"]
    if "scale" in groups and plan.scale_domains != 10:
        notes.append(f"scale rows use {plan.scale_domains} domains, not 10")
    if session.libvirt_status is not None:
        notes.append(f"libvirt: {session.libvirt_status[1]}")
    if session.vmkit_problem:
        notes.append(session.vmkit_problem)
    if session.guest_problem:
        notes.append(session.guest_problem)
    return notes


def write_results(out: Path, info: RunInfo, results: list[RowResult]) -> int:
    data = to_json(info, results)
    chart_note = write_chart(data, out / "chart.png")
    if chart_note:
        info.notes.append(chart_note)
        data["meta"]["notes"].append(chart_note)
    (out / "results.json").write_text(json.dumps(data, indent=2) + "\n")
    lines = table_lines(results)
    (out / "table.txt").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print()
    for note in info.notes:
        print(f"note: {note}")
    print(f"results: {out / 'results.json'}" + ("" if chart_note else f", {out / 'chart.png'}"))
    return 0
