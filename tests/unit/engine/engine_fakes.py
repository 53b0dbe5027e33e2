"""Helpers shared by the engine unit tests that run domains against a fake QEMU monitor.

UUIDS                   the uuid of each test domain ("vm", "other")
domain_xml(name, ...)   a minimal domain definition with the given <devices> content
running_runtime(...)    a RUNNING DomainRuntime whose "QEMU" is this test process (alive)
patch_open_monitor(...) makes `module.open_monitor` yield a fake monitor
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

import pytest

from vmkit.engine import states
from vmkit.qemu.process import read_stat
from vmkit.state.records import DomainRuntime

UUIDS = {
    "vm": "3f0e3c52-2f6e-4d7b-9a4e-0c1d2e3f4a5b",
    "other": "9a1b2c3d-4e5f-4a6b-8c7d-0e1f2a3b4c5d",
}

M = TypeVar("M")


def domain_xml(name: str, devices: str = "", machine: str = "q35") -> str:
    return (
        f"<domain type='qemu'><name>{name}</name><uuid>{UUIDS[name]}</uuid>"
        f"<memory>131072</memory><os><type arch='x86_64' machine='{machine}'>hvm</type></os>"
        f"<devices>{devices}</devices></domain>"
    )


def running_runtime(
    name: str, xml: str, domain_id: int, extras: dict[str, Any] | None = None
) -> DomainRuntime:
    """The runtime of domain `name` started with `xml`; its QEMU pid is this test process."""
    me = read_stat(os.getpid())  # the "QEMU" is this test process: alive
    assert me is not None
    return DomainRuntime(
        uuid=UUIDS[name],
        domain_id=domain_id,
        state=states.DomainState.RUNNING,
        reason=states.BOOTED,
        pid=me.pid,
        pid_start=me.start_time,
        qmp_socket=Path("/nonexistent/qmp.sock"),
        live_xml=xml,
        extras=extras if extras is not None else {},
    )


def patch_open_monitor(monkeypatch: pytest.MonkeyPatch, module: ModuleType, fake: M) -> M:
    """Every `module.open_monitor(entry)` yields `fake` (for the rest of the test)."""

    @contextlib.contextmanager
    def open_fake(entry: Any) -> Iterator[M]:
        yield fake

    monkeypatch.setattr(module, "open_monitor", open_fake)
    return fake
