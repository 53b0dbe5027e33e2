"""What libvirt's domain schema knows: used only on the error path, to word refusals.

When the reader meets an element, attribute or value that vmkit does not take, this module says
whether libvirt's format has it in that place (domain.rng and the files it includes, under
/usr/share/libvirt/schemas). libvirt's things vmkit cannot run are refused as such; anything
else is "unknown". The index is built on first use (some tens of milliseconds) and cached;
`vmkit define` of a good file never loads it. No validation happens here.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path

from lxml import etree

SCHEMA_DIR = Path("/usr/share/libvirt/schemas")
_RNG = "{http://relaxng.org/ns/structure/1.0}"
_ROOT = ""  # the parent name of a document's root element
_ANY = "*"


@dataclass
class _Index:
    elements: set[tuple[str, str]] = field(default_factory=set)  # (parent, child)
    # (parent of element, element, attribute) -> allowed values, None when any text is allowed
    attributes: dict[tuple[str, ...], set[str] | None] = field(default_factory=dict)
    texts: dict[tuple[str, ...], set[str] | None] = field(default_factory=dict)  # (parent, el)


def knows_element(parent: str, child: str) -> bool:
    """Whether libvirt's schema allows element `child` (Clark name) inside `parent`."""
    index = _load()
    return index is not None and (
        (parent, child) in index.elements or (parent, _ANY) in index.elements
    )


def knows_attribute(parent: str, element: str, attr: str) -> bool:
    """Whether libvirt's schema has attribute `attr` on `element` (itself inside `parent`)."""
    index = _load()
    return index is not None and (parent, element, attr) in index.attributes


def attribute_values(parent: str, element: str, attr: str) -> set[str] | None:
    """The values libvirt lists for an attribute; None when unknown or free text."""
    index = _load()
    return None if index is None else index.attributes.get((parent, element, attr))


def text_values(parent: str, element: str) -> set[str] | None:
    """The values libvirt lists for an element's text; None when unknown or free text."""
    index = _load()
    return None if index is None else index.texts.get((parent, element))


@functools.cache
def _load() -> _Index | None:
    try:
        return _Builder(SCHEMA_DIR / "domain.rng").build()
    except (OSError, etree.XMLSyntaxError):
        return None


class _Builder:
    """Reads the RELAX NG grammar and resolves, for each element, the elements it sits in."""

    def __init__(self, top: Path) -> None:
        self.defines: dict[str, list[etree._Element]] = {}
        self.refs: dict[str, list[etree._Element]] = {}
        self.nodes: list[etree._Element] = []
        self._enclosing: dict[str, set[etree._Element | None]] = {}
        self._busy: set[str] = set()
        self._read(top, set())

    def _read(self, path: Path, seen: set[Path]) -> None:
        if path in seen:
            return
        seen.add(path)
        grammar = etree.parse(str(path), etree.XMLParser(resolve_entities=False, no_network=True))
        for node in grammar.iter(f"{_RNG}*"):
            kind = node.tag[len(_RNG) :]
            if kind == "include":
                self._read(path.parent / str(node.get("href")), seen)
            elif kind == "define":
                self.defines.setdefault(str(node.get("name")), []).append(node)
            elif kind == "ref":
                self.refs.setdefault(str(node.get("name")), []).append(node)
            elif kind in ("element", "attribute"):
                self.nodes.append(node)

    def build(self) -> _Index:
        index = _Index()
        for node in self.nodes:
            if node.tag == f"{_RNG}element":
                name = _element_name(node)
                for parent in self.enclosing(node):
                    index.elements.add((_name_of(parent), name))
                    _merge(index.texts, (_name_of(parent), name), self.values(node, set()))
            elif node.get("name"):
                attr = str(node.get("name"))
                values = self.values(node, set()) if len(node) else None
                for owner in self.enclosing(node):
                    if owner is None:
                        continue
                    for parent in self.enclosing(owner):
                        key = (_name_of(parent), _element_name(owner), attr)
                        _merge(index.attributes, key, values)
        return index

    def enclosing(self, node: etree._Element) -> set[etree._Element | None]:
        """The element nodes `node` can sit in (None: the document root)."""
        parent = node.getparent()
        while parent is not None:
            kind = parent.tag[len(_RNG) :] if isinstance(parent.tag, str) else ""
            if kind == "element":
                return {parent}
            if kind == "start":
                return {None}
            if kind == "define":
                return self._define_enclosing(str(parent.get("name")))
            parent = parent.getparent()
        return set()

    def _define_enclosing(self, name: str) -> set[etree._Element | None]:
        if name in self._enclosing:
            return self._enclosing[name]
        if name in self._busy:
            return set()
        self._busy.add(name)
        found: set[etree._Element | None] = set()
        for ref in self.refs.get(name, []):
            found |= self.enclosing(ref)
        self._busy.discard(name)
        self._enclosing[name] = found
        return found

    def values(self, node: etree._Element, seen: set[str]) -> set[str] | None:
        """Values listed in a pattern's content (not descending into child elements)."""
        found: set[str] = set()
        for child in node:
            kind = child.tag[len(_RNG) :] if isinstance(child.tag, str) else ""
            if kind in ("element", "attribute", "except", "name", "anyName", ""):
                continue
            if kind == "value":
                found.add((child.text or "").strip())
                continue
            if kind in ("data", "text"):
                return None
            if kind == "ref":
                sub = self._ref_values(str(child.get("name")), seen)
            else:
                sub = self.values(child, seen)
            if sub is None:
                return None
            found |= sub
        return found

    def _ref_values(self, name: str, seen: set[str]) -> set[str] | None:
        if name in seen:
            return set()
        found: set[str] = set()
        for define in self.defines.get(name, []):
            sub = self.values(define, seen | {name})
            if sub is None:
                return None
            found |= sub
        return found


def _element_name(node: etree._Element) -> str:
    name = node.get("name")
    if name is None:
        return _ANY
    ns = None
    for anc in node.iterancestors():
        if anc.get("ns") is not None:
            ns = anc.get("ns")
            break
    ns = node.get("ns", ns)
    return f"{{{ns}}}{name}" if ns else name


def _name_of(node: etree._Element | None) -> str:
    return _ROOT if node is None else _element_name(node)


def _merge(
    table: dict[tuple[str, ...], set[str] | None], key: tuple[str, ...], values: set[str] | None
) -> None:
    if key not in table:
        table[key] = None if values is None else set(values)
        return
    old = table[key]
    if old is None or values is None:
        table[key] = None
    else:
        old |= values
