"""Checks shared by the lifecycle integration tests: QEMU pids, run dirs, records vs processes.

qemu_pid(vk, "vm1")            the pid in $VMKIT_ROOT/run/dom/<id>/qemu.pid of a running domain
run_dirs(vk)                   the domain ids that have a run dir
marker_count(log)              how often the guest's boot marker is in a console log
assert_consistent(vk)          after a reconciling command: every runtime record has its live
                               QEMU and run dir, and no other QEMU of this root runs
"""

from __future__ import annotations

import time
from pathlib import Path

from vmkit_cli import VmkitEnv, all_pids_of

from vmkit.guest import BOOT_MARKER, PROMPT
from vmkit.qemu.process import process_state
from vmkit.state.paths import default_paths
from vmkit.state.store import Store


def run_dirs(vk: VmkitEnv) -> set[int]:
    base = vk.root / "run" / "dom"
    return {int(d.name) for d in base.iterdir()} if base.exists() else set()


def qemu_pid(vk: VmkitEnv, name: str) -> int:
    domid = vk.ok("domid", name).strip()
    assert domid.isdigit(), f"{name} is not running (domid {domid!r})"
    return int((vk.root / "run" / "dom" / domid / "qemu.pid").read_text().strip())


def log_of(vk: VmkitEnv, uuid: str) -> Path:
    return vk.root / "lib" / "log" / uuid / "console.log"


def marker_count(log: Path) -> int:
    return log.read_text(errors="replace").count(BOOT_MARKER) if log.exists() else 0


def wait_log(log: Path, pattern: str, *, count: int = 1, timeout: float = 60) -> str:
    """Wait for `pattern` in a console log without running vmkit (it may not be running)."""
    deadline = time.monotonic() + timeout
    text = ""
    while time.monotonic() < deadline:
        text = log.read_text(errors="replace") if log.exists() else ""
        if text.count(pattern) >= count:
            return text
        time.sleep(0.05)
    raise AssertionError(f"{pattern!r} x{count} not in {log}:\n{text[-2000:]}")


def wait_booted_log(log: Path, *, count: int = 1, timeout: float = 60) -> None:
    wait_log(log, BOOT_MARKER, count=count, timeout=timeout)
    wait_log(log, PROMPT, count=count, timeout=timeout)


def store_of(vk: VmkitEnv) -> Store:
    return Store.open(default_paths({"VMKIT_ROOT": str(vk.root)}))


def assert_consistent(vk: VmkitEnv) -> None:
    """Records and processes agree (call after a command that reconciles, e.g. `list --all`).

    Every runtime record is of a finished start (not `starting`), names a live QEMU whose pidfile
    is in the record's run dir; there is no other run dir and no other QEMU of this root.
    """
    with store_of(vk) as store:
        entries = store.domains()
    recorded: dict[int, int] = {}
    for entry in entries:
        rt = entry.runtime
        if rt is None:
            assert entry.definition.persistent, f"transient {entry.name} without a run"
            continue
        assert rt.state in ("running", "paused"), f"{entry.name}: stale record {rt}"
        assert rt.pid is not None and rt.pid_start is not None, rt
        assert process_state(rt.pid, rt.pid_start) == "running", f"{entry.name}: QEMU gone {rt}"
        pidfile = vk.root / "run" / "dom" / str(rt.domain_id) / "qemu.pid"
        assert int(pidfile.read_text().strip()) == rt.pid, f"{entry.name}: pidfile != record"
        recorded[rt.domain_id] = rt.pid
    assert sorted(all_pids_of(vk.root)) == sorted(recorded.values()), "orphan QEMU"
    assert run_dirs(vk) == set(recorded), "run dir without a record"
    rows = vk.json("list", "--all")
    running = {r["name"] for r in rows if r["id"] is not None}
    assert running == {e.name for e in entries if e.runtime is not None}
