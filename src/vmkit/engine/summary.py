"""A few facts of a stored domain definition, read fast for `list` and `dominfo`.

Uses the standard library's expat parser directly on XML that vmkit itself rendered (so no
entities, no surprises), to stay clear of lxml's import cost, and of ElementTree's and
dataclasses' (a few ms each), on the hot path of the CLI. Paths are matched like ElementTree's
`find`: relative to the root, namespaced elements never match, the text is what precedes the
first child.
"""

from __future__ import annotations

from vmkit.model.units import to_kib
from vmkit.state.frozen import Frozen

_FIRST = frozenset({"vcpu", "memory", "currentMemory", "os/type", "title"})
_MAC = "devices/interface/mac"


class DomainSummary(Frozen):
    _fields = ("os_type", "vcpus", "max_memory_kib", "used_memory_kib", "title", "macs")
    __slots__ = _fields
    os_type: str
    vcpus: int
    max_memory_kib: int
    used_memory_kib: int
    title: str
    macs: tuple[str, ...]

    def __init__(
        self,
        os_type: str,
        vcpus: int,
        max_memory_kib: int,
        used_memory_kib: int,
        title: str,
        macs: tuple[str, ...],
    ) -> None:
        self._init(os_type, vcpus, max_memory_kib, used_memory_kib, title, macs)


class _Found:
    """The attributes and text of the first element found at a path."""

    _fields = ("attrs", "parts")
    __slots__ = _fields

    def __init__(self, attrs: dict[str, str]) -> None:
        self.attrs = attrs
        self.parts: list[str] = []

    @property
    def text(self) -> str:
        return "".join(self.parts)


def _scan(xml: str) -> tuple[dict[str, _Found], list[str]]:
    """The first element at each path of _FIRST, and every non-empty mac address."""
    from xml.parsers.expat import ParserCreate

    found: dict[str, _Found] = {}
    macs: list[str] = []
    stack: list[str] = []  # paths of the open elements below the root ('' for the root)
    text: list[list[str] | None] = [None]  # where character data goes now (None: nowhere)

    def start(name: str, attrs: dict[str, str]) -> None:
        parent = stack[-1] if stack else None
        path = "" if parent is None else f"{parent}/{name}" if parent else name
        if "}" in name:  # namespaced: never matches, and nothing below it does
            path = "}"
        stack.append(path)
        text[0] = None
        if path in _FIRST and path not in found:
            found[path] = hit = _Found(attrs)
            text[0] = hit.parts
        elif path == _MAC and attrs.get("address"):
            macs.append(attrs["address"])

    def end(name: str) -> None:
        stack.pop()
        text[0] = None

    def chars(data: str) -> None:
        parts = text[0]
        if parts is not None:
            parts.append(data)

    parser = ParserCreate(namespace_separator="}")
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = chars
    parser.Parse(xml, True)
    return found, macs


def summarize(xml: str) -> DomainSummary:
    found, macs = _scan(xml)
    vcpu = found.get("vcpu")
    vcpus = 1
    if vcpu is not None and vcpu.text:
        vcpus = int(vcpu.attrs.get("current") or vcpu.text)
    mem = _kib(found.get("memory"))
    cur = _kib(found.get("currentMemory")) or mem
    os_type = _text(found.get("os/type")) or "hvm"
    return DomainSummary(os_type, vcpus, mem, cur, _text(found.get("title")), tuple(macs))


def _text(hit: _Found | None) -> str:
    return "" if hit is None else hit.text


def _kib(hit: _Found | None) -> int:
    if hit is None or not hit.text:
        return 0
    return to_kib(hit.text, hit.attrs.get("unit"))
