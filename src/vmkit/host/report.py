"""One call per CLI command of the host layer: capabilities, nodeinfo, version, host-validate.

Each helper wires the readers together (QEMU introspection and the KVM verdict share one cache
file) and returns text ready to print; the CLI adds virsh's trailing blank line and --json
(every value here is a dataclass: `dataclasses.asdict` gives the JSON).
"""

from __future__ import annotations

from pathlib import Path

from vmkit.errors import QemuError
from vmkit.host.capabilities import read_host_facts, render_capabilities
from vmkit.host.kvm import detect_accel
from vmkit.host.nodeinfo import format_nodeinfo, format_version, read_nodeinfo
from vmkit.host.qemu_info import CACHE_NAME, QemuInfo, load_qemu_info
from vmkit.host.roots import HostRoots
from vmkit.host.validate import Check, checks_passed, format_checks, validate_host


def host_cache_file(cache_dir: Path) -> Path:
    """Where the host layer caches (Paths.cache_dir / "host.json")."""
    return cache_dir / CACHE_NAME


def capabilities_xml(cache_file: Path | None, *, roots: HostRoots | None = None) -> str:
    """`vmkit capabilities`: raises QemuError when no QEMU is installed."""
    info = load_qemu_info(None, cache_file)
    accel = detect_accel(cache_file, roots=roots, qemu=info.path)
    return render_capabilities(read_host_facts(roots), info, accel)


def nodeinfo_text(roots: HostRoots | None = None) -> str:
    """`vmkit nodeinfo`."""
    return format_nodeinfo(read_nodeinfo(roots))


def version_text(vmkit_version: str, cache_file: Path | None) -> str:
    """`vmkit version`; without QEMU the "Running hypervisor" line is left out."""
    try:
        qemu_version: str | None = load_qemu_info(None, cache_file).version_string
    except QemuError:
        qemu_version = None
    return format_version(vmkit_version, qemu_version)


def host_checks(cache_file: Path | None, *, roots: HostRoots | None = None) -> list[Check]:
    """`vmkit host-validate`'s checks (QEMU missing is a FAIL line, not an exception)."""
    info: QemuInfo | None
    try:
        info, problem = load_qemu_info(None, cache_file), ""
    except QemuError as e:
        info, problem = None, str(e)
    accel = detect_accel(cache_file, roots=roots, qemu=info.path if info else None)
    return validate_host(accel, info, roots=roots, qemu_problem=problem)


def host_validate_text(
    cache_file: Path | None, *, roots: HostRoots | None = None, color: bool = False
) -> tuple[str, bool]:
    """(report, passed): exit 1 when not passed, like virt-host-validate."""
    checks = host_checks(cache_file, roots=roots)
    return format_checks(checks, color), checks_passed(checks)
