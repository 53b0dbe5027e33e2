"""Pure helpers of the bench's modes and adapters: plans, bare-QEMU argv, network XML."""

from __future__ import annotations

from pathlib import Path

import pytest
from bench.bare import chardev_path, native_dir, relocate
from bench.cases.network import network_xml
from bench.guest import Guest, domain_uuid, domain_xml
from bench.main import make_plan
from bench.rows import NET_MODELS

NATIVE = [
    "/usr/bin/qemu-system-x86_64",
    "-name",
    "guest=b2,debug-threads=on",
    "-chardev",
    "socket,id=charmonitor,path=/tmp/vmkit-native-z3dd9wdf/qmp.sock,server=on,wait=off",
    "-mon",
    "chardev=charmonitor,id=monitor,mode=control",
    "-chardev",
    "socket,id=charserial0,path=/tmp/vmkit-native-z3dd9wdf/console.sock,server=on,wait=off,"
    "logfile=/tmp/vmkit-native-z3dd9wdf/console.log,logappend=on",
    "-device",
    "isa-serial,chardev=charserial0,id=serial0,index=0",
]


def test_bare_argv_is_moved_into_its_own_folder() -> None:
    old = native_dir(NATIVE)
    assert old == "/tmp/vmkit-native-z3dd9wdf"
    argv = relocate(NATIVE, old, Path("/tmp/vb-x/bare/life0"))
    assert not any("vmkit-native" in a for a in argv)
    assert chardev_path(argv, "charmonitor", "path") == Path("/tmp/vb-x/bare/life0/qmp.sock")
    log = chardev_path(argv, "charserial0", "logfile")
    assert log == Path("/tmp/vb-x/bare/life0/console.log")
    assert argv[0] == NATIVE[0] and len(argv) == len(NATIVE)


def test_bare_argv_without_monitor_is_refused() -> None:
    with pytest.raises(ValueError):
        native_dir(["/usr/bin/qemu-system-x86_64", "-m", "256"])
    with pytest.raises(ValueError):
        chardev_path(NATIVE, "nosuch", "path")


def test_plans() -> None:
    selftest = make_plan("selftest", None, None, None)
    assert selftest.counts["cli"] == (1, 2)
    assert set(selftest.groups) == {"cli", "mem"}
    full = make_plan("full", None, None, None)
    for group in ("cli", "life", "scale", "mem", "net", "store"):
        warmup, runs = full.counts[group]
        assert warmup >= 1 and runs >= 5, group
    assert full.scale_domains == 10 and full.scale_sequential
    quick = make_plan("quick", None, None, None)
    assert quick.scale_domains < 10 and not quick.scale_sequential
    assert set(quick.groups) == set(full.groups)
    override = make_plan("full", 7, 0, 3)
    assert set(override.counts.values()) == {(0, 7)}
    assert override.scale_domains == 3


def test_network_xml_stays_out_of_the_forbidden_subnets() -> None:
    bridges = set()
    for index, model in enumerate(NET_MODELS):
        xml, bridge, net = network_xml(model, index)
        for bad in ("192.0.2.", "203.0.113.", "10.255.255."):
            assert bad not in xml and not net.startswith(bad)
        assert len(bridge) <= 15 and bridge in xml
        bridges.add(bridge)
    assert len(bridges) == len(NET_MODELS)


def test_domain_xml_is_qemu_type_and_logs_only_when_asked() -> None:
    guest = Guest(Path("/k"), Path("/i"), "console=ttyS0", b"M", b"P")
    uuid = domain_uuid("vmkit", "d0")
    plain = domain_xml(guest, "d0", uuid)
    assert "<domain type='qemu'>" in plain and uuid in plain and "<log" not in plain
    logged = domain_xml(guest, "d0", uuid, console_log=Path("/tmp/x.log"))
    assert "<log file='/tmp/x.log' append='off'/>" in logged
    assert domain_uuid("vmkit", "d0") != domain_uuid("libvirt", "d0")
