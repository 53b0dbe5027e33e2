"""A recording fake of net.realise.Host, for unit tests of the logic above it (no root needed).

It answers `view()` from a given HostView, records every call as (method, argument), returns
made-up dnsmasq pids, and raises OSError from the method named in `fail_on` (to test rollback).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vmkit.model.network import IPInterface
from vmkit.net.dnsmasq import DnsmasqFiles, DnsmasqProcess
from vmkit.net.links import HostView
from vmkit.net.nft import FirewallPlan
from vmkit.net.realise import AddBridge


@dataclass
class RecordingHost:
    """A Host that records calls, answers from `seen`, and fails in method `fail_on`."""

    seen: HostView = field(default_factory=HostView)
    calls: list[tuple[str, Any]] = field(default_factory=list)
    fail_on: str | None = None
    next_pid: int = 4242
    missing: set[str] = field(default_factory=set)  # links, tables, "dnsmasq" reported absent

    def _record(self, name: str, arg: Any = None) -> None:
        self.calls.append((name, arg))
        if name == self.fail_on:
            raise OSError(f"injected failure in {name}")

    def view(self) -> HostView:
        return self.seen

    def make_dir(self, path: Path) -> None:
        self._record("make_dir", path)

    def remove_dir(self, path: Path) -> None:
        self._record("remove_dir", path)

    def add_bridge(self, step: AddBridge) -> None:
        self._record("add_bridge", step.name)

    def delete_link(self, name: str) -> None:
        self._record("delete_link", name)

    def link_exists(self, name: str) -> bool:
        return name not in self.missing

    def add_address(self, dev: str, address: IPInterface) -> None:
        self._record("add_address", (dev, str(address)))

    def set_up(self, dev: str) -> None:
        self._record("set_up", dev)

    def apply_firewall(self, plan: FirewallPlan) -> None:
        self._record("apply_firewall", plan.table)

    def remove_firewall(self, table: str) -> None:
        self._record("remove_firewall", table)

    def table_exists(self, table: str) -> bool:
        return table not in self.missing

    def acquire_forwarding(self, user: str, keys: tuple[str, ...]) -> None:
        self._record("acquire_forwarding", keys)

    def release_forwarding(self, user: str, keys: tuple[str, ...]) -> None:
        self._record("release_forwarding", keys)

    def write_file(self, path: Path, text: str) -> None:
        self._record("write_file", path)

    def remove_file(self, path: Path) -> None:
        self._record("remove_file", path)

    def start_dnsmasq(self, files: DnsmasqFiles) -> DnsmasqProcess:
        self._record("start_dnsmasq", files.conf)
        return DnsmasqProcess(self.next_pid, 1)

    def stop_dnsmasq(self, proc: DnsmasqProcess, files: DnsmasqFiles) -> None:
        self._record("stop_dnsmasq", proc.pid)

    def dnsmasq_running(self, proc: DnsmasqProcess, files: DnsmasqFiles) -> bool:
        return "dnsmasq" not in self.missing
