"""libvirt storage pool and volume XML <-> vmkit.model.storage, strictly.

`parse_pool` / `parse_volume` read every element and attribute they know and refuse anything
else with an InvalidConfig naming the element or attribute and its line (libvirt drops unknown
XML silently; vmkit never does, unless the caller passes strict=False). Values are checked by
vmkit.model.storage's validation; its errors get the line of the element they name.
`render_pool` / `render_volume` write libvirt's layout (two-space indent, single-quoted
attributes, sizes in bytes), which validates against libvirt's storagepool.rng / storagevol.rng.

This module does no I/O besides parsing the text it is given.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TypeVar

from lxml import etree

from vmkit.errors import InvalidConfig
from vmkit.model.storage import (
    BackingStore,
    Permissions,
    Pool,
    PoolSource,
    PoolType,
    Timestamps,
    Volume,
    VolumeType,
    scale_size,
    unit_scale,
    validate_pool,
    validate_volume,
)
from vmkit.xml.xmlutil import parse_root, prefixed_name, prefixed_tag, source_line

_T = TypeVar("_T")
_TIMESTAMP_RE = re.compile(r"^[0-9]+(\.[0-9]{0,9})?$")
_OCTAL_RE = re.compile(r"^[0-7]+$")
_INT_RE = re.compile(r"^-?[0-9]+$")


# ---------------------------------------------------------------------------------------------
# strict reading


@dataclass
class _Doc:
    """What a parse learned on the way: the line of each xpath (to locate later errors)."""

    strict: bool
    lines: dict[str, int] = field(default_factory=dict)


class _El:
    """One element being read: hands out attributes and children, then refuses the rest."""

    def __init__(self, el: etree._Element, xpath: str, doc: _Doc) -> None:
        self.el = el
        self.xpath = xpath
        self.doc = doc
        self.line = source_line(el)
        self._used_attrs: set[str] = set()
        self._used_children: set[int] = set()
        if self.line is not None:
            doc.lines.setdefault(xpath, self.line)

    @property
    def tag(self) -> str:
        return prefixed_tag(self.el)

    def fail(self, message: str, *, suffix: str = "", value: object = None) -> InvalidConfig:
        return InvalidConfig(message, xpath=self.xpath + suffix, line=self.line, value=value)

    def attr(self, name: str) -> str | None:
        self._used_attrs.add(name)
        value = self.el.get(name)
        return None if value is None else str(value)

    def choice(self, name: str, parse: Callable[[str], _T]) -> _T | None:
        """An attribute converted by `parse` (an enum); a bad value names the attribute."""
        value = self.attr(name)
        if value is None:
            return None
        try:
            return parse(value)
        except ValueError:
            raise self.fail(
                f"invalid value '{value}' for attribute '{name}' of <{self.tag}>",
                suffix=f"/@{name}",
                value=value,
            ) from None

    def _elements(self) -> Iterator[tuple[int, etree._Element]]:
        for i, child in enumerate(self.el):
            if isinstance(child.tag, str):  # skips comments and processing instructions
                yield i, child

    def children(self, tag: str) -> list[_El]:
        found = []
        for i, child in self._elements():
            if prefixed_tag(child) == tag:
                self._used_children.add(i)
                found.append(child)
        if len(found) == 1:
            return [_El(found[0], f"{self.xpath}/{tag}", self.doc)]
        return [_El(c, f"{self.xpath}/{tag}[{n}]", self.doc) for n, c in enumerate(found, 1)]

    def child(self, tag: str) -> _El | None:
        found = self.children(tag)
        if len(found) > 1:
            raise found[1].fail(f"element <{tag}> appears more than once in <{self.tag}>")
        return found[0] if found else None

    def text(self) -> str:
        return (self.el.text or "").strip()

    def flag(self, tag: str) -> bool:
        """An empty marker element such as <nocow/>."""
        el = self.child(tag)
        if el is None:
            return False
        el.done()
        return True

    def text_of(self, tag: str) -> str | None:
        el = self.child(tag)
        if el is None:
            return None
        el.done()
        return el.text()

    def done(self) -> None:
        """Refuse attributes and child elements nobody asked for, and stray text."""
        if not self.doc.strict:
            return
        for name in self.el.attrib:
            if name not in self._used_attrs:
                shown = prefixed_name(self.el, str(name))
                raise self.fail(
                    f"unknown attribute '{shown}' on element <{self.tag}>", suffix=f"/@{shown}"
                )
        for i, child in self._elements():
            if i not in self._used_children:
                tag = prefixed_tag(child)
                raise InvalidConfig(
                    f"unknown element <{tag}> in <{self.tag}>",
                    xpath=f"{self.xpath}/{tag}",
                    line=source_line(child),
                )
        has_children = any(True for _ in self._elements())
        stray = [t for t in [self.el.text, *(c.tail for c in self.el)] if t and t.strip()]
        if has_children and stray:
            raise self.fail(f"unexpected text '{stray[0].strip()}' in <{self.tag}>")


def _load(text: str | bytes, root_tag: str, strict: bool) -> tuple[_El, _Doc]:
    doc = _Doc(strict)
    top = _El(parse_root(text), f"/{root_tag}", doc)
    if top.tag != root_tag:
        raise InvalidConfig(
            f"expected a <{root_tag}> element, found <{top.tag}>", xpath="/", line=top.line
        )
    return top, doc


def _parse(
    text: str | bytes,
    root_tag: str,
    strict: bool,
    read: Callable[[_El], _T],
    validate: Callable[[_T], _T],
) -> _T:
    """Read the document with `read` and check it with `validate`; errors get their line."""
    top, doc = _load(text, root_tag, strict)
    try:
        return validate(read(top))
    except InvalidConfig as e:
        raise _locate(e, doc) from None


def _locate(err: InvalidConfig, doc: _Doc) -> InvalidConfig:
    """Give a validation error (which knows its xpath) the line of that element."""
    if err.line is not None or not err.xpath:
        return err
    path = err.xpath
    while path and path not in doc.lines:
        path = path.rsplit("/", 1)[0]
    if not path:
        return err
    message = err.message.removesuffix(f" ({err.xpath})")
    return InvalidConfig(message, xpath=err.xpath, line=doc.lines[path], value=err.value)


def _size(el: _El | None) -> int | None:
    if el is None:
        return None
    unit = el.attr("unit")
    el.done()
    if unit is not None:
        unit_scale(unit, xpath=el.xpath + "/@unit")
    return scale_size(el.text(), unit, xpath=el.xpath)


def _int(el: _El, pattern: re.Pattern[str], base: int, what: str) -> int:
    text = el.text()
    if not pattern.match(text):
        raise el.fail(f"invalid {what} '{text}' in <{el.tag}>", value=text)
    return int(text, base)


def _permissions(parent: _El) -> Permissions | None:
    el = parent.child("permissions")
    if el is None:
        return None
    perms = Permissions()
    mode = el.child("mode")
    if mode is not None:
        mode.done()
        perms.mode = _int(mode, _OCTAL_RE, 8, "octal mode")
    for what in ("owner", "group"):
        sub = el.child(what)
        if sub is not None:
            sub.done()
            setattr(perms, what, _int(sub, _INT_RE, 10, what))
    perms.label = el.text_of("label")
    el.done()
    return perms


def _format(parent: _El) -> str | None:
    el = parent.child("format")
    if el is None:
        return None
    value = el.attr("type")
    el.done()
    if value is None:
        raise el.fail("element <format> needs a 'type' attribute", suffix="/@type")
    return value


# ---------------------------------------------------------------------------------------------
# pools


def parse_pool(text: str | bytes, *, strict: bool = True) -> Pool:
    """A storage pool from libvirt XML; unknown elements/attributes are errors when strict."""
    return _parse(text, "pool", strict, _read_pool, validate_pool)


def _read_pool(top: _El) -> Pool:
    ptype = top.attr("type")
    if ptype is None:
        raise top.fail("element <pool> needs a 'type' attribute", suffix="/@type")
    try:
        pool_type = PoolType(ptype)
    except ValueError:
        raise top.fail(
            f"pool type '{ptype}' is not supported (vmkit supports dir and fs)",
            suffix="/@type",
            value=ptype,
        ) from None
    name = top.text_of("name")
    if name is None:
        raise top.fail("a pool needs a <name>", suffix="/name")
    target = top.child("target")
    path = target.text_of("path") if target else None
    if target is None or path is None:
        raise top.fail("a pool needs a <target> with a <path>", suffix="/target/path")
    pool = Pool(name=name, target_path=path, type=pool_type)
    pool.target_permissions = _permissions(target)
    target.done()
    pool.uuid = top.text_of("uuid")
    pool.capacity = _size(top.child("capacity"))
    pool.allocation = _size(top.child("allocation"))
    pool.available = _size(top.child("available"))
    features = top.child("features")
    if features is not None:
        cow = features.child("cow")
        if cow is not None:
            pool.features_cow = cow.choice("state", _yes_no)
            cow.done()
        features.done()
    source = top.child("source")
    if source is not None:
        pool.source = _read_pool_source(source)
    top.done()
    return pool


def _read_pool_source(el: _El) -> PoolSource:
    src = PoolSource()
    device = el.child("device")
    if device is not None:
        src.device_path = device.attr("path")
        device.done()
    src.format_type = _format(el)
    el.done()
    return src


def _yes_no(value: str) -> bool:
    if value not in ("yes", "no"):
        raise ValueError(value)
    return value == "yes"


def render_pool(pool: Pool) -> str:
    """libvirt's pool XML for `pool`."""
    w = _Writer()
    w.open("pool", type=str(pool.type))
    w.leaf("name", pool.name)
    w.leaf("uuid", pool.uuid)
    for tag in ("capacity", "allocation", "available"):
        size = getattr(pool, tag)
        if size is not None:
            w.leaf(tag, str(size), unit="bytes")
    if pool.features_cow is not None:
        w.open("features")
        w.empty("cow", state="yes" if pool.features_cow else "no")
        w.close()
    src = pool.source
    if src.device_path is not None or src.format_type is not None:
        w.open("source")
        if src.device_path is not None:
            w.empty("device", path=src.device_path)
        if src.format_type is not None:
            w.empty("format", type=src.format_type)
        w.close()
    w.open("target")
    w.leaf("path", pool.target_path)
    _render_permissions(w, pool.target_permissions)
    w.close()
    w.close()
    return w.text()


# ---------------------------------------------------------------------------------------------
# volumes


def parse_volume(text: str | bytes, *, strict: bool = True) -> Volume:
    """A storage volume from libvirt XML; unknown elements/attributes are errors when strict."""
    return _parse(text, "volume", strict, _read_volume, validate_volume)


def _read_volume(top: _El) -> Volume:
    name = top.text_of("name")
    if name is None:
        raise top.fail("a volume needs a <name>", suffix="/name")
    vol = Volume(name=name, type=top.choice("type", VolumeType))
    vol.key = top.text_of("key")
    vol.capacity = _size(top.child("capacity"))
    vol.allocation = _size(top.child("allocation"))
    vol.physical = _size(top.child("physical"))
    target = top.child("target")
    if target is not None:
        _read_volume_target(target, vol)
    backing = top.child("backingStore")
    if backing is not None:
        path = backing.text_of("path")
        if path is None:
            raise backing.fail("<backingStore> needs a <path>", suffix="/path")
        vol.backing_store = BackingStore(path, _format(backing), _permissions(backing))
        backing.done()
    top.done()
    return vol


def _read_volume_target(target: _El, vol: Volume) -> None:
    vol.target_path = target.text_of("path")
    vol.target_format = _format(target)
    vol.target_permissions = _permissions(target)
    stamps = target.child("timestamps")
    if stamps is not None:
        vol.target_timestamps = Timestamps()
        for tag in ("atime", "btime", "ctime", "mtime"):
            sub = stamps.child(tag)
            if sub is None:
                continue
            sub.done()
            if not _TIMESTAMP_RE.match(sub.text()):
                raise sub.fail(f"invalid timestamp '{sub.text()}' in <{tag}>", value=sub.text())
            setattr(vol.target_timestamps, tag, sub.text())
        stamps.done()
    compat = target.child("compat")
    if compat is not None:
        compat.done()
        vol.target_compat = compat.text()
    vol.target_nocow = target.flag("nocow")
    vol.target_cluster_size = _size(target.child("clusterSize"))
    features = target.child("features")
    if features is not None:
        vol.target_features_lazy_refcounts = features.flag("lazy_refcounts")
        vol.target_features_extended_l2 = features.flag("extended_l2")
        features.done()
    target.done()


def render_volume(vol: Volume) -> str:
    """libvirt's volume XML for `vol`."""
    w = _Writer()
    w.open("volume", type=str(vol.type) if vol.type else None)
    w.leaf("name", vol.name)
    w.leaf("key", vol.key)
    for tag in ("capacity", "allocation", "physical"):
        size = getattr(vol, tag)
        if size is not None:
            w.leaf(tag, str(size), unit="bytes")
    w.open("target")
    w.leaf("path", vol.target_path)
    if vol.target_format is not None:
        w.empty("format", type=vol.target_format)
    _render_permissions(w, vol.target_permissions)
    stamps = vol.target_timestamps
    if stamps is not None:
        w.open("timestamps")
        for tag in ("atime", "mtime", "ctime", "btime"):
            w.leaf(tag, getattr(stamps, tag))
        w.close()
    w.leaf("compat", vol.target_compat)
    if vol.target_nocow:
        w.empty("nocow")
    if vol.target_cluster_size is not None:
        w.leaf("clusterSize", str(vol.target_cluster_size), unit="B")
    if vol.target_features_lazy_refcounts or vol.target_features_extended_l2:
        w.open("features")
        if vol.target_features_lazy_refcounts:
            w.empty("lazy_refcounts")
        if vol.target_features_extended_l2:
            w.empty("extended_l2")
        w.close()
    w.close()
    if vol.backing_store is not None:
        w.open("backingStore")
        w.leaf("path", vol.backing_store.path)
        if vol.backing_store.format is not None:
            w.empty("format", type=vol.backing_store.format)
        _render_permissions(w, vol.backing_store.permissions)
        w.close()
    w.close()
    return w.text()


# ---------------------------------------------------------------------------------------------
# writing


def _render_permissions(w: _Writer, perms: Permissions | None) -> None:
    if perms is None:
        return
    w.open("permissions")
    if perms.mode is not None:
        w.leaf("mode", f"{perms.mode:04o}")
    if perms.owner is not None:
        w.leaf("owner", str(perms.owner))
    if perms.group is not None:
        w.leaf("group", str(perms.group))
    w.leaf("label", perms.label)
    w.close()


class _Writer:
    """libvirt's XML layout: two-space indent, single-quoted attributes, one element a line."""

    def __init__(self) -> None:
        self._lines: list[str] = []
        self._stack: list[str] = []

    def _start(self, tag: str, attrs: dict[str, str | None]) -> str:
        parts = [tag] + [f"{k}='{_escape(v, attr=True)}'" for k, v in attrs.items() if v]
        return "  " * len(self._stack) + "<" + " ".join(parts)

    def open(self, tag: str, **attrs: str | None) -> None:
        self._lines.append(self._start(tag, attrs) + ">")
        self._stack.append(tag)

    def close(self) -> None:
        tag = self._stack.pop()
        self._lines.append("  " * len(self._stack) + f"</{tag}>")

    def empty(self, tag: str, **attrs: str | None) -> None:
        self._lines.append(self._start(tag, attrs) + "/>")

    def leaf(self, tag: str, text: str | None, **attrs: str | None) -> None:
        if text is not None:
            self._lines.append(self._start(tag, attrs) + f">{_escape(text)}</{tag}>")

    def text(self) -> str:
        return "\n".join(self._lines) + "\n"


def _escape(text: str, *, attr: bool = False) -> str:
    out = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    if attr:
        out = out.replace("'", "&apos;").replace('"', "&quot;")
    return out
