"""A few facts of a stored domain definition, read fast for `list` and `dominfo`.

Uses the standard library's expat parser on XML that vmkit itself rendered (so no entities, no
surprises) to stay clear of lxml's import cost on the hot path of the CLI.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass

from vmkit.model.units import to_kib


@dataclass(frozen=True)
class DomainSummary:
    os_type: str
    vcpus: int
    max_memory_kib: int
    used_memory_kib: int
    title: str
    macs: tuple[str, ...]


def summarize(xml: str) -> DomainSummary:
    root = ET.fromstring(xml)
    vcpu = root.find("vcpu")
    vcpus = 1
    if vcpu is not None and vcpu.text:
        vcpus = int(vcpu.get("current") or vcpu.text)
    mem = _kib(root.find("memory"))
    cur = _kib(root.find("currentMemory")) or mem
    os_type = root.findtext("os/type") or "hvm"
    macs = tuple(
        m.get("address", "") for m in root.iterfind("devices/interface/mac") if m.get("address")
    )
    return DomainSummary(os_type, vcpus, mem, cur, root.findtext("title") or "", macs)


def _kib(el: ET.Element | None) -> int:
    if el is None or not el.text:
        return 0
    return to_kib(el.text, el.get("unit"))
