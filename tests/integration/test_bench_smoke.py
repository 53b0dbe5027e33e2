"""The benchmark suite itself works: `python -m bench --selftest --no-libvirt` runs its cheap rows
(1 warm-up + 2 runs) and writes a results.json that lists every row of issue 6, with numbers for
the rows it ran and a reason for the others. Timings are never asserted (the suite reports)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="the bench needs root"),
]

ROOT = Path(__file__).resolve().parents[2]
RAN = ("cli.list1", "cli.dominfo", "cli.dumpxml", "cli.define_undefine", "mem.idle")
EVERY = (
    "cli.list200",
    "life.boot",
    "life.destroy",
    "life.shutdown",
    "life.save",
    "life.restore",
    "scale.par",
    "mem.domain_qemu",
    "net.veth_pair",
    "store.vol_clone",
)


@pytest.mark.timeout(90)
def test_bench_selftest_writes_rows_and_numbers(tmp_path: Path) -> None:
    out = tmp_path / "results"
    before = set(Path("/tmp").glob("vb-*"))
    argv = [sys.executable, "-m", "bench", "--selftest", "--no-libvirt", "--out", str(out)]
    proc = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=80)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert "list --all (1 domain)" in proc.stdout  # the printed table
    assert (out / "table.txt").exists()
    data = json.loads((out / "results.json").read_text())
    assert data["meta"]["mode"] == "selftest"
    rows = {row["key"]: row for row in data["rows"]}
    for key in RAN + EVERY:
        assert key in rows, key
    for key in RAN:
        for system in ("floor", "vmkit"):
            cell = rows[key]["systems"][system]
            assert cell["status"] == "ok", (key, system, cell)
            assert cell["n"] == 2 and len(cell["warmup"]) == 1
            assert cell["min"] <= cell["median"] <= cell["max"]
        assert rows[key]["systems"]["libvirt"]["status"] == "not installed"
    assert rows["cli.list1"]["ratios"]["vmkit/floor"] > 0
    assert rows["cli.list1"]["verdict"]["status"] in ("PASS", "MISS")
    for key in EVERY:
        assert rows[key]["systems"]["vmkit"]["status"] == "skipped"
    chart = out / "chart.png"
    notes = " ".join(data["meta"]["notes"])
    assert chart.exists() or "matplotlib is not installed" in notes
    assert set(Path("/tmp").glob("vb-*")) <= before  # its temporary folder is removed
