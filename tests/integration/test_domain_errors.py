"""Bad input: each is refused with a message naming the object, a non-zero exit, and no change."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest
from lifecycle_checks import assert_consistent, qemu_pid, run_dirs, store_of
from vmkit_cli import VmkitEnv, all_pids_of

pytestmark = pytest.mark.integration

UUID_A = "0b0e7c8e-52d1-4a52-9d1b-6a3d2f1e9a01"
UUID_B = "0b0e7c8e-52d1-4a52-9d1b-6a3d2f1e9a02"

# Every domain command, with the arguments it needs besides the domain.
DOMAIN_COMMANDS = [
    ("start",),
    ("shutdown",),
    ("shutdown", "--wait"),
    ("reboot",),
    ("reset",),
    ("destroy",),
    ("suspend",),
    ("resume",),
    ("console",),
    ("console", "--history"),
    ("undefine",),
    ("dominfo",),
    ("domstate", "--reason"),
    ("domid",),
    ("domuuid",),
    ("domname",),
    ("dumpxml",),
    ("dumpxml", "--inactive"),
    ("edit",),
    ("autostart",),
    ("autostart", "--disable"),
    ("setmem", "@", "131072"),
    ("setmaxmem", "@", "262144"),
    ("setvcpus", "@", "1"),
]


def argv(command: tuple[str, ...], domain: str) -> list[str]:
    """The command line: the domain replaces '@', or comes last."""
    if "@" in command:
        return [domain if a == "@" else a for a in command]
    return [*command, domain]


def snapshot(vk: VmkitEnv) -> tuple[object, ...]:
    """What must not change: definitions (with XML), runtime records, run dirs, QEMUs."""
    with store_of(vk) as store:
        entries = store.domains()
    defs = sorted((e.uuid, e.name, e.definition.xml, e.definition.persistent) for e in entries)
    rts = sorted((e.uuid, e.runtime.pid, e.runtime.state) for e in entries if e.runtime)
    return defs, rts, sorted(run_dirs(vk)), sorted(all_pids_of(vk.root))


@pytest.fixture
def other(vk: VmkitEnv) -> Iterator[str]:
    """A defined domain that the failures must leave alone."""
    vk.ok("define", str(vk.domain_xml("other", machine="microvm", extra=f"<uuid>{UUID_A}</uuid>")))
    yield "other"


def test_unknown_domain_for_every_command(vk: VmkitEnv, other: str) -> None:
    before = snapshot(vk)
    wrong = []
    cases = [(command, "nosuch") for command in DOMAIN_COMMANDS] + [
        (command, key)  # an unknown id or uuid too (the other ways to name a domain)
        for command in [("start",), ("dominfo",), ("destroy",)]
        for key in ("42", "0b0e7c8e-52d1-4a52-9d1b-6a3d2f1e9aff")
    ]
    for command, key in cases:
        r = vk.run(*argv(command, key), extra_env={"EDITOR": "false"})
        if (r.returncode, r.stderr) != (3, f"error: failed to get domain '{key}'\n"):
            wrong.append(f"{' '.join(argv(command, key))} -> {r.returncode} {r.stderr!r}")
    assert wrong == []
    assert snapshot(vk) == before


@pytest.fixture
def running(vk: VmkitEnv, other: str) -> str:
    vk.ok("define", str(vk.domain_xml("busy", machine="microvm")))
    vk.ok("start", "busy")
    return "busy"


def test_start_of_running_domain(vk: VmkitEnv, running: str) -> None:
    pid = qemu_pid(vk, running)
    before = snapshot(vk)
    vk.fails(
        5,
        "start",
        running,
        match=f"^error: Failed to start domain '{running}': Domain is already active$",
    )
    vk.fails(5, "start", "--paused", running, match="already active")
    vk.fails(5, "resume", running, match=f"domain '{running}' is not paused")
    vk.fails(4, "create", str(vk.root / f"{running}.xml"), match=f"domain '{running}' already")
    assert snapshot(vk) == before
    assert qemu_pid(vk, running) == pid
    assert vk.ok("domstate", "--reason", running) == "running (booted)\n\n"


def test_suspend_of_paused_domain(vk: VmkitEnv, running: str) -> None:
    vk.ok("suspend", running)
    before = snapshot(vk)
    vk.fails(5, "suspend", running, match=f"domain '{running}' is already paused")
    assert snapshot(vk) == before
    assert vk.ok("domstate", "--reason", running) == "paused (user)\n\n"


STOPPED_REFUSALS = [
    ("suspend", "suspend"),
    ("resume", "resume"),
    ("destroy", "destroy"),
    ("destroy --graceful", "destroy"),
    ("shutdown", "shutdown"),
    ("shutdown --wait", "shutdown"),
    ("reboot", "reboot"),
    ("reset", "reset"),
    ("console", "open the console of"),
]


def test_stopped_domain_refuses(vk: VmkitEnv, other: str) -> None:
    vk.ok("start", other)
    vk.ok("destroy", other)
    before = snapshot(vk)
    for command, verb in STOPPED_REFUSALS:
        err = vk.fails(5, *command.split(), other)
        want = (
            f"error: Failed to {verb} domain '{other}': "
            "Requested operation is not valid: domain is not running\n"
        )
        assert err == want, command
        assert snapshot(vk) == before, command
    assert vk.ok("domstate", "--reason", other) == "shut off (destroyed)\n\n"


def test_define_of_taken_name_or_uuid(vk: VmkitEnv, other: str) -> None:
    before = snapshot(vk)
    same_name = vk.domain_xml("other", extra=f"<uuid>{UUID_B}</uuid>")
    vk.fails(4, "define", str(same_name), match=f"domain 'other' already exists with uuid {UUID_A}")
    no_uuid = vk.domain_xml("other")
    vk.fails(4, "define", str(no_uuid), match=f"domain 'other' already exists with uuid {UUID_A}")
    same_uuid = vk.domain_xml("newname", extra=f"<uuid>{UUID_A}</uuid>")
    vk.fails(4, "define", str(same_uuid), match="domain 'other' is already defined with uuid")
    vk.fails(4, "create", str(same_name), match="domain 'other' already exists")
    vk.fails(4, "create", str(same_uuid), match="domain 'other'")
    assert snapshot(vk) == before


BAD_XML = {
    "malformed": ("<domain type='qemu'><name>bad</name>", r"malformed XML.*line"),
    "unknown-element": (None, r"unknown element <bogus> in <domain> \(line \d+"),
    "no-name": ("<domain type='qemu'><memory>1024</memory></domain>", r"(?i)name"),
    "zero-memory": (None, r"memory must be greater than 0"),
    "not-a-domain": ("<network><name>n</name></network>", r"(?i)domain"),
    "bad-machine": (None, r"(?i)machine.*no-such-machine|no-such-machine.*machine"),
}


@pytest.mark.parametrize("how", sorted(BAD_XML))
@pytest.mark.parametrize("command", ["define", "create"])
def test_invalid_xml(vk: VmkitEnv, other: str, command: str, how: str) -> None:
    text, message = BAD_XML[how]
    if how == "unknown-element":
        path = vk.domain_xml("bad", extra="<bogus/>")
    elif how == "zero-memory":
        path = vk.domain_xml("bad", memory_mib=0)
    elif how == "bad-machine":
        path = vk.domain_xml("bad", machine="no-such-machine")
    else:
        path = vk.root / "bad.xml"
        path.write_text(str(text))
    before = snapshot(vk)
    err = vk.fails(2, command, str(path), match=message)
    assert str(path) in err, "the message names the file"
    assert snapshot(vk) == before


def test_qemu_failing_at_launch(vk: VmkitEnv, other: str) -> None:
    kernel = vk.root / "vmlinuz-gone"
    assert vk.image is not None
    kernel.write_bytes(vk.image.kernel.read_bytes())
    xml = vk.domain_xml("nokernel").read_text().replace(str(vk.image.kernel), str(kernel))
    (vk.root / "nokernel.xml").write_text(xml)
    vk.ok("define", str(vk.root / "nokernel.xml"))
    kernel.unlink()
    vk.ok("define", str(vk.domain_xml("huge", memory_mib=10**7)))
    before = snapshot(vk)

    vk.fails(
        1,
        "start",
        "nokernel",
        match=f"Failed to start domain 'nokernel': .*could not open kernel file '{kernel}'",
    )
    vk.fails(1, "start", "huge", match="Failed to start domain 'huge': .*guest memory")
    vk.fails(1, "create", str(vk.domain_xml("hugetr", memory_mib=10**7)), match="'hugetr'.*memory")
    assert snapshot(vk) == before, "no record, no run dir, no QEMU, no transient left"
    for name in ("nokernel", "huge"):
        assert vk.ok("domstate", "--reason", name) == "shut off (unknown)\n\n"
    assert list((vk.root / "run" / "dom").iterdir()) == []
    vk.fails(3, "dominfo", "hugetr")
    assert_consistent(vk)


def test_racing_starts_one_wins(vk: VmkitEnv, other: str) -> None:
    command = [sys.executable, "-m", "vmkit", "start", other]
    for _ in range(3):
        procs = [
            subprocess.Popen(command, env=vk.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            for _ in range(2)
        ]
        results = [(p.communicate(timeout=120)[1].decode(), p.returncode) for p in procs]
        results = [(rc, err) for err, rc in results]
        codes = sorted(rc for rc, _ in results)
        assert codes == [0, 5], results
        loser = next(err for rc, err in results if rc == 5)
        assert loser == f"error: Failed to start domain '{other}': Domain is already active\n"
        assert len(all_pids_of(vk.root)) == 1
        assert_consistent(vk)
        vk.ok("destroy", other)
    assert all_pids_of(vk.root) == []
