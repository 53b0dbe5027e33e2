"""cpu.py, topology.py and roots.py over the fake trees."""

from __future__ import annotations

import pytest
from hostdata import roots_of

from vmkit.host.cpu import parse_cpuinfo, read_cpuinfo, read_meminfo
from vmkit.host.roots import format_cpu_list, parse_cpu_list
from vmkit.host.topology import read_topology


@pytest.mark.parametrize(
    ("text", "cpus"),
    [("0-3,8,10-11", [0, 1, 2, 3, 8, 10, 11]), ("5", [5]), ("", []), ("0-1\n", [0, 1])],
)
def test_cpu_list_round_trip(text: str, cpus: list[int]) -> None:
    assert parse_cpu_list(text) == cpus
    if cpus:
        assert parse_cpu_list(format_cpu_list(cpus)) == cpus


def test_format_cpu_list_collapses_runs() -> None:
    assert format_cpu_list([5, 0, 1, 2]) == "0-2,5"


def test_pvm_cpuinfo_has_no_hardware_virtualization() -> None:
    cpu = read_cpuinfo(roots_of("pvm"))
    assert (cpu.vendor, cpu.family, cpu.model, cpu.stepping) == ("AuthenticAMD", 25, 17, 1)
    assert cpu.vendor_short == "AMD"
    assert cpu.count == 2
    assert cpu.virt_flag is None and cpu.paging_flag is None
    assert cpu.microcode == 0x1000065
    assert cpu.phys_bits == 48
    assert int(cpu.mhz) == 2596


def test_intel_vmx_flags_line_is_merged() -> None:
    cpu = read_cpuinfo(roots_of("intel"))
    assert cpu.virt_flag == "vmx"
    assert cpu.paging_flag == "ept"
    assert "unrestricted_guest" in cpu.flags  # only on the "vmx flags" line


def test_amd_has_svm_and_npt() -> None:
    cpu = read_cpuinfo(roots_of("amd"))
    assert (cpu.virt_flag, cpu.paging_flag) == ("svm", "npt")


def test_parse_cpuinfo_of_nothing() -> None:
    cpu = parse_cpuinfo("")
    assert cpu.count == 0 and cpu.flags == frozenset() and cpu.microcode is None


def test_meminfo() -> None:
    assert read_meminfo(roots_of("intel"))["MemTotal"] == 65536000


def test_intel_topology_two_cells() -> None:
    topo = read_topology(roots_of("intel"))
    assert [c.id for c in topo.cells] == [0, 1]
    assert topo.counts() == (2, 1, 2, 2)  # cells, sockets per cell, cores, threads
    cell0 = topo.cells[0]
    assert [c.id for c in cell0.cpus] == [0, 1, 2, 3]
    assert cell0.cpus[1].siblings == (0, 1)
    assert cell0.pages == {4: (32768000 - 512 * 2048) // 4, 2048: 512, 1048576: 0}
    assert cell0.distances == {0: 10, 1: 21}
    assert topo.cells[1].cpus[0].socket_id == 1
    assert topo.page_sizes == (4, 2048, 1048576)


def test_amd_topology_one_socket_smt() -> None:
    assert read_topology(roots_of("amd")).counts() == (1, 1, 4, 2)


def test_without_numa_sysfs_one_cell_holds_everything() -> None:
    topo = read_topology(roots_of("nokvm"))
    assert len(topo.cells) == 1
    assert topo.cells[0].memory_kib == 8010000
    assert [c.id for c in topo.cpus] == [0, 1, 2, 3]
    assert topo.counts() == (1, 1, 2, 2)
