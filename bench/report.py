"""The results as a printed table and as JSON. Pure: strings and dicts in, strings and dicts out."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from bench.model import SYSTEMS, Cell, RowResult, RunInfo, Status, TargetKind, Unit
from bench.stats import Verdict, evaluate, median_of, ratio, summarize


def format_value(value: float | None, unit: Unit, signed: bool = False) -> str:
    """12.3 ms, 2.31 s, 91.2 MiB, 13.4 Gbit/s; '-' for None."""
    if value is None:
        return "-"
    sign = "+" if signed and value >= 0 else ""
    if unit is Unit.SECONDS:
        if abs(value) < 1.0:
            return f"{sign}{value * 1000:.3g} ms"
        return f"{sign}{value:.3g} s"
    if unit is Unit.BYTES:
        if value == 0:
            return f"{sign}0"
        if abs(value) < 1024 * 1024:
            return f"{sign}{value / 1024:.3g} KiB"
        return f"{sign}{value / 1024 / 1024:.3g} MiB"
    return f"{sign}{value / 1e9:.3g} Gbit/s"


def format_ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def format_cell(cell: Cell, unit: Unit) -> str:
    """'median [min-max]' or the status ('not installed', 'error', ...)."""
    summary = summarize(cell.samples) if cell.status is Status.OK else None
    if summary is None:
        return cell.status.value
    if summary.min == summary.max:
        return format_value(summary.median, unit)
    low = format_value(summary.min, unit).split()[0]
    high = format_value(summary.max, unit).split()[0]
    return f"{format_value(summary.median, unit)} [{low}-{high}]"


def vmkit_medians(results: Sequence[RowResult]) -> dict[str, float | None]:
    return {r.row.key: median_of(r.cells["vmkit"]) for r in results}


def row_verdict(result: RowResult, by_row: dict[str, float | None]) -> Verdict | None:
    medians = {s: median_of(c) for s, c in result.cells.items()}
    return evaluate(result.row, medians, by_row)


def format_verdict(result: RowResult, verdict: Verdict | None) -> str:
    target = result.row.target
    if target is None or verdict is None:
        return ""
    if verdict.measured is None:
        return f"{target.text}: n/a"
    elif target.kind is TargetKind.RATIO:
        measured = format_ratio(verdict.measured)
    elif target.kind is TargetKind.MAXIMUM:
        measured = format_value(verdict.measured, result.row.unit)
    else:
        measured = format_value(verdict.measured, result.row.unit, signed=True)
    return f"{target.text}: {measured} {verdict.status}"


def ratios(result: RowResult) -> dict[str, float | None]:
    vmkit = median_of(result.cells["vmkit"])
    return {
        "vmkit/floor": ratio(vmkit, median_of(result.cells["floor"])),
        "vmkit/libvirt": ratio(vmkit, median_of(result.cells["libvirt"])),
    }


HEADER = ("row", "floor", "vmkit", "libvirt", "vmkit/floor", "vmkit/libvirt", "target", "floor is")


def table_lines(results: Sequence[RowResult]) -> list[str]:
    """The printed table: one line per row, grouped, then the notes (errors, reasons)."""
    by_row = vmkit_medians(results)
    body: list[tuple[str, ...]] = []
    groups: list[tuple[int, str]] = []
    for result in results:
        if not groups or groups[-1][1] != result.row.group:
            groups.append((len(body), result.row.group))
        r = ratios(result)
        verdict = row_verdict(result, by_row)
        body.append(
            (
                result.row.title,
                *(format_cell(result.cells[s], result.row.unit) for s in SYSTEMS),
                format_ratio(r["vmkit/floor"]),
                format_ratio(r["vmkit/libvirt"]),
                format_verdict(result, verdict),
                result.row.floor_label,
            )
        )
    widths = [max(len(line[i]) for line in [HEADER, *body]) for i in range(len(HEADER))]

    def fmt(cols: tuple[str, ...]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True)).rstrip()

    lines = [fmt(HEADER), "  ".join("-" * w for w in widths)]
    starts = dict(groups)
    for i, cols in enumerate(body):
        if i in starts:
            lines.append(f"[{starts[i]}]")
        lines.append(fmt(cols))
    notes = note_lines(results)
    if notes:
        lines += ["", "notes:", *notes]
    return lines


def note_lines(results: Sequence[RowResult]) -> list[str]:
    """One line per distinct note (errors, "not available yet", ...); skipped rows once."""
    seen: dict[str, list[str]] = {}
    skipped: set[str] = set()
    for result in results:
        for system, cell in result.cells.items():
            if cell.status is Status.SKIPPED and cell.note.startswith("not part of"):
                skipped.add(cell.note)
            elif cell.note:
                seen.setdefault(f"{system}: {cell.note}", []).append(result.row.key)
    lines = [f"  {_keys(keys)}: {text}" for text, keys in seen.items()]
    return lines + [f"  skipped rows: {note}" for note in sorted(skipped)]


def _keys(keys: list[str]) -> str:
    return ", ".join(keys) if len(keys) <= 4 else f"{', '.join(keys[:3])} (+{len(keys) - 3} rows)"


def cell_json(cell: Cell) -> dict[str, Any]:
    summary = summarize(cell.samples) if cell.status is Status.OK else None
    return {
        "status": cell.status.value,
        "note": cell.note,
        "n": 0 if summary is None else summary.n,
        "min": None if summary is None else summary.min,
        "median": None if summary is None else summary.median,
        "max": None if summary is None else summary.max,
        "samples": list(cell.samples),
        "warmup": list(cell.warmup),
    }


def to_json(info: RunInfo, results: Sequence[RowResult]) -> dict[str, Any]:
    by_row = vmkit_medians(results)
    rows = []
    for result in results:
        row = result.row
        verdict = row_verdict(result, by_row)
        target = row.target
        rows.append(
            {
                "key": row.key,
                "title": row.title,
                "group": row.group,
                "unit": row.unit.value,
                "floor_label": row.floor_label,
                "higher_is_better": row.higher_is_better,
                "target": None
                if target is None
                else {
                    "kind": target.kind.value,
                    "limit": target.limit,
                    "against": target.against,
                    "text": target.text,
                },
                "systems": {s: cell_json(result.cells[s]) for s in SYSTEMS},
                "ratios": ratios(result),
                "verdict": None if verdict is None else asdict(verdict),
            }
        )
    return {"meta": asdict(info), "rows": rows}
