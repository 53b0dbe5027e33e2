"""The idle manager's resident memory: vmkit (whatever it left running in its VMKIT_ROOT:
nothing by design), libvirt (libvirtd + virtlogd), floor (no manager: 0). Read with no domain
running, after the CLI rows have exercised both managers."""

from __future__ import annotations

import time
from collections.abc import Mapping

from bench import procs
from bench.model import Status
from bench.runner import Case
from bench.session import Session


class IdleMemoryCase(Case):
    name = "memory"
    rows = ("mem.idle",)

    def __init__(self, session: Session) -> None:
        self.session = session

    def unavailable(self, system: str) -> tuple[Status, str] | None:
        return self.session.system_problem(system)

    def run_once(self, system: str) -> Mapping[str, float]:
        time.sleep(0.1)
        if system == "floor":
            return {"mem.idle": 0.0}
        if system == "vmkit":
            assert self.session.vmkit is not None
            pids = self.session.vmkit.own_processes()
            return {"mem.idle": float(sum(procs.rss_bytes(p) for p in pids))}
        assert self.session.libvirt is not None
        return {"mem.idle": float(self.session.libvirt.daemon_rss())}
