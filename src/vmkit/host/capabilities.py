"""`vmkit capabilities`: the host and its guests in libvirt's capabilities XML format.

`read_host_facts` gathers the host part (uuid, CPU, power management, IOMMU, NUMA topology)
through a `HostRoots`; `render_capabilities` is a pure function of those facts, a `QemuInfo` and
an `AccelInfo`, and writes XML the way libvirt lays it out (single-quoted attributes, two-space
indent, a blank line between <host> and each <guest>). The result validates against libvirt's
capability.rng. Guests: hvm i686 and x86_64 with this QEMU's machine types (aliases carry
canonical=), domain type qemu always and kvm only when KVM is usable.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from vmkit.host.cpu import CpuInfo, read_cpuinfo
from vmkit.host.cpu_model import guess_host_model, qemu_feature_names
from vmkit.host.kvm import AccelInfo
from vmkit.host.qemu_info import QemuInfo
from vmkit.host.roots import HostRoots, format_cpu_list, read_text
from vmkit.host.topology import NumaCell, Topology, read_topology

_HIDDEN_MACHINES = {"none"}  # libvirt leaves QEMU's empty machine out too


@dataclass(frozen=True)
class HostFacts:
    """Everything <host> says."""

    uuid: str | None
    cpu: CpuInfo
    topology: Topology
    power: tuple[str, ...]  # suspend_mem, suspend_disk, suspend_hybrid
    iommu: bool  # sys/kernel/iommu_groups is not empty


def _as_uuid(text: str) -> str | None:
    hexdigits = re.sub(r"[^0-9a-f]", "", text.strip().lower())
    if len(hexdigits) != 32 or len(set(hexdigits)) == 1:  # missing, all 0 or all f
        return None
    h = hexdigits
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def read_host_uuid(roots: HostRoots) -> str | None:
    """DMI product_uuid when the firmware set one, else /etc/machine-id as a UUID."""
    return _as_uuid(read_text(roots.sys / "class/dmi/id/product_uuid")) or _as_uuid(
        read_text(roots.etc / "machine-id")
    )


def read_power_management(roots: HostRoots) -> tuple[str, ...]:
    """libvirt's suspend targets from sys/power/state ("freeze mem disk")."""
    states = read_text(roots.sys / "power/state").split()
    found = [f"suspend_{s}" for s in ("mem", "disk") if s in states]
    if len(found) == 2:
        found.append("suspend_hybrid")
    return tuple(found)


def iommu_enabled(roots: HostRoots) -> bool:
    groups = roots.sys / "kernel/iommu_groups"
    try:
        return any(groups.iterdir())
    except OSError:
        return False


def read_host_facts(roots: HostRoots | None = None) -> HostFacts:
    roots = roots or HostRoots()
    return HostFacts(
        uuid=read_host_uuid(roots),
        cpu=read_cpuinfo(roots),
        topology=read_topology(roots),
        power=read_power_management(roots),
        iommu=iommu_enabled(roots),
    )


def escape(text: str) -> str:
    """Text made safe for XML character data and single-quoted attributes.

    (xml.sax.saxutils would do, but importing it pulls in urllib and email: 30 ms per CLI call.)
    """
    return (
        text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("'", "&apos;")
    )


def _attrs(**attrs: object) -> str:
    """Attributes as ` name='value'` in the given order, escaped; None values are left out."""
    return "".join(f" {k}='{escape(str(v))}'" for k, v in attrs.items() if v is not None)


def _host_cpu(host: HostFacts, qemu: QemuInfo) -> list[str]:
    cpu, topo = host.cpu, host.topology
    nodes, sockets, cores, threads = topo.counts()
    out = ["    <cpu>", f"      <arch>{escape(cpu.arch)}</arch>"]
    out.append(f"      <model>{escape(guess_host_model(cpu, qemu.cpu_models))}</model>")
    if cpu.vendor:
        out.append(f"      <vendor>{escape(cpu.vendor_short)}</vendor>")
    if cpu.microcode:
        out.append(f"      <microcode{_attrs(version=cpu.microcode)}/>")
    if cpu.family:
        sig = _attrs(family=cpu.family, model=cpu.model, stepping=cpu.stepping)
        out.append(f"      <signature{sig}/>")
    dies = topo.dies_per_socket
    topology = _attrs(sockets=nodes * sockets, dies=dies, cores=cores // dies or 1, threads=threads)
    out.append(f"      <topology{topology}/>")
    if cpu.phys_bits:
        out.append(f"      <maxphysaddr{_attrs(mode='emulate', bits=cpu.phys_bits)}/>")
    for name in qemu_feature_names(cpu.flags, qemu.cpu_flags):
        out.append(f"      <feature{_attrs(name=name)}/>")
    for size in topo.page_sizes:
        out.append(f"      <pages{_attrs(unit='KiB', size=size)}/>")
    out.append("    </cpu>")
    return out


def _cell(cell: NumaCell) -> list[str]:
    out = [f"        <cell{_attrs(id=cell.id)}>"]
    out.append(f"          <memory unit='KiB'>{cell.memory_kib}</memory>")
    for size, count in cell.pages.items():
        out.append(f"          <pages{_attrs(unit='KiB', size=size)}>{count}</pages>")
    if cell.distances:
        out.append("          <distances>")
        for other, value in cell.distances.items():
            out.append(f"            <sibling{_attrs(id=other, value=value)}/>")
        out.append("          </distances>")
    out.append(f"          <cpus{_attrs(num=len(cell.cpus))}>")
    for c in cell.cpus:
        where = _attrs(id=c.id, socket_id=c.socket_id, die_id=c.die_id, core_id=c.core_id)
        out.append(f"            <cpu{where}{_attrs(siblings=format_cpu_list(list(c.siblings)))}/>")
    out += ["          </cpus>", "        </cell>"]
    return out


def _host(host: HostFacts, qemu: QemuInfo) -> list[str]:
    out = ["  <host>"]
    if host.uuid:
        out.append(f"    <uuid>{host.uuid}</uuid>")
    out += _host_cpu(host, qemu)
    if host.power:
        out += ["    <power_management>", *(f"      <{p}/>" for p in host.power)]
        out.append("    </power_management>")
    else:
        out.append("    <power_management/>")
    out.append(f"    <iommu support='{'yes' if host.iommu else 'no'}'/>")
    out += [
        "    <migration_features>",
        "      <live/>",
        "      <uri_transports>",
        "        <uri_transport>tcp</uri_transport>",
        "      </uri_transports>",
        "    </migration_features>",
        "    <topology>",
        f"      <cells num='{len(host.topology.cells)}'>",
    ]
    for cell in host.topology.cells:
        out += _cell(cell)
    out += ["      </cells>", "    </topology>"]
    out += ["    <secmodel>", "      <model>none</model>", "      <doi>0</doi>", "    </secmodel>"]
    out.append("  </host>")
    return out


def _machines(qemu: QemuInfo) -> list[str]:
    """Canonical machines in QEMU's order, each followed by its aliases."""
    out: list[str] = []
    for m in qemu.machines.values():
        if m.canonical is not None or m.name in _HIDDEN_MACHINES:
            continue
        deprecated = "yes" if m.deprecated else None
        out.append(f"      <machine{_attrs(deprecated=deprecated)}>{escape(m.name)}</machine>")
        for alias in qemu.aliases_of(m.name):
            attrs = _attrs(canonical=m.name, deprecated=deprecated)
            out.append(f"      <machine{attrs}>{escape(alias)}</machine>")
    return out


def _guest(arch: str, wordsize: int, qemu: QemuInfo, accel: AccelInfo) -> list[str]:
    out = ["  <guest>", "    <os_type>hvm</os_type>", f"    <arch name='{arch}'>"]
    out.append(f"      <wordsize>{wordsize}</wordsize>")
    out.append(f"      <emulator>{escape(str(qemu.path))}</emulator>")
    out += _machines(qemu)
    out.append("      <domain type='qemu'/>")
    if accel.kvm_usable:
        out.append("      <domain type='kvm'/>")
    out += ["    </arch>", "    <features>"]
    if wordsize == 32:
        out += ["      <pae/>", "      <nonpae/>"]
    out += [
        "      <acpi default='on' toggle='yes'/>",
        "      <apic default='on' toggle='no'/>",
        "      <cpuselection/>",
        "      <deviceboot/>",
        "      <disksnapshot default='on' toggle='no'/>",
        "    </features>",
        "  </guest>",
    ]
    return out


def render_capabilities(host: HostFacts, qemu: QemuInfo, accel: AccelInfo) -> str:
    """The capabilities document, ending with a newline (virsh prints one more)."""
    lines = ["<capabilities>", "", *_host(host, qemu), ""]
    for arch, wordsize in (("i686", 32), ("x86_64", 64)):
        lines += [*_guest(arch, wordsize, qemu, accel), ""]
    lines.append("</capabilities>")
    return "\n".join(lines) + "\n"
