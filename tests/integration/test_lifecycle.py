"""A domain's whole life on each machine type, through the real CLI and a real QEMU (TCG).

define -> start -> boot -> list/dominfo/domstate -> suspend -> resume -> reboot -> shutdown ->
start -> destroy -> undefine, with virsh's layouts and states/reasons at every step.
"""

from __future__ import annotations

import pytest
from lifecycle_checks import log_of, marker_count, qemu_pid, run_dirs
from vmkit_cli import VmkitEnv, all_pids_of

pytestmark = pytest.mark.integration


def expected_list(rows: list[tuple[str, str, str]]) -> str:
    """`virsh list` of (id, name, state) rows: leading space, 3-space gaps, a dash rule."""
    header = ("Id", "Name", "State")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(3)]

    def line(cells: tuple[str, str, str]) -> str:
        return (" " + "   ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True))).rstrip()

    rule = "-" * (sum(widths) + 3 * 2 + 3)
    return "\n".join([line(header), rule, *map(line, rows)]) + "\n\n"


def dominfo_fields(text: str) -> list[tuple[str, str]]:
    """(key, value) pairs of `dominfo`, checking virsh's alignment (value at column 17)."""
    pairs = []
    for line in text.splitlines():
        if not line:
            continue
        key, _, _ = line.partition(":")
        assert line[:16] == f"{key}:".ljust(16), f"misaligned: {line!r}"
        pairs.append((key, line[16:]))
    return pairs


def check_running_views(vk: VmkitEnv, name: str, uuid: str, domid: str) -> None:
    assert vk.ok("list") == expected_list([(domid, name, "running")])
    assert vk.ok("list", "--all") == expected_list([(domid, name, "running")])
    assert vk.ok("list", "--name") == f"{name}\n\n"
    assert vk.ok("domstate", name) == "running\n\n"
    assert vk.ok("domstate", "--reason", name) == "running (booted)\n\n"
    fields = dominfo_fields(vk.ok("dominfo", name))
    keys = [k for k, _ in fields]
    assert keys == [
        "Id",
        "Name",
        "UUID",
        "OS Type",
        "State",
        "CPU(s)",
        "CPU time",
        "Max memory",
        "Used memory",
        "Persistent",
        "Autostart",
        "Managed save",
        "Security model",
        "Security DOI",
    ]
    info = dict(fields)
    assert info["Id"] == domid
    assert info["Name"] == name
    assert info["UUID"] == uuid
    assert info["OS Type"] == "hvm"
    assert info["State"] == "running"
    assert info["CPU(s)"] == "1"
    assert info["CPU time"].endswith("s") and float(info["CPU time"][:-1]) > 0
    assert info["Max memory"] == info["Used memory"] == f"{160 * 1024} KiB"
    assert (info["Persistent"], info["Autostart"], info["Managed save"]) == ("yes", "disable", "no")
    assert (info["Security model"], info["Security DOI"]) == ("none", "0")


def check_shut_off(vk: VmkitEnv, name: str, reason: str) -> None:
    assert vk.ok("domstate", "--reason", name) == f"shut off ({reason})\n\n"
    assert vk.ok("list") == expected_list([])
    assert vk.ok("list", "--all") == expected_list([("-", name, "shut off")])
    info = dict(dominfo_fields(vk.ok("dominfo", name)))
    assert (info["Id"], info["State"]) == ("-", "shut off")
    assert "CPU time" not in info
    assert run_dirs(vk) == set()
    assert all_pids_of(vk.root) == []


@pytest.mark.parametrize("machine", ["pc", "q35", "microvm"])
def test_lifecycle(vk: VmkitEnv, machine: str) -> None:
    name = f"life-{machine}"
    xml = vk.domain_xml(name, machine=machine)
    assert vk.ok("define", str(xml)) == f"Domain '{name}' defined from {xml}\n\n"
    uuid = vk.uuid(name)
    log = log_of(vk, uuid)
    check_shut_off(vk, name, "unknown")

    assert vk.ok("start", name) == f"Domain '{name}' started\n\n"
    vk.wait_booted(name)
    domid = vk.ok("domid", name).strip()
    check_running_views(vk, name, uuid, domid)

    assert vk.ok("suspend", name) == f"Domain '{name}' suspended\n\n"
    assert vk.ok("domstate", "--reason", name) == "paused (user)\n\n"
    assert vk.ok("list") == expected_list([(domid, name, "paused")])
    assert vk.ok("resume", name) == f"Domain '{name}' resumed\n\n"
    assert vk.ok("domstate", "--reason", name) == "running (unpaused)\n\n"

    pid = qemu_pid(vk, name)
    assert vk.ok("reboot", name) == f"Domain '{name}' is being rebooted\n\n"
    vk.wait_booted(name, count=2)
    assert qemu_pid(vk, name) == pid, "a reboot keeps the QEMU"
    assert vk.ok("domstate", "--reason", name) == "running (booted)\n\n"
    assert vk.guest(name, "echo up-$((40+2))") == "up-42"

    out = vk.ok("shutdown", "--wait", name)
    assert out == f"Domain '{name}' is shut off (shutdown)\n\n"
    check_shut_off(vk, name, "shutdown")

    vk.ok("start", name)
    new_id = vk.ok("domid", name).strip()
    assert int(new_id) > int(domid), "ids are never reused"
    assert vk.ok("destroy", name) == f"Domain '{name}' destroyed\n\n"  # while it boots
    check_shut_off(vk, name, "destroyed")
    assert marker_count(log) >= 2

    assert vk.ok("undefine", name) == f"Domain '{name}' has been undefined\n\n"
    vk.fails(3, "domstate", name, match=f"^error: failed to get domain '{name}'$")
    vk.fails(3, "dominfo", uuid, match=f"failed to get domain '{uuid}'")
    assert vk.ok("list", "--all") == expected_list([])
    assert all_pids_of(vk.root) == []
