"""domain_schema: what libvirt's domain schema knows, read only on the error path."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from vmkit.errors import InvalidConfig
from vmkit.xml import domain_schema
from vmkit.xml.domain import parse_domain

GOOD = Path(__file__).resolve().parents[2] / "data" / "domain"
QEMU_NS = "{http://libvirt.org/schemas/domain/qemu/1.0}"


@pytest.fixture
def fresh_index() -> Iterator[None]:
    domain_schema._load.cache_clear()
    yield
    domain_schema._load.cache_clear()


def test_parsing_good_xml_never_reads_the_schema(fresh_index: None) -> None:
    for case in sorted(GOOD.glob("*.xml")):
        parse_domain(case.read_bytes())
    assert domain_schema._load.cache_info().misses == 0


@pytest.mark.parametrize(
    ("parent", "child", "known"),
    [
        ("devices", "hostdev", True),
        ("devices", "filesystem", True),
        ("domain", "numatune", True),
        ("domain", "genid", True),
        ("domain", f"{QEMU_NS}commandline", True),
        ("", "domain", True),
        ("metadata", "anything-at-all", True),
        ("devices", "foo", False),
        ("domain", "disk", False),  # libvirt's, but not in that place
        ("domain", "commandline", False),  # only in the qemu namespace
    ],
)
def test_knows_element(parent: str, child: str, known: bool) -> None:
    assert domain_schema.knows_element(parent, child) is known


def test_knows_attribute_in_its_place() -> None:
    assert domain_schema.knows_attribute("domain", "os", "firmware")
    assert domain_schema.knows_attribute("features", "apic", "eoi")
    assert not domain_schema.knows_attribute("features", "apic", "colour")


def test_attribute_values_listed_by_libvirt() -> None:
    assert {"vnc", "spice", "sdl"} <= (
        domain_schema.attribute_values("devices", "graphics", "type") or set()
    )
    assert "network" in (domain_schema.attribute_values("devices", "disk", "type") or set())
    assert domain_schema.attribute_values("interface", "model", "type") is None  # free text


def test_text_values_listed_by_libvirt() -> None:
    assert {"hvm", "xen", "linux"} <= (domain_schema.text_values("os", "type") or set())
    assert "coredump-destroy" not in (domain_schema.text_values("domain", "on_poweroff") or set())
    assert domain_schema.text_values("domain", "name") is None


def test_without_the_schema_everything_is_unknown(
    fresh_index: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(domain_schema, "SCHEMA_DIR", tmp_path)
    assert not domain_schema.knows_element("devices", "hostdev")
    assert domain_schema.attribute_values("devices", "graphics", "type") is None
    text = (
        "<domain type='qemu'><name>x</name><memory>1024</memory><os><type>hvm</type></os>"
        "<devices><hostdev/></devices></domain>"
    )
    with pytest.raises(InvalidConfig, match="unknown element <hostdev> in <devices>"):
        parse_domain(text)
