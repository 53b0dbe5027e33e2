"""Data of the host layer's unit tests: fake /proc-/sys-/dev-/etc trees and QEMU help text.

tests/data/host/<case>/ holds the trees: pvm (our CI machine: PVM-only /dev/kvm), intel
(kvm_intel, 2 sockets x 2 cores x 2 threads, 2 NUMA cells), amd (kvm_amd, IOMMU off on the
kernel command line, no bridge module), nokvm (a cloud VM without nested virtualization);
tests/data/host/qemu-7.2/ holds what Debian 12's qemu-system-x86_64 prints for --version,
-machine/-cpu/-device/-accel help.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from vmkit.host.roots import HostRoots

DATA = Path(__file__).resolve().parents[2] / "data" / "host"
QEMU_TEXT = DATA / "qemu-7.2"
CASES = ("pvm", "intel", "amd", "nokvm")

_HELP_FILES = {
    "--version": "version.txt",
    "-machine": "machine-help.txt",
    "-cpu": "cpu-help.txt",
    "-device": "device-help.txt",
    "-accel": "accel-help.txt",
}


def roots_of(case: str) -> HostRoots:
    return HostRoots.under(DATA / case)


class FakeHelpRunner:
    """Answers QEMU help commands from the qemu-7.2 text files and records the calls."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def __call__(self, argvs: Sequence[Sequence[str]]) -> list[str]:
        self.calls.extend([list(a) for a in argvs])
        return [(QEMU_TEXT / _HELP_FILES[a[1]]).read_text() for a in argvs]


def golden(name: str, actual: str) -> None:
    """Compare with tests/data/host/golden/NAME; VMKIT_REGEN_GOLDEN=1 rewrites the file."""
    path = DATA / "golden" / name
    if os.environ.get("VMKIT_REGEN_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(actual)
    assert actual == path.read_text()
