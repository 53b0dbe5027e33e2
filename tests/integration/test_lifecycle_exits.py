"""A QEMU that stops while no vmkit runs: the next command tells why and honours on_crash."""

from __future__ import annotations

import os
import signal
import time

import pytest
from lifecycle_checks import assert_consistent, qemu_pid, run_dirs
from vmkit_cli import VmkitEnv, all_pids_of

from vmkit.qemu.process import read_stat

pytestmark = pytest.mark.integration


def wait_pid_dead(pid: int, timeout: float = 60) -> None:
    """Until `pid` is a zombie or gone (its exit is then visible to vmkit)."""
    deadline = time.monotonic() + timeout
    while (stat := read_stat(pid)) is not None and stat.state != "Z":
        assert time.monotonic() < deadline, f"pid {pid} still runs"
        time.sleep(0.02)


@pytest.mark.parametrize(
    ("machine", "on_reboot", "command"),
    [("microvm", None, "poweroff"), ("q35", "destroy", "reboot -f")],
    ids=["poweroff", "reboot-with-on_reboot-destroy"],  # -no-reboot: QEMU ends, no reset
)
def test_guest_that_stops_itself_is_shutdown(
    vk: VmkitEnv, machine: str, on_reboot: str | None, command: str
) -> None:
    vk.ok("define", str(vk.domain_xml("off", machine=machine, on_reboot=on_reboot)))
    vk.ok("start", "off")
    vk.wait_booted("off")
    pid = qemu_pid(vk, "off")
    r = vk.run("console", "off", input=f"{command}\n")
    assert r.returncode == 0, r.stderr
    wait_pid_dead(pid)
    assert run_dirs(vk) != set(), "nothing is cleaned up before a command runs"
    assert vk.ok("domstate", "--reason", "off") == "shut off (shutdown)\n\n"
    assert run_dirs(vk) == set()
    assert_consistent(vk)


def test_kill9_is_crashed_also_after_reboot(vk: VmkitEnv) -> None:
    vk.ok("define", str(vk.domain_xml("k9")))
    vk.ok("start", "k9")
    vk.wait_booted("k9")
    vk.ok("reboot", "k9")  # leaves a shutdown request in QEMU's log: it must not count
    vk.wait_booted("k9", count=2)
    pid = qemu_pid(vk, "k9")
    os.kill(pid, signal.SIGKILL)
    wait_pid_dead(pid)
    assert vk.ok("domstate", "--reason", "k9") == "shut off (crashed)\n\n"
    assert run_dirs(vk) == set()
    assert vk.ok("domid", "k9") == "-\n\n"
    assert_consistent(vk)
    vk.ok("start", "k9")  # usable again
    vk.ok("destroy", "k9")
    assert all_pids_of(vk.root) == []


def test_on_crash_restart(vk: VmkitEnv) -> None:
    vk.ok("define", str(vk.domain_xml("phoenix", machine="microvm", on_crash="restart")))
    vk.ok("start", "phoenix")
    vk.wait_booted("phoenix")
    pid = qemu_pid(vk, "phoenix")
    old_id = vk.ok("domid", "phoenix").strip()
    os.kill(pid, signal.SIGKILL)
    wait_pid_dead(pid)
    assert vk.ok("domstate", "--reason", "phoenix") == "running (booted)\n\n"
    new_pid = qemu_pid(vk, "phoenix")
    assert new_pid != pid
    assert vk.ok("domid", "phoenix").strip() != old_id
    vk.wait_booted("phoenix", count=2)
    assert vk.guest("phoenix", "echo again-$((2*4))") == "again-8"
    assert_consistent(vk)
    vk.ok("destroy", "phoenix")  # a destroy is no crash: it stays off
    assert vk.ok("domstate", "--reason", "phoenix") == "shut off (destroyed)\n\n"
    assert all_pids_of(vk.root) == []
