"""pytest fixtures of the host layer's unit tests (data helpers live in hostdata.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hostdata import FakeHelpRunner

from vmkit.host.qemu_info import QemuInfo, query_qemu


@pytest.fixture
def qemu_info() -> QemuInfo:
    """QemuInfo parsed from Debian 12's QEMU 7.2 help text (no QEMU is run)."""
    return query_qemu(Path("/usr/bin/qemu-system-x86_64"), FakeHelpRunner())
