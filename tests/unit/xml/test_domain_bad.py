"""Bad domain XML: each tests/data/domain-bad/<case>.xml fails with the message in <case>.err.

The message is exact (with the line where there is one); the error is an InvalidConfig (exit
code 2). `pytest --regen-golden` rewrites the .err files; review the diff like code.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from vmkit.errors import InvalidConfig
from vmkit.model.devices import Disk
from vmkit.model.domain import Domain
from vmkit.model.validate import validate_domain
from vmkit.xml.domain import parse_domain, parse_domain_result

DATA = Path(__file__).resolve().parents[2] / "data" / "domain-bad"
CASES = sorted(DATA.glob("*.xml"))
GOOD = Path(__file__).resolve().parents[2] / "data" / "domain"


def test_there_are_at_least_35_bad_cases() -> None:
    assert len(CASES) >= 35


@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_bad_case_fails_with_the_expected_message(case: Path, regen_golden: bool) -> None:
    with pytest.raises(InvalidConfig) as info:
        parse_domain(case.read_bytes())
    expected = case.with_suffix(".err")
    if regen_golden:
        expected.write_text(f"{info.value}\n")
    assert str(info.value) == expected.read_text().rstrip("\n")
    assert info.value.exit_code == 2


def test_every_bad_case_has_an_expected_message() -> None:
    errs = {p.stem for p in DATA.glob("*.err")}
    assert errs == {c.stem for c in CASES}


@pytest.mark.parametrize(
    "case",
    [
        "malformed-premature-end",
        "unknown-element-in-devices",
        "unknown-attribute-in-disk-target",
        "duplicate-target-dev",
        "hostdev-pci-passthrough",
    ],
)
def test_errors_carry_their_line(case: Path) -> None:
    with pytest.raises(InvalidConfig) as info:
        parse_domain((DATA / f"{case}.xml").read_bytes())
    assert info.value.line is not None
    assert f"line {info.value.line}" in str(info.value)


def test_source_names_the_file() -> None:
    text = (DATA / "unknown-element-in-devices.xml").read_bytes()
    with pytest.raises(InvalidConfig) as info:
        parse_domain(text, source="vm.xml")
    assert str(info.value).startswith("vm.xml: unknown element <foo> in <devices> (line 9")


def test_source_names_the_file_for_semantic_errors_too() -> None:
    with pytest.raises(InvalidConfig) as info:
        parse_domain((DATA / "vcpu-zero.xml").read_bytes(), source="vm.xml")
    assert str(info.value) == "vm.xml: vcpu count must be at least 1, got 0 (line 7, /domain/vcpu)"


# skip_unknown --------------------------------------------------------------------------------


def test_skip_unknown_drops_unknown_elements_and_says_what() -> None:
    text = (DATA / "unknown-element-in-domain.xml").read_bytes()
    result = parse_domain_result(text, skip_unknown=True)
    assert result.domain.name == "anchor-unknown"
    assert result.dropped == [
        "unknown element <bogusElement> in <domain> (line 5, /domain/bogusElement)"
    ]


def test_skip_unknown_drops_unknown_attributes() -> None:
    text = (DATA / "unknown-attribute-in-disk-target.xml").read_bytes()
    result = parse_domain_result(text, skip_unknown=True)
    assert result.domain.devices.disks[0].target_dev == "vda"
    assert result.dropped == [
        "unknown attribute 'speed' in <target> (line 10, /domain/devices/disk/target/@speed)"
    ]


def test_skip_unknown_still_refuses_libvirt_xml_vmkit_cannot_run() -> None:
    text = (DATA / "hostdev-pci-passthrough.xml").read_bytes()
    with pytest.raises(InvalidConfig, match="<hostdev> is libvirt domain XML"):
        parse_domain(text, skip_unknown=True)


def test_skip_unknown_still_checks_semantics() -> None:
    text = (DATA / "duplicate-target-dev.xml").read_bytes()
    with pytest.raises(InvalidConfig, match="used by more than one disk"):
        parse_domain(text, skip_unknown=True)


def test_parse_domain_result_of_a_clean_file_drops_nothing() -> None:
    result = parse_domain_result((GOOD / "minimal.xml").read_bytes())
    assert result.dropped == []


# checks the XML cannot reach -----------------------------------------------------------------


def test_a_nul_in_a_disk_source_is_refused_via_the_model() -> None:
    # XML 1.0 cannot hold a NUL (see malformed-nul-char-ref-in-path); the model API can.
    dom = Domain(name="nul")
    dom.devices.disks.append(Disk(source="/var/lib/vmkit/images/a\x00b.img", target_dev="vda"))
    with pytest.raises(InvalidConfig, match="source path contains a NUL character"):
        validate_domain(dom)


def test_machine_type_qemu_does_not_have() -> None:
    text = (GOOD / "machine-q35.xml").read_bytes()
    machines = {"pc", "pc-i440fx-7.2", "q35", "pc-q35-7.2", "microvm"}
    assert parse_domain(text, machines=machines).os.machine == "q35"
    with pytest.raises(InvalidConfig) as info:
        parse_domain(text, machines={"pc", "pc-i440fx-7.2", "microvm"})
    assert str(info.value) == (
        "machine type 'q35' is not supported by this QEMU (line 6, /domain/os/type/@machine)"
    )


def test_str_input_with_an_encoding_declaration_parses() -> None:
    text = "<?xml version='1.0' encoding='UTF-8'?>\n" + (GOOD / "minimal.xml").read_text()
    assert parse_domain(text).name == "minimal"


def test_bytes_input_in_latin1_parses() -> None:
    text = (GOOD / "minimal.xml").read_text().replace("<name>minimal", "<name>caf\u00e9")
    data = b"<?xml version='1.0' encoding='ISO-8859-1'?>\n" + text.encode("latin-1")
    assert parse_domain(data).name == "caf\u00e9"
