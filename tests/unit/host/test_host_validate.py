"""validate.py: each fake host's checks, and virt-host-validate's line layout."""

from __future__ import annotations

from pathlib import Path

import pytest
from hostdata import roots_of

from vmkit.host.kvm import AccelInfo
from vmkit.host.qemu_info import QemuInfo
from vmkit.host.validate import (
    FAIL,
    PASS,
    WARN,
    Check,
    cgroup_controllers,
    check_bridge,
    check_qemu,
    checks_passed,
    format_check,
    format_checks,
    validate_host,
)

KVM = AccelInfo("kvm", "KVM works")
TCG = AccelInfo("tcg", "PVM-only /dev/kvm (kvm_pvm); using TCG")


def _results(checks: list[Check]) -> dict[str, str]:
    return {c.name: c.result.value for c in checks}


def _no_probe() -> str | None:
    raise AssertionError("the bridge probe must not run when sys/module/bridge exists")


def test_line_layout_is_virt_host_validates() -> None:
    check = Check(
        "for hardware virtualization",
        FAIL,
        "Only emulated CPUs are available, performance will be significantly limited",
    )
    assert format_check(check) == (
        "  QEMU: Checking for hardware virtualization                                 : FAIL "
        "(Only emulated CPUs are available, performance will be significantly limited)\n"
    )
    assert format_check(Check("if device /dev/net/tun exists", PASS)) == (
        "  QEMU: Checking if device /dev/net/tun exists                               : PASS\n"
    )


def test_color_wraps_only_the_word() -> None:
    line = format_check(Check("x", WARN, "why"), color=True)
    assert line.endswith(": \033[33mWARN\033[0m (why)\n")


def test_pvm_host(qemu_info: QemuInfo) -> None:
    checks = validate_host(TCG, qemu_info, roots=roots_of("pvm"), bridge_probe=_no_probe)
    assert _results(checks) == {
        "for QEMU emulator": "PASS",
        "for hardware virtualization": "FAIL",
        "if device /dev/kvm exists": "PASS",
        "if device /dev/kvm is usable": "FAIL",
        "for hardware-assisted paging (EPT/NPT)": "WARN",
        "if device /dev/vhost-net exists": "WARN",
        "if device /dev/net/tun exists": "PASS",
        "for Linux bridge support": "PASS",
        "for cgroup 'cpu' controller support": "PASS",
        "for cgroup 'memory' controller support": "PASS",
        "for cgroup 'blkio' controller support": "PASS",  # cgroup v1 names it blkio
        "for device assignment IOMMU support": "WARN",  # no IVRS table
    }
    usable = next(c for c in checks if c.name == "if device /dev/kvm is usable")
    assert "kvm_pvm" in usable.detail
    assert not checks_passed(checks)


def test_intel_host_passes_everything(qemu_info: QemuInfo) -> None:
    checks = validate_host(KVM, qemu_info, roots=roots_of("intel"), bridge_probe=_no_probe)
    assert {c.result for c in checks} == {PASS}, format_checks(checks)
    assert "for cgroup 'io' controller support" in _results(checks)  # cgroup v2 names it io
    assert "if IOMMU is enabled by kernel" in _results(checks)
    assert checks_passed(checks)


def test_amd_host(qemu_info: QemuInfo) -> None:
    calls: list[str] = []

    def probe() -> str | None:
        calls.append("probe")
        return None

    checks = validate_host(KVM, qemu_info, roots=roots_of("amd"), bridge_probe=probe)
    by_name = {c.name: c for c in checks}
    assert calls == ["probe"]  # no sys/module/bridge: tried in a namespace
    assert by_name["for Linux bridge support"].result == PASS
    assert by_name["for cgroup 'io' controller support"].result == WARN
    assert by_name["for device assignment IOMMU support"].result == PASS
    iommu = by_name["if IOMMU is enabled by kernel"]
    assert iommu.result == WARN and "amd_iommu=off" in iommu.detail
    assert by_name["for hardware-assisted paging (EPT/NPT)"].result == PASS


def test_nokvm_host_without_qemu() -> None:
    checks = validate_host(
        AccelInfo("tcg", "/dev/kvm does not exist"),
        None,
        roots=roots_of("nokvm"),
        qemu_problem="qemu-system-x86_64 not found on PATH",
        bridge_probe=_no_probe,
    )
    by_name = {c.name: c for c in checks}
    assert by_name["for QEMU emulator"].result == FAIL
    assert "not found on PATH" in by_name["for QEMU emulator"].detail
    assert by_name["if device /dev/kvm exists"].result == FAIL
    assert by_name["if device /dev/net/tun exists"].result == FAIL
    assert by_name["for cgroup 'cpu' controller support"].result == WARN
    assert by_name["for device assignment IOMMU support"].result == WARN  # no DMAR table


def test_bridge_probe_failure_and_absence(tmp_path: Path) -> None:
    roots = roots_of("amd")
    failed = check_bridge(roots, lambda: "creating a bridge failed: EOPNOTSUPP")
    assert failed.result == FAIL and "EOPNOTSUPP" in failed.detail
    assert check_bridge(roots, None).result == WARN


def test_old_qemu_warns(qemu_info: QemuInfo) -> None:
    from dataclasses import replace

    old = replace(qemu_info, version=(6, 2, 0))
    check = check_qemu(old)
    assert check.result == WARN and "7.2.0" in check.detail
    assert check_qemu(qemu_info).detail == "/usr/bin/qemu-system-x86_64, version 7.2.22"


@pytest.mark.parametrize(
    ("case", "v2", "v1"),
    [
        ("pvm", set(), {"cpu", "memory", "blkio", "pids"}),
        ("intel", {"cpu", "io", "memory"}, set()),
    ],
)
def test_cgroup_controllers(case: str, v2: set[str], v1: set[str]) -> None:
    found_v2, found_v1 = cgroup_controllers(roots_of(case))
    assert v2 <= found_v2 and v1 <= found_v1
    if not v2:
        assert found_v2 == set()
