"""`vmkit host-validate`: virt-host-validate's checks, for what vmkit needs of a host.

`validate_host` returns a list of `Check`s (PASS / WARN / FAIL with a hint) from facts read
through a `HostRoots`, the KVM verdict (kvm.py) and the QEMU description (qemu_info.py);
`format_checks` prints them in virt-host-validate's layout. The only side effect is the optional
bridge probe, which creates a bridge in a throwaway network namespace (never in the root one),
and only when sys/module/bridge is absent.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from vmkit.host.cpu import CpuInfo, read_cpuinfo
from vmkit.host.kvm import AccelInfo
from vmkit.host.qemu_info import QemuInfo
from vmkit.host.roots import HostRoots, read_text

TESTED_QEMU = (7, 2, 0)
NAME_WIDTH = 60  # virt-host-validate: "%6s: Checking %-60s: "


class CheckResult(enum.StrEnum):
    PASS = "PASS"
    WARN = "WARN"
    FAIL = "FAIL"


@dataclass(frozen=True)
class Check:
    """One line of the report: "Checking <name>: <result> (<detail>)"."""

    name: str  # "for hardware virtualization"
    result: CheckResult
    detail: str = ""  # the hint (why, what to do); shown in parentheses
    prefix: str = "QEMU"


PASS, WARN, FAIL = CheckResult.PASS, CheckResult.WARN, CheckResult.FAIL
BridgeProbe = Callable[[], str | None]  # None: a bridge could be created; else why not


def check_qemu(qemu: QemuInfo | None, problem: str = "") -> Check:
    name = "for QEMU emulator"
    if qemu is None:
        return Check(name, FAIL, problem or "qemu-system-x86_64 not found")
    detail = f"{qemu.path}, version {qemu.version_string}"
    if qemu.version < TESTED_QEMU:
        tested = ".".join(map(str, TESTED_QEMU))
        return Check(name, WARN, f"{detail}: older than {tested}, the version vmkit is tested with")
    return Check(name, PASS, detail)


def check_hw_virt(cpu: CpuInfo) -> Check:
    if cpu.virt_flag:
        return Check("for hardware virtualization", PASS)
    return Check(
        "for hardware virtualization",
        FAIL,
        "Host not compatible with KVM; HW virtualization CPU features not found. Only emulated "
        "CPUs are available; performance will be significantly limited",
    )


def check_dev_kvm(roots: HostRoots, accel: AccelInfo) -> list[Check]:
    exists = Check("if device /dev/kvm exists", PASS)
    if not (roots.dev / "kvm").exists():
        hint = "Check that CPU and firmware supports virtualization and kvm module is loaded"
        exists = Check(exists.name, FAIL, hint)
    usable = Check("if device /dev/kvm is usable", PASS if accel.kvm_usable else FAIL, accel.reason)
    return [exists, usable]


def check_hw_paging(cpu: CpuInfo) -> Check:
    name = "for hardware-assisted paging (EPT/NPT)"
    if cpu.paging_flag:
        return Check(name, PASS)
    if cpu.virt_flag:
        return Check(name, WARN, f"the CPU has {cpu.virt_flag} but no EPT/NPT: guests run slower")
    return Check(name, WARN, "not available without hardware virtualization")


def check_devices(roots: HostRoots) -> list[Check]:
    vhost = Check("if device /dev/vhost-net exists", PASS)
    if not (roots.dev / "vhost-net").exists():
        hint = "Load the 'vhost_net' module to improve performance of virtio networking"
        vhost = Check(vhost.name, WARN, hint)
    tun = Check("if device /dev/net/tun exists", PASS)
    if not (roots.dev / "net/tun").exists():
        tun = Check(tun.name, FAIL, "Load the 'tun' module to enable networking for QEMU guests")
    return [vhost, tun]


def probe_bridge_in_netns() -> str | None:
    """Create a bridge in a throwaway network namespace; None if that works, else why not."""
    from pyroute2 import IPRoute, netns  # imported here: ~0.2 s, needed only on this path

    name = f"vmkit-probe-{os.getpid()}"
    try:
        netns.create(name)
    except OSError as e:
        return f"cannot create a network namespace to try: {e}"
    try:
        with IPRoute(netns=name) as ipr:
            ipr.link("add", ifname="vkprobe0", kind="bridge")
        return None
    except Exception as e:  # pyroute2's NetlinkError and friends
        return f"creating a bridge failed: {e}"
    finally:
        netns.remove(name)


def check_bridge(roots: HostRoots, probe: BridgeProbe | None) -> Check:
    name = "for Linux bridge support"
    if (roots.sys / "module/bridge").is_dir():
        return Check(name, PASS)
    if probe is None:
        return Check(name, WARN, "the 'bridge' module is not loaded; try 'modprobe bridge'")
    why = probe()
    return Check(name, FAIL, why) if why else Check(name, PASS, "bridge module loads on demand")


def _live_path(roots: HostRoots, mountpoint: str) -> Path:
    """A mount point of the live system, seen under `roots` (fixtures keep /sys under roots)."""
    if mountpoint.startswith("/sys/"):
        return roots.sys / mountpoint.removeprefix("/sys/")
    return Path(mountpoint)


def cgroup_controllers(roots: HostRoots) -> tuple[set[str], set[str]]:
    """(cgroup v2 controllers, cgroup v1 controllers) of the mounted hierarchies."""
    v2: set[str] = set()
    v1: set[str] = set()
    for line in read_text(roots.proc / "mounts").splitlines():
        fields = line.split()
        if len(fields) < 4:
            continue
        where, fstype, options = fields[1], fields[2], fields[3].split(",")
        if fstype == "cgroup2":
            v2 |= set(read_text(_live_path(roots, where) / "cgroup.controllers").split())
        elif fstype == "cgroup":
            v1 |= set(options)
    return v2, v1


def check_cgroups(roots: HostRoots) -> list[Check]:
    v2, v1 = cgroup_controllers(roots)
    checks = []
    for controller, v1_name in (("cpu", "cpu"), ("memory", "memory"), ("io", "blkio")):
        shown = controller if controller in v2 or v1_name not in v1 else v1_name
        name = f"for cgroup '{shown}' controller support"
        if controller in v2 or v1_name in v1:
            checks.append(Check(name, PASS))
        else:
            hint = (
                f"Enable '{controller}' in kernel Kconfig file or mount/enable cgroup controller "
                "in your system; resource tuning of guests will not apply"
            )
            checks.append(Check(name, WARN, hint))
    return checks


def check_iommu(roots: HostRoots, cpu: CpuInfo) -> list[Check]:
    support = "for device assignment IOMMU support"
    table, bootarg = {"Intel": ("DMAR", "intel_iommu=on"), "AMD": ("IVRS", "amd_iommu=on")}.get(
        cpu.vendor_short, ("", "")
    )
    if not table:
        return [Check(support, WARN, "Unknown if this platform has IOMMU support")]
    if not (roots.sys / "firmware/acpi/tables" / table).exists():
        hint = (
            f"No ACPI {table} table found, IOMMU either disabled in BIOS or not supported by "
            "this hardware platform"
        )
        return [Check(support, WARN, hint)]
    enabled = "if IOMMU is enabled by kernel"
    groups = roots.sys / "kernel/iommu_groups"
    if groups.is_dir() and any(groups.iterdir()):
        return [Check(support, PASS), Check(enabled, PASS)]
    cmdline = read_text(roots.proc / "cmdline").split()
    off = [a for a in cmdline if a in ("intel_iommu=off", "amd_iommu=off", "iommu=off")]
    hint = (
        f"IOMMU is disabled on the kernel command line ({off[0]})"
        if off
        else f"IOMMU appears to be disabled in kernel. Add {bootarg} to kernel cmdline arguments"
    )
    return [Check(support, PASS), Check(enabled, WARN, hint)]


def validate_host(
    accel: AccelInfo,
    qemu: QemuInfo | None,
    *,
    roots: HostRoots | None = None,
    qemu_problem: str = "",
    bridge_probe: BridgeProbe | None = probe_bridge_in_netns,
) -> list[Check]:
    """Every check, in report order. `qemu_problem` says why `qemu` is None."""
    roots = roots or HostRoots()
    cpu = read_cpuinfo(roots)
    return [
        check_qemu(qemu, qemu_problem),
        check_hw_virt(cpu),
        *check_dev_kvm(roots, accel),
        check_hw_paging(cpu),
        *check_devices(roots),
        check_bridge(roots, bridge_probe),
        *check_cgroups(roots),
        *check_iommu(roots, cpu),
    ]


_COLORS = {PASS: "\033[32m", WARN: "\033[33m", FAIL: "\033[31m"}


def format_check(check: Check, color: bool = False) -> str:
    """One line: `  QEMU: Checking for hardware virtualization<pad>: FAIL (hint)`."""
    word = f"{_COLORS[check.result]}{check.result}\033[0m" if color else str(check.result)
    hint = f" ({check.detail})" if check.detail else ""
    return f"{check.prefix:>6}: Checking {check.name:<{NAME_WIDTH}}: {word}{hint}\n"


def format_checks(checks: list[Check], color: bool = False) -> str:
    return "".join(format_check(c, color) for c in checks)


def checks_passed(checks: list[Check]) -> bool:
    """virt-host-validate's exit status: false (exit 1) when any check FAILs."""
    return all(c.result is not FAIL for c in checks)
