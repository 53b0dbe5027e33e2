"""NUMA cells, logical CPUs and memory pages of the host, read from sysfs.

Owns the numbers that `nodeinfo` and the capabilities' <topology> print; reads
sys/devices/system/{node,cpu}, sys/kernel/mm/hugepages and proc/meminfo through a `HostRoots`.
A kernel without NUMA sysfs is one cell holding every online CPU and all of MemTotal.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from vmkit.host.cpu import read_meminfo
from vmkit.host.roots import HostRoots, parse_cpu_list, read_int, read_text

BASE_PAGE_KIB = 4


@dataclass(frozen=True)
class HostCpu:
    """One logical CPU and where it sits."""

    id: int
    socket_id: int  # topology/physical_package_id
    die_id: int  # topology/die_id
    core_id: int  # topology/core_id
    siblings: tuple[int, ...]  # topology/thread_siblings_list


@dataclass(frozen=True)
class NumaCell:
    """One NUMA node: its memory, its pages per size and its CPUs."""

    id: int
    memory_kib: int
    pages: dict[int, int]  # page size KiB -> number of pages
    cpus: tuple[HostCpu, ...]
    distances: dict[int, int] = field(default_factory=dict)  # other cell id -> distance


@dataclass(frozen=True)
class Topology:
    """The host's cells, with the counts virsh nodeinfo prints (libvirt's arithmetic)."""

    cells: tuple[NumaCell, ...]
    page_sizes: tuple[int, ...]  # KiB, ascending: 4, 2048, 1048576

    @property
    def cpus(self) -> list[HostCpu]:
        return [cpu for cell in self.cells for cpu in cell.cpus]

    def counts(self) -> tuple[int, int, int, int]:
        """(cells, sockets per cell, cores per socket, threads per core).

        Like libvirt: when cells x sockets x cores x threads is not the number of CPUs (odd
        topologies), fall back to 1 cell with 1 socket of N cores with 1 thread each.
        """
        sockets = cores = threads = 1
        for cell in self.cells:
            by_socket: dict[int, dict[int, int]] = {}
            for cpu in cell.cpus:
                core_threads = by_socket.setdefault(cpu.socket_id, {})
                core_threads[cpu.core_id] = core_threads.get(cpu.core_id, 0) + 1
            sockets = max(sockets, len(by_socket))
            for core_threads in by_socket.values():
                cores = max(cores, len(core_threads))
                threads = max(threads, *core_threads.values())
        ncpus = len(self.cpus)
        if ncpus and len(self.cells) * sockets * cores * threads != ncpus:
            return 1, 1, ncpus, 1
        return len(self.cells), sockets, cores, threads

    @property
    def dies_per_socket(self) -> int:
        dies: dict[int, set[int]] = {}
        for cpu in self.cpus:
            dies.setdefault(cpu.socket_id, set()).add(cpu.die_id)
        return max((len(d) for d in dies.values()), default=1)


def read_cpu(roots: HostRoots, cpu_id: int) -> HostCpu:
    """Topology of one logical CPU from sys/devices/system/cpu/cpuN/topology."""
    topo = roots.sys / f"devices/system/cpu/cpu{cpu_id}/topology"
    siblings = parse_cpu_list(read_text(topo / "thread_siblings_list")) or [cpu_id]
    return HostCpu(
        id=cpu_id,
        socket_id=max(read_int(topo / "physical_package_id"), 0),
        die_id=max(read_int(topo / "die_id"), 0),
        core_id=read_int(topo / "core_id", cpu_id),
        siblings=tuple(siblings),
    )


def read_page_sizes(roots: HostRoots) -> list[int]:
    """Base page size plus every huge page size the kernel offers, in KiB."""
    sizes = {BASE_PAGE_KIB}
    hugedir = roots.sys / "kernel/mm/hugepages"
    if hugedir.is_dir():
        for entry in hugedir.iterdir():
            m = re.fullmatch(r"hugepages-(\d+)kB", entry.name)
            if m:
                sizes.add(int(m.group(1)))
    return sorted(sizes)


def _cell_pages(node_dir: Path | None, memory_kib: int, sizes: list[int]) -> dict[int, int]:
    pages: dict[int, int] = {}
    huge_kib = 0
    for size in sizes[1:]:
        count = read_int(node_dir / f"hugepages/hugepages-{size}kB/nr_hugepages") if node_dir else 0
        pages[size] = count
        huge_kib += count * size
    pages = {BASE_PAGE_KIB: max(memory_kib - huge_kib, 0) // BASE_PAGE_KIB, **pages}
    return pages


def _node_ids(roots: HostRoots) -> list[int]:
    nodes = roots.sys / "devices/system/node"
    if not nodes.is_dir():
        return []
    ids = [int(m.group(1)) for p in nodes.iterdir() if (m := re.fullmatch(r"node(\d+)", p.name))]
    return sorted(ids)


def _online_cpus(roots: HostRoots) -> list[int]:
    online = parse_cpu_list(read_text(roots.sys / "devices/system/cpu/online"))
    if online:
        return online
    text = read_text(roots.proc / "cpuinfo")
    return list(range(len(re.findall(r"^processor\s*:", text, re.MULTILINE))))


def read_topology(roots: HostRoots | None = None) -> Topology:
    """The host's NUMA cells with their memory, pages and CPUs."""
    roots = roots or HostRoots()
    sizes = read_page_sizes(roots)
    online = set(_online_cpus(roots))
    cells: list[NumaCell] = []
    for node in _node_ids(roots):
        node_dir = roots.sys / f"devices/system/node/node{node}"
        m = re.search(r"MemTotal:\s+(\d+)", read_text(node_dir / "meminfo"))
        memory = int(m.group(1)) if m else 0
        cpu_ids = [c for c in parse_cpu_list(read_text(node_dir / "cpulist")) if c in online]
        if not cpu_ids and not memory:
            continue
        dist = [int(d) for d in read_text(node_dir / "distance").split() if d.isdigit()]
        cells.append(
            NumaCell(
                id=node,
                memory_kib=memory,
                pages=_cell_pages(node_dir, memory, sizes),
                cpus=tuple(read_cpu(roots, c) for c in cpu_ids),
                distances=dict(zip(_node_ids(roots), dist, strict=False)),
            )
        )
    if not cells:
        memory = read_meminfo(roots).get("MemTotal", 0)
        cpus = tuple(read_cpu(roots, c) for c in sorted(online))
        cells.append(NumaCell(0, memory, _cell_pages(None, memory, sizes), cpus, {0: 10}))
    return Topology(tuple(cells), tuple(sizes))
