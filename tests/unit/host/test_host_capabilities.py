"""capabilities.py and cpu_model.py: the XML, checked against libvirt's schema and a golden file."""

from __future__ import annotations

from pathlib import Path

import pytest
from hostdata import CASES, golden, roots_of
from lxml import etree

from vmkit.host.capabilities import (
    read_host_facts,
    read_host_uuid,
    read_power_management,
    render_capabilities,
)
from vmkit.host.cpu import parse_cpuinfo
from vmkit.host.cpu_model import guess_host_model, qemu_feature_names
from vmkit.host.kvm import AccelInfo
from vmkit.host.qemu_info import QemuInfo

SCHEMA = Path("/usr/share/libvirt/schemas/capability.rng")
KVM = AccelInfo("kvm", "works")
TCG = AccelInfo("tcg", "PVM-only")


def _caps(case: str, qemu: QemuInfo, accel: AccelInfo) -> etree._Element:
    return etree.fromstring(render_capabilities(read_host_facts(roots_of(case)), qemu, accel))


@pytest.mark.skipif(not SCHEMA.exists(), reason="libvirt's schemas (package libvirt0) missing")
@pytest.mark.parametrize("case", CASES)
def test_validates_against_libvirt_schema(case: str, qemu_info: QemuInfo) -> None:
    schema = etree.RelaxNG(etree.parse(str(SCHEMA)))
    for accel in (KVM, TCG):
        doc = _caps(case, qemu_info, accel)
        assert schema.validate(doc), schema.error_log


def test_golden_intel(qemu_info: QemuInfo) -> None:
    facts = read_host_facts(roots_of("intel"))
    golden("capabilities-intel.xml", render_capabilities(facts, qemu_info, KVM))


def test_domain_types_follow_the_accelerator(qemu_info: QemuInfo) -> None:
    for accel, types in ((KVM, ["qemu", "kvm"]), (TCG, ["qemu"])):
        doc = _caps("pvm", qemu_info, accel)
        for arch in ("i686", "x86_64"):
            found = doc.xpath(f"guest/arch[@name='{arch}']/domain/@type")
            assert found == types


def test_machines_with_canonical_aliases(qemu_info: QemuInfo) -> None:
    doc = _caps("pvm", qemu_info, TCG)
    arch = doc.find("guest/arch[@name='x86_64']")
    assert arch is not None
    machines = [(m.text, m.get("canonical"), m.get("deprecated")) for m in arch.iter("machine")]
    assert ("pc-i440fx-7.2", None, None) in machines
    assert ("pc", "pc-i440fx-7.2", None) in machines
    assert ("q35", "pc-q35-7.2", None) in machines
    assert ("microvm", None, None) in machines
    assert ("pc-i440fx-1.4", None, "yes") in machines
    assert "none" not in [m[0] for m in machines]
    names = [m[0] for m in machines]
    assert names.index("q35") == names.index("pc-q35-7.2") + 1  # alias right after canonical
    assert arch.findtext("emulator") == "/usr/bin/qemu-system-x86_64"


def test_host_section_of_intel(qemu_info: QemuInfo) -> None:
    doc = _caps("intel", qemu_info, KVM)
    host = doc.find("host")
    assert host is not None
    assert host.findtext("uuid") == "4c4c4544-0047-3510-8052-b7c04f4b4d32"
    assert host.findtext("cpu/model") == "Cascadelake-Server"
    assert host.findtext("cpu/vendor") == "Intel"
    topo = host.find("cpu/topology")
    assert topo is not None
    assert [topo.get(k) for k in ("sockets", "dies", "cores", "threads")] == ["2", "1", "2", "2"]
    assert host.find("power_management/suspend_hybrid") is not None
    assert host.find("iommu").get("support") == "yes"  # type: ignore[union-attr]
    assert host.xpath("topology/cells/@num") == ["2"]
    cpu1 = host.find("topology/cells/cell[@id='0']/cpus/cpu[@id='1']")
    assert cpu1 is not None and cpu1.get("siblings") == "0-1" and cpu1.get("core_id") == "0"
    features = [f.get("name") for f in host.findall("cpu/feature")]
    assert {"vmx", "sse4-1", "tsc-deadline", "avx512vnni"} <= set(features)
    assert "constant_tsc" not in features and "ept" not in features  # Linux-only / VMX-internal


def test_uuid_sources() -> None:
    assert read_host_uuid(roots_of("pvm")) == "3d1219c7-c4c5-404a-aa1f-6d2a48adfda4"
    assert read_host_uuid(roots_of("amd")) == "fedcba98-7654-3210-fedc-ba9876543210"  # DMI 0s
    assert read_host_uuid(roots_of("nokvm")) is None  # all-zero machine-id


def test_power_management() -> None:
    assert read_power_management(roots_of("pvm")) == ()
    assert read_power_management(roots_of("amd")) == ("suspend_mem",)


@pytest.mark.parametrize(
    ("vendor", "family", "model", "stepping", "expected"),
    [
        ("AuthenticAMD", 25, 17, 1, "EPYC-Milan"),  # Genoa; QEMU 7.2 has no EPYC-Genoa
        ("AuthenticAMD", 25, 1, 1, "EPYC-Milan"),
        ("AuthenticAMD", 23, 49, 0, "EPYC-Rome"),
        ("AuthenticAMD", 23, 1, 2, "EPYC"),
        ("GenuineIntel", 6, 85, 4, "Skylake-Server"),
        ("GenuineIntel", 6, 85, 7, "Cascadelake-Server"),
        ("GenuineIntel", 6, 106, 6, "Icelake-Server"),
        ("GenuineIntel", 6, 143, 8, "Cooperlake"),  # QEMU 7.2 has no SapphireRapids
        ("GenuineIntel", 6, 999, 0, "qemu64"),
        ("CentaurHauls", 6, 15, 0, "qemu64"),
    ],
)
def test_guess_host_model(
    vendor: str, family: int, model: int, stepping: int, expected: str, qemu_info: QemuInfo
) -> None:
    text = (
        f"processor : 0\nvendor_id : {vendor}\ncpu family : {family}\nmodel : {model}\n"
        f"stepping : {stepping}\nflags : fpu lm\n"
    )
    assert guess_host_model(parse_cpuinfo(text), qemu_info.cpu_models) == expected


def test_guess_falls_back_to_older_generations() -> None:
    cpu = parse_cpuinfo("vendor_id : GenuineIntel\ncpu family : 6\nmodel : 143\nflags : lm\n")
    assert guess_host_model(cpu, {"Icelake-Server", "Haswell"}) == "Icelake-Server"
    assert guess_host_model(cpu, {"qemu64"}) == "qemu64"


def test_feature_names() -> None:
    qemu_flags = {"sse4.1", "lahf-lm", "avx2", "pni"}
    flags = ["sse4_1", "lahf_lm", "avx2", "pni", "rep_good"]
    assert qemu_feature_names(flags, qemu_flags) == ["avx2", "lahf-lm", "pni", "sse4-1"]
