"""The host layer on the real machine: KVM detection, the probe boot, QEMU introspection,
capabilities against libvirt's schema, host-validate, nodeinfo.

Needs root and qemu-system-x86_64. Every QEMU started here is the probe's, killed by pid
before run_probe returns (checked below). About 4 s in total, 3 of them KVM probes on a
PVM-only host.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from lxml import etree

from vmkit.host import (
    capabilities_xml,
    detect_accel,
    find_qemu,
    host_checks,
    host_validate_text,
    load_qemu_info,
    nodeinfo_text,
)
from vmkit.host.probe import MSG_DONE, QemuProber, run_probe
from vmkit.host.qemu_info import QemuInfo
from vmkit.host.roots import HostRoots
from vmkit.host.validate import probe_bridge_in_netns

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root"),
    pytest.mark.skipif(shutil.which("qemu-system-x86_64") is None, reason="needs QEMU"),
]

SCHEMA = Path("/usr/share/libvirt/schemas/capability.rng")
DATA = Path(__file__).resolve().parents[1] / "data" / "host"
MODULES = Path("/sys/module")
PVM_ONLY = (MODULES / "kvm_pvm").is_dir() and not any(
    (MODULES / m).is_dir() for m in ("kvm_intel", "kvm_amd")
)
needs_pvm = pytest.mark.skipif(not PVM_ONLY, reason="only on a PVM-only /dev/kvm host")


def _gone(pid: int) -> bool:
    """The pid no longer names a live process (vanished, or a zombie nobody reaped yet)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rpartition(")")[2].split()[0] == "Z"


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    return tmp_path / "host.json"


@needs_pvm
def test_detection_on_this_machine_says_tcg_because_of_kvm_pvm(cache: Path) -> None:
    first = detect_accel(cache)
    assert first.accel == "tcg"
    assert "kvm_pvm" in first.reason
    assert not first.probed  # the static checks decide: no QEMU started
    second = detect_accel(cache)
    assert second.cached and (second.accel, second.reason) == (first.accel, first.reason)


def test_probe_boot_prints_under_tcg() -> None:
    result = run_probe(find_qemu(), "tcg")
    assert result.ok, result.detail
    assert result.reached == "done"
    assert b"SeaBIOS" in result.output  # the firmware ran and logged to port 0x402
    assert result.output.endswith(MSG_DONE)
    assert _gone(result.pid)


@needs_pvm
@pytest.mark.slow
def test_probe_boot_under_pvm_kvm_runs_seabios_but_never_finishes() -> None:
    result = run_probe(find_qemu(), "kvm", timeout=1.5)  # TCG needs ~0.15 s
    assert not result.ok
    assert b"SeaBIOS" in result.output  # why SeaBIOS output alone would be a false "usable"
    assert result.reached in ("firmware", "protected mode", "long mode")
    assert _gone(result.pid)


@needs_pvm
@pytest.mark.slow
def test_forced_probe_path_falls_back_to_tcg(cache: Path) -> None:
    """Static checks of a VT-x host (the intel fixture) + this machine's real /dev/kvm."""
    qemu = find_qemu()
    roots = HostRoots.under(DATA / "intel")
    info = detect_accel(cache, roots=roots, qemu=qemu, prober=QemuProber(qemu, timeout=1.5))
    assert info.accel == "tcg" and info.probed
    assert "did not finish" in info.reason and "under TCG it finished" in info.reason


def test_qemu_info_parses_this_qemu(cache: Path) -> None:
    info = load_qemu_info(None, cache)
    assert info.version >= (7, 0, 0)
    assert (info.resolve_machine("pc") or "").startswith("pc-i440fx-")
    assert (info.resolve_machine("q35") or "").startswith("pc-q35-")
    assert info.resolve_machine("microvm") == "microvm"
    assert info.resolve_machine("no-such-machine") is None
    assert info.default_machine
    assert {"qemu64", "max", "host"} <= info.cpu_models.keys()
    assert {"virtio-net-pci", "virtio-blk-pci", "isa-debugcon"} <= info.devices.keys()
    assert "tcg" in info.accelerators

    def refuse(argvs: object) -> list[str]:
        raise AssertionError("a cached QemuInfo must not run QEMU")

    assert load_qemu_info(None, cache, runner=refuse) == info


def test_capabilities_validate_against_libvirt_schema(cache: Path) -> None:
    if not SCHEMA.exists():
        pytest.skip("libvirt's schemas are not installed (package libvirt0)")
    doc = etree.fromstring(capabilities_xml(cache).encode())
    schema = etree.RelaxNG(etree.parse(str(SCHEMA)))
    assert schema.validate(doc), schema.error_log
    machines = doc.xpath("guest/arch[@name='x86_64']/machine/text()")
    assert isinstance(machines, list)
    assert {"pc", "q35", "microvm"} <= {str(m) for m in machines}
    types = doc.xpath("guest/arch[@name='x86_64']/domain/@type")
    assert types == (["qemu"] if PVM_ONLY else types)
    assert doc.findtext("host/cpu/arch") == os.uname().machine


def test_host_validate_on_this_machine(cache: Path) -> None:
    text, passed = host_validate_text(cache)
    assert "  QEMU: Checking for QEMU emulator" in text
    checks = {c.name: c for c in host_checks(cache)}
    assert checks["for QEMU emulator"].result == "PASS"
    assert checks["for Linux bridge support"].result == "PASS"
    if PVM_ONLY:
        assert checks["if device /dev/kvm is usable"].result == "FAIL"
        assert "kvm_pvm" in checks["if device /dev/kvm is usable"].detail
        assert not passed


def test_bridge_probe_in_a_throwaway_namespace() -> None:
    before = set(os.listdir("/run/netns")) if os.path.isdir("/run/netns") else set()
    assert probe_bridge_in_netns() is None
    after = set(os.listdir("/run/netns")) if os.path.isdir("/run/netns") else set()
    assert after == before  # the namespace (and its bridge) are gone


def test_nodeinfo_on_this_machine() -> None:
    text = nodeinfo_text()
    assert f"CPU(s):              {os.cpu_count()}\n" in text
    assert text.startswith(f"CPU model:           {os.uname().machine}\n")


def test_find_qemu_matches_path() -> None:
    info: QemuInfo = load_qemu_info()
    assert info.path == Path(shutil.which("qemu-system-x86_64") or "").absolute()
