"""Valid domain XML cases in tests/data/domain: parse, round trip, libvirt's schema, coverage.

libvirt's domain.rng is the oracle: every case file and everything render_domain prints must
validate against it. Together the cases must set every field of every model dataclass and use
every value of every model enum (a test fails naming what no case exercises).
"""

from __future__ import annotations

import dataclasses
import enum
import inspect
import typing
from collections.abc import Iterator
from pathlib import Path

import pytest
from lxml import etree

from vmkit.model import devices as model_devices
from vmkit.model import domain as model_domain
from vmkit.model.devices import (
    CharDevice,
    Disk,
    DiskBus,
    Graphics,
    GraphicsType,
    Interface,
    InterfaceType,
    NicModel,
    Video,
    VideoModel,
)
from vmkit.model.domain import Domain
from vmkit.xml.domain import parse_domain, render_domain

DATA = Path(__file__).resolve().parents[2] / "data" / "domain"
CASES = sorted(DATA.glob("*.xml"))
SCHEMA = Path("/usr/share/libvirt/schemas/domain.rng")
MODEL_MODULES = (model_domain, model_devices)

# Fields no case can set to another value, and why.
UNEXERCISABLE_FIELDS = {
    ("Os", "type"): "'hvm' is the only OS type QEMU runs",
    ("Os", "arch"): "vmkit runs x86_64 guests only",
    ("Rng", "model"): "'virtio' is the only rng model vmkit takes",
}
UNEXERCISABLE_VALUES: dict[tuple[type[enum.Enum], str], str] = {
    (
        GraphicsType,
        GraphicsType.NONE.value,
    ): "libvirt has no <graphics type='none'>: headless is no <graphics>",
}


@pytest.fixture(scope="session")
def domain_rng() -> etree.RelaxNG:
    """libvirt's own domain schema (slow-ish to load: once per session)."""
    if not SCHEMA.exists():
        pytest.fail(f"{SCHEMA} is missing: install libvirt0 (scripts/install does)")
    return etree.RelaxNG(etree.parse(str(SCHEMA)))


def _assert_valid(rng: etree.RelaxNG, text: str | bytes, what: str) -> None:
    data = text.encode() if isinstance(text, str) else text
    if not rng.validate(etree.fromstring(data)):
        errors = "\n".join(str(e) for e in rng.error_log)
        pytest.fail(f"{what} does not validate against domain.rng:\n{errors}")


def test_there_are_at_least_45_cases() -> None:
    assert len(CASES) >= 45


@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_case_validates_against_libvirt_schema(case: Path, domain_rng: etree.RelaxNG) -> None:
    _assert_valid(domain_rng, case.read_bytes(), case.name)


@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
@pytest.mark.parametrize("inactive", [False, True], ids=["live", "inactive"])
def test_render_validates_against_libvirt_schema(
    case: Path, inactive: bool, domain_rng: etree.RelaxNG
) -> None:
    dom = parse_domain(case.read_bytes(), source=case.name)
    _assert_valid(domain_rng, render_domain(dom, inactive=inactive), f"render of {case.name}")


@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_parse_render_parse_gives_an_equal_model(case: Path) -> None:
    dom = parse_domain(case.read_bytes(), source=case.name)
    text = render_domain(dom)
    assert parse_domain(text) == dom
    assert render_domain(parse_domain(text)) == text  # rendering is stable


@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_inactive_render_parses(case: Path) -> None:
    dom = parse_domain(case.read_bytes(), source=case.name)
    again = parse_domain(render_domain(dom, inactive=True))
    assert again.id is None
    assert again.name == dom.name
    assert len(again.devices.disks) == len(dom.devices.disks)


# coverage ------------------------------------------------------------------------------------


def _model_dataclasses() -> list[type]:
    found = []
    for module in MODEL_MODULES:
        for _, obj in inspect.getmembers(module, inspect.isclass):
            if dataclasses.is_dataclass(obj) and obj.__module__ == module.__name__:
                found.append(obj)
    return found


def _model_enums() -> list[type[enum.Enum]]:
    found: list[type[enum.Enum]] = []
    for module in MODEL_MODULES:
        for _, obj in inspect.getmembers(module, inspect.isclass):
            if issubclass(obj, enum.Enum) and obj.__module__ == module.__name__:
                found.append(obj)
    return found


def _dataclasses_in(tp: object) -> Iterator[type]:
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        yield tp
    for arg in typing.get_args(tp):
        yield from _dataclasses_in(arg)


def test_every_model_dataclass_is_reachable_from_domain() -> None:
    reached: set[type] = set()
    todo: list[type] = [Domain]
    while todo:
        cls = todo.pop()
        if cls in reached:
            continue
        reached.add(cls)
        for hint in typing.get_type_hints(cls).values():
            todo.extend(_dataclasses_in(hint))
    assert set(_model_dataclasses()) <= reached


def _is_set(f: dataclasses.Field[object], value: object) -> bool:
    if f.default is not dataclasses.MISSING:
        return bool(value != f.default)
    if f.default_factory is not dataclasses.MISSING:
        return bool(value != f.default_factory())
    return True  # a required field is set wherever its object exists


def _walk(obj: object, fields_seen: set[tuple[str, str]], values_seen: set[object]) -> None:
    if isinstance(obj, enum.Enum):
        values_seen.add((type(obj), obj.value))  # StrEnum members of two enums compare equal
    elif dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        for f in dataclasses.fields(obj):
            value = getattr(obj, f.name)
            if _is_set(f, value):
                fields_seen.add((type(obj).__name__, f.name))
            _walk(value, fields_seen, values_seen)
    elif isinstance(obj, list | tuple):
        for item in obj:
            _walk(item, fields_seen, values_seen)
    elif isinstance(obj, dict):
        for item in obj.values():
            _walk(item, fields_seen, values_seen)


def _exercised() -> tuple[set[tuple[str, str]], set[object]]:
    fields_seen: set[tuple[str, str]] = set()
    values_seen: set[object] = set()
    for case in CASES:
        _walk(parse_domain(case.read_bytes()), fields_seen, values_seen)
    return fields_seen, values_seen


def test_every_model_field_is_set_by_some_case() -> None:
    fields_seen, _ = _exercised()
    missing = [
        f"{cls.__name__}.{f.name}"
        for cls in _model_dataclasses()
        for f in dataclasses.fields(cls)
        if (cls.__name__, f.name) not in fields_seen
        and (cls.__name__, f.name) not in UNEXERCISABLE_FIELDS
    ]
    assert not missing, f"no case sets these fields to a non-default value: {missing}"


def test_every_model_enum_value_is_used_by_some_case() -> None:
    _, values_seen = _exercised()
    missing = [
        f"{e.__name__}.{member.name}"
        for e in _model_enums()
        for member in e
        if (e, member.value) not in values_seen and (e, member.value) not in UNEXERCISABLE_VALUES
    ]
    assert not missing, f"no case uses these enum values: {missing}"


def test_unexercisable_lists_name_real_things() -> None:
    names = {(c.__name__, f.name) for c in _model_dataclasses() for f in dataclasses.fields(c)}
    assert set(UNEXERCISABLE_FIELDS) <= names
    fields_seen, values_seen = _exercised()
    assert not set(UNEXERCISABLE_FIELDS) & fields_seen, "an exemption is no longer needed"
    assert not set(UNEXERCISABLE_VALUES) & values_seen, "an exemption is no longer needed"


def test_an_api_built_domain_renders_valid_xml(domain_rng: etree.RelaxNG) -> None:
    """What the CLI or REST API builds (no XML behind it) renders valid too."""
    dom = Domain(name="api-built", memory_kib=262144)
    dom.os.machine = "q35"
    dom.devices.disks.append(
        Disk(source="/var/lib/vmkit/images/api.qcow2", target_dev="vda", target_bus=DiskBus.VIRTIO)
    )
    dom.devices.interfaces.append(
        Interface(type=InterfaceType.NETWORK, source_network="default", model_type=NicModel.VIRTIO)
    )
    dom.devices.serials.append(CharDevice(kind="serial", target_port=0))
    dom.devices.graphics.append(Graphics(type=GraphicsType.NONE))
    dom.devices.videos.append(Video(model_type=VideoModel.NONE))
    for inactive in (False, True):
        _assert_valid(domain_rng, render_domain(dom, inactive=inactive), "api-built domain")
