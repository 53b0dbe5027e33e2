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

The facade is lazy (PEP 562): importing one module of this package (say qemu_info) does not
import the others, which keeps commands that never probe the host fast.
"""

from __future__ import annotations

from vmkit.lazy import lazy_getattr

TYPE_CHECKING = False
if TYPE_CHECKING:
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

_HOME = {
    "AccelInfo": "kvm",
    "Check": "validate",
    "CheckResult": "validate",
    "CpuModel": "qemu_help",
    "DeviceType": "qemu_help",
    "HostFacts": "capabilities",
    "HostRoots": "roots",
    "MachineType": "qemu_help",
    "NodeInfo": "nodeinfo",
    "QemuInfo": "qemu_info",
    "capabilities_xml": "report",
    "checks_passed": "validate",
    "detect_accel": "kvm",
    "find_qemu": "qemu_info",
    "format_checks": "validate",
    "format_nodeinfo": "nodeinfo",
    "format_version": "nodeinfo",
    "host_cache_file": "report",
    "host_checks": "report",
    "host_validate_text": "report",
    "load_qemu_info": "qemu_info",
    "nodeinfo_text": "report",
    "read_host_facts": "capabilities",
    "read_nodeinfo": "nodeinfo",
    "render_capabilities": "capabilities",
    "validate_host": "validate",
    "version_text": "report",
}


__getattr__ = lazy_getattr(__name__, _HOME)

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
