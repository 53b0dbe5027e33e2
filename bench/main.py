"""`python -m bench`: options, the plan of each mode, running it, writing the results.

python -m bench                 every row, warm-up + 5 counted runs (10 for CLI rows)
python -m bench --quick         fewer runs, 3 domains in parallel (about 3 minutes)
python -m bench --selftest      1 warm-up + 2 runs of the cheap rows (CI smoke test)
--no-libvirt                    leave libvirt out ("not installed")
--out DIR                       results folder (default ./results/<timestamp>/)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import sys
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from bench import procs
from bench.chart import write_chart
from bench.model import SYSTEMS, RowResult, RunInfo, Status
from bench.report import table_lines, to_json
from bench.rows import ALL_ROWS
from bench.runner import Case, log_stderr, run_case
from bench.session import Options, Session

GROUPS = ("cli", "life", "scale", "mem", "net", "store")


@dataclass(frozen=True)
class Plan:
    """How many runs each group gets in a mode, and which groups run."""

    mode: str
    counts: dict[str, tuple[int, int]]  # group -> (warm-up runs, counted runs)
    groups: tuple[str, ...]
    scale_domains: int = 10
    scale_sequential: bool = True
    net_seconds: int = 3
    list_domains: int = 200


def make_plan(mode: str, runs: int | None, warmup: int | None, domains: int | None) -> Plan:
    """The plan of a mode; --runs/--warmup/--domains override it for every group."""
    if mode == "selftest":
        plan = Plan(mode, dict.fromkeys(GROUPS, (1, 2)), ("cli", "mem"), 2, False, 1)
    elif mode == "quick":
        counts = {"cli": (1, 3), "mem": (1, 3), "store": (1, 3)}
        counts.update({"life": (0, 2), "scale": (0, 2), "net": (0, 2)})
        plan = Plan(mode, counts, GROUPS, 3, False, 1)
    else:
        counts = dict.fromkeys(GROUPS, (1, 5))
        counts["cli"] = (2, 10)
        plan = Plan(mode, counts, GROUPS)
    counts = {
        group: (w if warmup is None else warmup, r if runs is None else runs)
        for group, (w, r) in plan.counts.items()
    }
    return replace(
        plan, counts=counts, scale_domains=plan.scale_domains if domains is None else domains
    )


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


def build_cases(session: Session, plan: Plan, groups: set[str]) -> list[tuple[Case, str]]:
    """(case, its group) in the order they run."""
    from bench.cases.cli import CliCase, ListManyCase
    from bench.cases.lifecycle import LifecycleCase
    from bench.cases.memory import IdleMemoryCase
    from bench.cases.network import NetworkCase
    from bench.cases.scale import ScaleCase
    from bench.cases.storage import StorageCase

    cases: list[tuple[Case, str]] = []
    if "cli" in groups:
        cases.append((CliCase(session), "cli"))
        if plan.mode != "selftest":
            cases.append((ListManyCase(session, plan.list_domains), "cli"))
    if "mem" in groups:
        cases.append((IdleMemoryCase(session), "mem"))
    if "life" in groups:
        cases.append((LifecycleCase(session), "life"))
    if "scale" in groups:
        cases.append((ScaleCase(session, plan.scale_domains, plan.scale_sequential), "scale"))
    if "store" in groups:
        cases.append((StorageCase(session), "store"))
    if "net" in groups:
        cases.append((NetworkCase(session, seconds=plan.net_seconds), "net"))
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


def _first_line(argv: list[str]) -> str:
    try:
        result = procs.run(argv, check=False, timeout=20)
    except (OSError, procs.CommandFailed):
        return "not installed"
    lines = (result.stdout or result.stderr).strip().splitlines()
    return lines[0] if lines else "?"


def host_facts() -> dict[str, str]:
    """What the figures depend on: versions, CPUs, load (these machines are shared and noisy)."""
    repo = Path(__file__).resolve().parent.parent
    return {
        "python": platform.python_version(),
        "kernel": platform.release(),
        "cpus": str(os.cpu_count()),
        "accel": "tcg" if not Path("/sys/module/kvm_intel").exists() else "kvm?",
        "qemu": _first_line(["qemu-system-x86_64", "--version"]),
        "libvirt": _first_line(["libvirtd", "--version"]) if shutil.which("libvirtd") else "-",
        "vmkit_commit": _first_line(["git", "-C", str(repo), "rev-parse", "--short", "HEAD"]),
        "load_at_start": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }


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
    if args.out is None:  # ./results/ must never end up in a commit
        ignore = out.parent / ".gitignore"
        if not ignore.exists():
            ignore.write_text("*\n")
    started = datetime.now(UTC).isoformat(timespec="seconds")
    info = RunInfo(mode, {g: list(c) for g, c in plan.counts.items()}, started, host_facts())
    results = {row.key: RowResult(row) for row in ALL_ROWS}
    options = Options(
        mode=mode, libvirt=not args.no_libvirt, keep=args.keep, guest_cache=args.guest_dir
    )
    session = Session.open(options)
    signal.signal(signal.SIGTERM, _terminate)
    try:
        session.prepare(need_guest=bool(groups & {"cli", "life", "scale", "store"}))
        info.notes += session_notes(session, plan, groups)
        if groups & {"life", "scale"}:
            log_stderr("priming: one untimed start + destroy per system")
            session.prime()
        for case, group in build_cases(session, plan, groups):
            warmup, runs = plan.counts[group]
            run_case(case, results, SYSTEMS, warmup, runs)
    except KeyboardInterrupt:
        info.notes.append("interrupted: partial results")
        log_stderr("interrupted; writing partial results")
    finally:
        session.close()
        info.host["load_at_end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    mark_skipped(results, f"not part of this run ({mode}{', --only' if args.only else ''})")
    retitle_scale(results, plan.scale_domains)
    return write_results(out, info, list(results.values()))


def _terminate(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # runs the clean-up, then writes what was measured


def session_notes(session: Session, plan: Plan, groups: set[str]) -> list[str]:
    notes = [f"temporary folder kept: {session.root}"] if session.options.keep else []
    load = os.getloadavg()[0]
    if load > (os.cpu_count() or 1):
        notes.append(
            f"the machine is busy (load {load:.1f} on {os.cpu_count()} CPUs): absolute times are"
            " inflated; ratios between interleaved runs hold better"
        )
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
