"""`virsh nodeinfo` and `virsh version`: the facts and their exact text layout.

`read_nodeinfo` gathers the numbers from /proc and /sys (libvirt's arithmetic for sockets,
cores and threads); `format_nodeinfo` and `format_version` print them as virsh does, without
virsh's extra blank line after every command (the CLI adds that unless --quiet, like virsh).
"""

from __future__ import annotations

from dataclasses import dataclass

from vmkit.host.cpu import read_cpuinfo, read_meminfo
from vmkit.host.roots import HostRoots, read_int
from vmkit.host.topology import read_topology


@dataclass(frozen=True)
class NodeInfo:
    """libvirt's virNodeInfo."""

    model: str  # the architecture, x86_64
    cpus: int  # online logical CPUs
    mhz: int  # cpu MHz of /proc/cpuinfo, truncated (as libvirt does)
    nodes: int  # NUMA cells
    sockets: int  # per NUMA cell
    cores: int  # per socket
    threads: int  # per core
    memory_kib: int  # MemTotal


def read_nodeinfo(roots: HostRoots | None = None) -> NodeInfo:
    roots = roots or HostRoots()
    cpu = read_cpuinfo(roots)
    topology = read_topology(roots)
    nodes, sockets, cores, threads = topology.counts()
    mhz = int(cpu.mhz)
    if not mhz:
        khz = read_int(roots.sys / "devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq")
        mhz = khz // 1000
    return NodeInfo(
        model=cpu.arch,
        cpus=len(topology.cpus) or cpu.count,
        mhz=mhz,
        nodes=nodes,
        sockets=sockets,
        cores=cores,
        threads=threads,
        memory_kib=read_meminfo(roots).get("MemTotal", 0),
    )


def format_nodeinfo(info: NodeInfo) -> str:
    """virsh's layout: the label left-aligned in 20 columns, a space, the value."""
    rows = [
        ("CPU model:", info.model),
        ("CPU(s):", str(info.cpus)),
        ("CPU frequency:", f"{info.mhz} MHz"),
        ("CPU socket(s):", str(info.sockets)),
        ("Core(s) per socket:", str(info.cores)),
        ("Thread(s) per core:", str(info.threads)),
        ("NUMA cell(s):", str(info.nodes)),
        ("Memory size:", f"{info.memory_kib} KiB"),
    ]
    return "".join(f"{label:<20} {value}\n" for label, value in rows)


def format_version(vmkit_version: str, qemu_version: str | None) -> str:
    """virsh version's four lines, vmkit standing where libvirt stands.

    `qemu_version` is "7.2.22" (QemuInfo.version_string); None when QEMU is missing, in which
    case the hypervisor line is left out (virsh does the same without a hypervisor).
    """
    lines = [
        f"Compiled against library: vmkit {vmkit_version}",
        f"Using library: vmkit {vmkit_version}",
        f"Using API: QEMU {vmkit_version}",
    ]
    if qemu_version:
        lines.append(f"Running hypervisor: QEMU {qemu_version}")
    return "".join(f"{line}\n" for line in lines)
