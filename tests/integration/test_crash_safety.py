"""kill -9 of a vmkit command at every fault step (engine/faults.py): the next command repairs.

Each case runs one command with VMKIT_FAULT=<step> (it dies by SIGKILL at that step), checks what
is left while no vmkit runs (a QEMU keeps running), runs one reconciling command and then checks
that records and processes agree (no orphan QEMU, no stale runtime record, no half-defined
domain) and that the domain is usable.
"""

from __future__ import annotations

import signal

import pytest
from lifecycle_checks import assert_consistent, log_of, qemu_pid, wait_booted_log
from vmkit_cli import VmkitEnv, all_pids_of

from vmkit.engine.faults import STEPS

pytestmark = pytest.mark.integration

NAME = "fault"


def die_at(vk: VmkitEnv, step: str, *args: str) -> None:
    r = vk.run(*args, extra_env={"VMKIT_FAULT": step})
    assert r.returncode == -signal.SIGKILL, f"{args} at {step}: rc {r.returncode}\n{r.stderr}"
    assert "Traceback" not in r.stderr


def state(vk: VmkitEnv) -> str:
    return vk.ok("domstate", "--reason", NAME).strip()


def usable(vk: VmkitEnv) -> None:
    """start and destroy work, and leave nothing behind."""
    if state(vk).startswith("running"):
        vk.ok("destroy", NAME)
    vk.ok("start", NAME)
    assert state(vk) == "running (booted)"
    vk.ok("destroy", NAME)
    assert state(vk) == "shut off (destroyed)"
    assert_consistent(vk)
    assert all_pids_of(vk.root) == []


def define_case(vk: VmkitEnv, step: str) -> None:
    xml = str(vk.domain_xml(NAME, machine="microvm"))
    die_at(vk, step, "define", xml)
    vk.ok("list", "--all")
    assert_consistent(vk)
    names = vk.ok("list", "--all", "--name").split()
    if step == "define:before-commit":
        assert names == []
        vk.ok("define", xml)
    else:
        assert names == [NAME]
    usable(vk)


def start_case(vk: VmkitEnv, step: str, variant: str) -> None:
    """variant '': start; 'create': a transient domain; 'setup': a start that stops at -S for
    settings made over QMP (currentMemory below memory: the balloon) and then continues."""
    extra = "<currentMemory unit='MiB'>128</currentMemory>" if variant == "setup" else ""
    xml = str(vk.domain_xml(NAME, machine="microvm", extra=extra))
    transient = variant == "create"
    if transient:
        die_at(vk, step, "create", xml)
    else:
        vk.ok("define", xml)
        die_at(vk, step, "start", NAME)
    if step == "start:after-record":
        assert all_pids_of(vk.root) == []
    else:
        assert len(all_pids_of(vk.root)) == 1, "QEMU runs on after the command died"
    if step == "start:after-commit":
        boots_without_vmkit(vk)
    vk.ok("list", "--all")
    assert_consistent(vk)
    if step != "start:after-commit":
        assert all_pids_of(vk.root) == [], "the unrecorded QEMU was ended"
        if transient:
            vk.fails(3, "domstate", NAME, match=f"failed to get domain '{NAME}'")
            return
        assert state(vk) == "shut off (failed)"
    else:
        assert state(vk) == "running (booted)"
        assert vk.guest(NAME, "echo alive-$((5*5))") == "alive-25"
        if transient:
            vk.ok("destroy", NAME)
            vk.fails(3, "domstate", NAME)
            assert_consistent(vk)
            return
    usable(vk)


def boots_without_vmkit(vk: VmkitEnv) -> None:
    """The guest of the only domain boots while no vmkit command runs."""
    uuid = next((vk.root / "lib" / "log").iterdir()).name
    wait_booted_log(log_of(vk, uuid))


def destroy_case(vk: VmkitEnv, step: str) -> None:
    vk.ok("define", str(vk.domain_xml(NAME, machine="microvm")))
    vk.ok("start", NAME)
    pid = qemu_pid(vk, NAME)
    die_at(vk, step, "destroy", NAME)
    vk.ok("list", "--all")
    assert_consistent(vk)
    if step == "destroy:before-kill":
        assert state(vk) == "running (booted)"
        assert qemu_pid(vk, NAME) == pid, "the same QEMU runs on"
        vk.ok("suspend", NAME)  # and answers QMP
        vk.ok("resume", NAME)
    else:
        assert state(vk) == "shut off (destroyed)"
        assert all_pids_of(vk.root) == []
    usable(vk)


def undefine_case(vk: VmkitEnv, step: str) -> None:
    vk.ok("define", str(vk.domain_xml(NAME, machine="microvm")))
    vk.ok("start", NAME)  # undefine of a running domain: it becomes transient
    die_at(vk, step, "undefine", NAME)
    vk.ok("list", "--all")
    assert_consistent(vk)
    persistent = "yes" if step == "undefine:before-commit" else "no"
    assert f"Persistent:     {persistent}\n" in vk.ok("dominfo", NAME)
    assert state(vk) == "running (booted)"
    vk.ok("destroy", NAME)
    if persistent == "no":
        vk.fails(3, "domstate", NAME, match=f"failed to get domain '{NAME}'")
        assert_consistent(vk)
        return
    usable(vk)
    vk.ok("undefine", NAME)
    assert vk.ok("list", "--all", "--name") == "\n"


CASES = [(step, "") for step in STEPS] + [
    (step, variant)
    for step in STEPS
    if step.startswith("start:")
    for variant in ("create", "setup")
]


@pytest.mark.parametrize(("step", "variant"), CASES, ids=[f"{s}-{v}" if v else s for s, v in CASES])
def test_fault_step_is_repaired(vk: VmkitEnv, step: str, variant: str) -> None:
    op = step.split(":", 1)[0]
    if op == "define":
        define_case(vk, step)
    elif op == "start":
        start_case(vk, step, variant)
    elif op == "destroy":
        destroy_case(vk, step)
    elif op == "undefine":
        undefine_case(vk, step)
    else:
        pytest.fail(f"no crash scenario for fault step {step!r}: add one here")
