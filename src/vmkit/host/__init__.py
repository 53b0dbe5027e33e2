"""host layer: what this machine and its QEMU can do, and whether KVM really works.

Public facade (import from `vmkit.host`):
- `detect_accel(cache_file) -> AccelInfo(accel="kvm"|"tcg", reason)`: static checks, then a
  timed probe boot only when needed; cached (kvm.py, probe.py).
- `load_qemu_info(qemu=None, cache_file=None) -> QemuInfo` (machines, CPU models, devices,
  version; `resolve_machine("pc")`), `find_qemu()` (qemu_info.py, qemu_help.py).
- `render_capabilities`, `read_nodeinfo`/`format_nodeinfo`, `validate_host`/`format_checks`.
- report.py: one call per CLI command (`capabilities_xml`, `nodeinfo_text`, `version_text`,
  `host_validate_text`).
Readers take a `HostRoots` (proc, sys, dev, etc) so tests run on fake trees. This layer never
imports another rank-3 package and never changes the host (the bridge check works inside a
throwaway network namespace).
"""

from vmkit.host.capabilities import HostFacts, read_host_facts, render_capabilities
from vmkit.host.kvm import AccelInfo, detect_accel
from vmkit.host.nodeinfo import NodeInfo, format_nodeinfo, format_version, read_nodeinfo
from vmkit.host.qemu_help import CpuModel, DeviceType, MachineType
from vmkit.host.qemu_info import QemuInfo, find_qemu, load_qemu_info
from vmkit.host.report import (
    capabilities_xml,
    host_cache_file,
    host_checks,
    host_validate_text,
    nodeinfo_text,
    version_text,
)
from vmkit.host.roots import HostRoots
from vmkit.host.validate import Check, CheckResult, checks_passed, format_checks, validate_host

__all__ = [
    "AccelInfo",
    "Check",
    "CheckResult",
    "CpuModel",
    "DeviceType",
    "HostFacts",
    "HostRoots",
    "MachineType",
    "NodeInfo",
    "QemuInfo",
    "capabilities_xml",
    "checks_passed",
    "detect_accel",
    "find_qemu",
    "format_checks",
    "format_nodeinfo",
    "format_version",
    "host_cache_file",
    "host_checks",
    "host_validate_text",
    "load_qemu_info",
    "nodeinfo_text",
    "read_host_facts",
    "read_nodeinfo",
    "render_capabilities",
    "validate_host",
    "version_text",
]
