"""nodeinfo.py: the numbers from the fake trees and virsh's exact layout."""

from __future__ import annotations

from pathlib import Path

import pytest
from hostdata import roots_of

from vmkit.host.nodeinfo import NodeInfo, format_nodeinfo, format_version, read_nodeinfo

REFERENCE = Path(__file__).resolve().parents[3].parent / "shared" / "reference" / "virsh"


def _virsh_output(name: str) -> str:
    """The command's output in a reference file: between the "$ cmd" line and "[exit N]"."""
    lines = (REFERENCE / name).read_text().splitlines(keepends=True)
    body = lines[1 : next(i for i, line in enumerate(lines) if line.startswith("[exit"))]
    return "".join(body)


def test_layout_matches_virsh_byte_for_byte() -> None:
    # virsh -c test:///default nodeinfo; virsh then prints one blank line after every command
    info = NodeInfo("i686", 16, 1400, 2, 2, 2, 2, 3145728)
    expected = (
        "CPU model:           i686\n"
        "CPU(s):              16\n"
        "CPU frequency:       1400 MHz\n"
        "CPU socket(s):       2\n"
        "Core(s) per socket:  2\n"
        "Thread(s) per core:  2\n"
        "NUMA cell(s):        2\n"
        "Memory size:         3145728 KiB\n"
    )
    assert format_nodeinfo(info) == expected
    if (REFERENCE / "nodeinfo.txt").exists():
        assert format_nodeinfo(info) + "\n" == _virsh_output("nodeinfo.txt")


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("pvm", NodeInfo("x86_64", 2, 2596, 1, 1, 2, 1, 24684096)),
        ("intel", NodeInfo("x86_64", 8, 2100, 2, 1, 2, 2, 65536000)),
        ("amd", NodeInfo("x86_64", 8, 3000, 1, 1, 4, 2, 131072000)),
        ("nokvm", NodeInfo("x86_64", 4, 2899, 1, 1, 2, 2, 8010000)),
    ],
)
def test_read_nodeinfo(case: str, expected: NodeInfo) -> None:
    assert read_nodeinfo(roots_of(case)) == expected


def test_version() -> None:
    assert format_version("0.1.0", "7.2.22") == (
        "Compiled against library: vmkit 0.1.0\n"
        "Using library: vmkit 0.1.0\n"
        "Using API: QEMU 0.1.0\n"
        "Running hypervisor: QEMU 7.2.22\n"
    )
    assert "Running hypervisor" not in format_version("0.1.0", None)
