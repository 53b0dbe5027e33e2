"""What each compared system does for the lifecycle and scale rows: one small interface.

    VmkitDriver   (bench.vmkit_side)  the vmkit CLI, one process per command, like a user
    LibvirtDriver (bench.libvirt)     virsh against the bench's private libvirtd
    BareDriver    (bench.bare)        the same QEMU argv by hand, QMP by hand (the floor)

Methods that the rows time do exactly the operation (a command, or QMP); everything else
(defining, cleaning up) is untimed preparation.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from bench.guest import Guest, wait_for_text


@dataclass
class Dom:
    """One domain of one system: its name, uuid and where its serial console is logged."""

    name: str
    uuid: str
    console_log: Path
    xml_path: Path


class Driver(Protocol):
    system: str
    guest: Guest

    def define(self, name: str) -> Dom: ...
    def undefine(self, dom: Dom) -> None: ...
    def console_offset(self, dom: Dom) -> int: ...
    def start(self, dom: Dom) -> None: ...
    def start_many(self, doms: list[Dom], parallel: bool) -> None: ...
    def destroy(self, dom: Dom) -> None: ...
    def shutdown(self, dom: Dom) -> None: ...
    def prepare_shutdown(self, dom: Dom) -> tuple[Callable[[], None], Callable[[], None]]: ...
    def suspend_resume(self, dom: Dom) -> None: ...
    def can(self, operation: str) -> bool: ...
    def save(self, dom: Dom, path: Path) -> None: ...
    def restore(self, dom: Dom, path: Path) -> None: ...
    def qemu_pid(self, dom: Dom) -> int | None: ...
    def extra_rss(self) -> int: ...
    def manager_rss(self) -> int: ...
    def force_off(self, dom: Dom) -> None: ...


BOOT_TIMEOUT = 120.0


def plain_shutdown(driver: Driver, dom: Dom) -> tuple[Callable[[], None], Callable[[], None]]:
    """prepare_shutdown of a driver that needs no preparation."""
    return (lambda: driver.shutdown(dom)), (lambda: None)


def wait_booted(driver: Driver, doms: list[Dom], offsets: list[int]) -> float:
    """perf_counter() when the boot marker has appeared on every domain's console."""
    logs = [(d.console_log, off) for d, off in zip(doms, offsets, strict=True)]
    return wait_for_text(logs, driver.guest.marker, BOOT_TIMEOUT)


def wait_prompt(driver: Driver, dom: Dom, offset: int) -> None:
    """Wait for the shell prompt (busybox init and acpid are up), then let the guest settle."""
    wait_for_text([(dom.console_log, offset)], driver.guest.prompt, BOOT_TIMEOUT)
    time.sleep(0.3)
