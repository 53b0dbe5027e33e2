"""bench.report: value formatting, the printed table and the JSON document."""

from __future__ import annotations

import json

from bench.chart import chart_points
from bench.model import SYSTEMS, Cell, RowResult, RunInfo, Status, Unit
from bench.report import format_cell, format_value, table_lines, to_json
from bench.rows import ALL_ROWS, BY_KEY


def _filled(key: str, **medians: list[float]) -> RowResult:
    result = RowResult(BY_KEY[key])
    for system, samples in medians.items():
        for value in samples:
            result.cells[system].add(value, counted=True)
    return result


def test_format_value_units() -> None:
    assert format_value(0.0123, Unit.SECONDS) == "12.3 ms"
    assert format_value(2.345, Unit.SECONDS) == "2.35 s"
    assert format_value(0.004, Unit.SECONDS, signed=True) == "+4 ms"
    assert format_value(91.5 * 1024 * 1024, Unit.BYTES) == "91.5 MiB"
    assert format_value(0, Unit.BYTES) == "0"
    assert format_value(2048, Unit.BYTES) == "2 KiB"
    assert format_value(13.4e9, Unit.BITS_PER_SECOND) == "13.4 Gbit/s"
    assert format_value(None, Unit.SECONDS) == "-"


def test_format_cell_shows_median_and_range_or_status() -> None:
    cell = Cell()
    for value in (0.010, 0.012, 0.020):
        cell.add(value, counted=True)
    assert format_cell(cell, Unit.SECONDS) == "12 ms [10-20]"
    assert format_cell(Cell(Status.NOT_INSTALLED), Unit.SECONDS) == "not installed"
    assert format_cell(Cell(Status.NOT_AVAILABLE), Unit.SECONDS) == "not available"


def test_table_has_every_row_ratios_and_verdicts() -> None:
    results = [RowResult(row) for row in ALL_ROWS]
    results[0] = _filled("cli.list1", floor=[0.010, 0.011], vmkit=[0.030, 0.031], libvirt=[0.02])
    results[0].cells["libvirt"].status = Status.OK
    lines = table_lines(results)
    text = "\n".join(lines)
    for row in ALL_ROWS:
        assert row.title in text
    assert "[CLI latency]" in text and "[lifecycle]" in text
    first = next(line for line in lines if line.startswith("list --all (1 domain)"))
    assert "2.90x" in first  # 30.5 ms / 10.5 ms
    assert "1.52x" in first  # 30.5 ms / 20 ms
    assert "<= +25 ms: +20 ms PASS" in first


def test_table_notes_are_grouped_once() -> None:
    results = [RowResult(BY_KEY["life.save"]), RowResult(BY_KEY["life.restore"])]
    for result in results:
        result.cells["vmkit"] = Cell(Status.NOT_AVAILABLE, note="not available yet (no save)")
        result.cells["floor"] = Cell(Status.SKIPPED, note="not part of this run (selftest)")
    text = "\n".join(table_lines(results))
    assert text.count("not available yet (no save)") == 1
    assert "life.save, life.restore: vmkit: not available yet (no save)" in text
    assert "skipped rows: not part of this run (selftest)" in text


def test_json_lists_all_rows_with_systems_ratios_and_verdict() -> None:
    results = [RowResult(row) for row in ALL_ROWS]
    results[0] = _filled("cli.list1", floor=[0.01, 0.01], vmkit=[0.02, 0.04])
    info = RunInfo("selftest", {"cli": [1, 2]}, "2026-01-01T00:00:00+00:00")
    data = json.loads(json.dumps(to_json(info, results)))  # JSON-able
    assert data["meta"]["mode"] == "selftest"
    assert [r["key"] for r in data["rows"]] == [row.key for row in ALL_ROWS]
    first = data["rows"][0]
    assert set(first["systems"]) == set(SYSTEMS)
    vmkit = first["systems"]["vmkit"]
    assert (vmkit["status"], vmkit["n"], vmkit["min"], vmkit["median"], vmkit["max"]) == (
        "ok",
        2,
        0.02,
        0.03,
        0.04,
    )
    assert first["ratios"]["vmkit/floor"] == 3.0
    assert first["ratios"]["vmkit/libvirt"] is None
    assert first["verdict"]["status"] == "PASS"
    assert first["target"]["kind"] == "overhead"
    assert data["rows"][1]["systems"]["vmkit"]["status"] == "pending"


def test_chart_points_skip_rows_without_ratios_and_carry_ratio_targets() -> None:
    results = [RowResult(row) for row in ALL_ROWS]
    results[0] = _filled("cli.list1", floor=[0.01], vmkit=[0.02])
    destroy = ALL_ROWS.index(BY_KEY["life.destroy"])
    results[destroy] = _filled("life.destroy", vmkit=[0.1], libvirt=[0.25])
    results[destroy].cells["libvirt"].status = Status.OK
    data = to_json(RunInfo("quick", {"cli": [1, 3]}, "now"), results)
    points = chart_points(data["rows"])
    assert [p[0] for p in points] == ["list --all (1 domain)", "destroy"]
    assert points[1][2] == 0.4
    assert points[1][3:] == (0.5, "libvirt")
