"""Reading and writing libvirt-style XML: a safe lxml parse, a strict element reader, a writer.

The reader (`Node`) hands out attributes and children and remembers what it handed out; at
`finish()` whatever is left is an error naming it and its line (or, with skip_unknown, a
dropped-item note for things that are not libvirt's at all). Telling "libvirt's, but vmkit
cannot run it" apart from "not libvirt's" reads libvirt's schema, on that error path only.

The writer (`Elem`) prints like virsh: two-space indent, single-quoted attributes, `<x/>` when
empty. Knows no particular element; imports vmkit.errors and, for refusals, domain_schema.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from enum import StrEnum
from typing import TypeVar, cast

from lxml import etree

from vmkit.errors import InvalidConfig
from vmkit.xml import domain_schema

E = TypeVar("E", bound=StrEnum)

_WHITESPACE = " \t\r\n"
_POSITION_RE = re.compile(r", line \d+, column \d+$")
_TAG_POSITION_RE = re.compile(r"( line \d+)?, line \d+, column \d+$")
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")


def _parser(*, encoding: str | None = None) -> etree.XMLParser:
    return etree.XMLParser(
        encoding=encoding,
        resolve_entities=False,
        no_network=True,
        huge_tree=False,
        load_dtd=False,
        dtd_validation=False,
    )


def parse_xml(text: str | bytes, *, source: str = "<string>") -> etree._ElementTree:
    """Parse a document with entity expansion, DTDs and network access off."""
    prefix = "" if source == "<string>" else f"{source}: "
    data = text.encode("utf-8") if isinstance(text, str) else text
    parser = _parser(encoding="utf-8" if isinstance(text, str) else None)
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as exc:
        msg = _POSITION_RE.sub("", str(exc.msg)).strip()
        raise InvalidConfig(f"{prefix}malformed XML: {msg}", line=exc.lineno) from None
    tree = root.getroottree()
    if tree.docinfo.internalDTD is not None:
        raise InvalidConfig(f"{prefix}a DOCTYPE is not allowed in libvirt XML", line=1)
    return tree


def parse_root(text: str | bytes, *, drop_tag_line: bool = False) -> etree._Element:
    """The root element, for readers with their own element class (network.py, storage.py); a
    syntax error is `malformed XML: ...` with its line. libxml2's `, line N, column M` ending is
    dropped, and with drop_tag_line a ` line N` before it too (`... in tag network line 1`)."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)
    data = text.encode() if isinstance(text, str) else text
    try:
        return etree.fromstring(data, parser)
    except etree.XMLSyntaxError as e:
        position = _TAG_POSITION_RE if drop_tag_line else _POSITION_RE
        message = position.sub("", str(e.msg))
        line = e.lineno if isinstance(e.lineno, int) else None
        raise InvalidConfig(f"malformed XML: {message}", line=line) from e


def parse_fragment(text: str) -> etree._Element:
    """Parse one serialized element (a preserved part) with the same safe parser."""
    try:
        return etree.fromstring(text.encode("utf-8"), _parser(encoding="utf-8"))
    except etree.XMLSyntaxError as exc:
        raise InvalidConfig(f"preserved XML is not well-formed: {exc.msg}", value=text) from None


def line_of(el: etree._Element) -> int | None:
    """The element's line in its document (lxml's stubs do not type it)."""
    return cast("int | None", el.sourceline)


def source_line(el: etree._Element) -> int | None:
    """The element's line in its document, None where lxml knows none."""
    line = el.sourceline
    return line if isinstance(line, int) and line > 0 else None


def prefixed_name(el: etree._Element, name: str) -> str:
    """`{uri}local` as `prefix:local` when the document gave `el` a prefix for uri."""
    if not name.startswith("{"):
        return name
    uri, local = name[1:].split("}", 1)
    for prefix, ns in el.nsmap.items():
        if ns == uri and prefix:
            return f"{prefix}:{local}"
    return name


def prefixed_tag(el: etree._Element) -> str:
    """The element's tag as `prefixed_name` shows it."""
    return prefixed_name(el, str(el.tag))


def local_name(el: etree._Element) -> str:
    """`prefix:name` for a namespaced element, `name` otherwise (how a person wrote it)."""
    qname = etree.QName(el)
    return f"{el.prefix}:{qname.localname}" if el.prefix else qname.localname


def element_children(el: etree._Element) -> list[etree._Element]:
    """Child elements, skipping comments and processing instructions."""
    return [c for c in el if isinstance(c.tag, str)]


class ParseContext:
    """What one parse shares: the tree (for paths), the source name, and dropped items."""

    def __init__(self, tree: etree._ElementTree, source: str, skip_unknown: bool) -> None:
        self.tree = tree
        self.source = source
        self.skip_unknown = skip_unknown
        self.dropped: list[str] = []

    def error(
        self,
        message: str,
        el: etree._Element,
        *,
        attr: str | None = None,
        value: object = None,
    ) -> InvalidConfig:
        """An InvalidConfig naming the element's line and path."""
        prefix = "" if self.source == "<string>" else f"{self.source}: "
        xpath = self.tree.getpath(el) + (f"/@{attr}" if attr else "")
        return InvalidConfig(prefix + message, xpath=xpath, line=line_of(el), value=value)

    def refuse(self, el: etree._Element, *, attr: str | None = None) -> InvalidConfig:
        """libvirt XML that vmkit cannot run: naming it, its line and path."""
        if attr is None:
            what = f"<{local_name(el)}>"
        else:
            what = f"<{local_name(el)} {attr}='{el.get(attr)}'>"
        return self.error(
            f"{what} is libvirt domain XML that vmkit cannot run", el, attr=attr, value=what
        )

    def unknown(self, el: etree._Element, *, attr: str | None = None) -> None:
        """Something that is not in libvirt's format: an error, or a note when skipping."""
        if attr is None:
            parent = el.getparent()
            where = local_name(parent) if parent is not None else "document"
            err = self.error(f"unknown element <{local_name(el)}> in <{where}>", el)
        else:
            err = self.error(f"unknown attribute '{attr}' in <{local_name(el)}>", el, attr=attr)
        if not self.skip_unknown:
            raise err
        self.dropped.append(str(err))


def _parent_tag(el: etree._Element) -> str:
    parent = el.getparent()
    return str(parent.tag) if parent is not None else ""


class Node:
    """A strict reader over one element: every attribute and child must be taken or refused."""

    def __init__(self, ctx: ParseContext, el: etree._Element) -> None:
        self.ctx = ctx
        self.el = el
        self._attrs: set[str] = set()
        self._children: set[int] = set()
        self._text_used = False

    @property
    def tag(self) -> str:
        return local_name(self.el)

    def error(
        self, message: str, *, attr: str | None = None, value: object = None
    ) -> InvalidConfig:
        return self.ctx.error(message, self.el, attr=attr, value=value)

    # attributes -----------------------------------------------------------------------------

    def has(self, name: str) -> bool:
        return self.el.get(name) is not None

    def attr(self, name: str) -> str | None:
        self._attrs.add(name)
        return self.el.get(name)

    def req_attr(self, name: str) -> str:
        value = self.attr(name)
        if value is None:
            raise self.error(f"missing required attribute '{name}' in <{self.tag}>", attr=name)
        return value

    def name_attr(self, name: str, *, required: bool = False) -> str | None:
        """An identifier-like value (ends up on QEMU's command line): letters, digits, ._+-."""
        value = self.req_attr(name) if required else self.attr(name)
        if value is not None and not NAME_RE.match(value):
            raise self.error(
                f"invalid value '{value}' for attribute '{name}' of <{self.tag}>: "
                "expected letters, digits, '.', '_', '+' or '-'",
                attr=name,
                value=value,
            )
        return value

    def int_attr(
        self, name: str, *, minimum: int | None = 0, maximum: int | None = None
    ) -> int | None:
        value = self.attr(name)
        if value is None:
            return None
        return self._to_int(value, f"attribute '{name}' of <{self.tag}>", minimum, maximum, name)

    def choice_attr(self, name: str, allowed: Collection[str]) -> str | None:
        value = self.attr(name)
        if value is not None and value not in allowed:
            self._bad_value(name, value, allowed)
        return value

    def enum_attr(self, name: str, enum: type[E], allowed: Collection[E] | None = None) -> E | None:
        members = list(allowed) if allowed is not None else list(enum)
        value = self.choice_attr(name, [m.value for m in members])
        return None if value is None else enum(value)

    def bool_attr(self, name: str, true: str = "yes", false: str = "no") -> bool | None:
        value = self.choice_attr(name, (true, false))
        return None if value is None else value == true

    def _bad_value(self, name: str, value: str, allowed: Collection[str]) -> None:
        libvirt = domain_schema.attribute_values(_parent_tag(self.el), str(self.el.tag), name)
        if libvirt is not None and value in libvirt:
            raise self.ctx.refuse(self.el, attr=name)
        raise self.error(
            f"invalid value '{value}' for attribute '{name}' of <{self.tag}>; "
            f"expected one of: {', '.join(allowed)}",
            attr=name,
            value=value,
        )

    def _to_int(
        self, value: str, what: str, minimum: int | None, maximum: int | None, attr: str | None
    ) -> int:
        text = value.strip()
        try:
            number = int(text, 16) if text.lower().startswith("0x") else int(text, 10)
        except ValueError:
            raise self.error(
                f"invalid value '{value}' for {what}: expected an integer", attr=attr, value=value
            ) from None
        if (minimum is not None and number < minimum) or (maximum is not None and number > maximum):
            rng = f">= {minimum}" if maximum is None else f"between {minimum} and {maximum}"
            raise self.error(
                f"invalid value '{value}' for {what}: expected an integer {rng}",
                attr=attr,
                value=value,
            )
        return number

    # text -----------------------------------------------------------------------------------

    def text(self) -> str:
        """The element's text (comments inside it are skipped)."""
        self._text_used = True
        tails = [c.tail or "" for c in self.el if not isinstance(c.tag, str)]
        return "".join([self.el.text or "", *tails])

    def int_text(self, *, minimum: int | None = 0) -> int:
        return self._to_int(self.text(), f"<{self.tag}>", minimum, None, None)

    def choice_text(self, allowed: Collection[str]) -> str:
        value = self.text().strip()
        if value not in allowed:
            libvirt = domain_schema.text_values(_parent_tag(self.el), str(self.el.tag))
            if libvirt is not None and value in libvirt:
                what = f"<{self.tag}>{value}</{self.tag}>"
                raise self.error(f"{what} is libvirt domain XML that vmkit cannot run", value=value)
            raise self.error(
                f"invalid value '{value}' for <{self.tag}>; expected one of: {', '.join(allowed)}",
                value=value,
            )
        return value

    def enum_text(self, enum: type[E], allowed: Collection[E] | None = None) -> E:
        members = list(allowed) if allowed is not None else list(enum)
        return enum(self.choice_text([m.value for m in members]))

    # children -------------------------------------------------------------------------------

    def children(self, tag: str) -> list[Node]:
        found = [(i, c) for i, c in enumerate(self.el) if c.tag == tag]
        self._children.update(i for i, _ in found)
        return [Node(self.ctx, c) for _, c in found]

    def child(self, tag: str) -> Node | None:
        found = self.children(tag)
        if len(found) > 1:
            raise found[1].error(f"element <{tag}> appears more than once in <{self.tag}>")
        return found[0] if found else None

    def req_child(self, tag: str) -> Node:
        found = self.child(tag)
        if found is None:
            raise self.error(f"missing required element <{tag}> in <{self.tag}>")
        return found

    def child_text(self, tag: str) -> str | None:
        node = self.child(tag)
        if node is None:
            return None
        value = node.text()
        node.finish()
        return value

    def flag_child(self, tag: str) -> bool:
        """An empty marker element such as `<readonly/>` or `<acpi/>`."""
        node = self.child(tag)
        if node is not None:
            node.finish()
        return node is not None

    def raw_children(self, tag: str) -> list[str]:
        """Children kept verbatim: serialized, indented as a child of a top-level element."""
        return [serialize_preserved(n.el) for n in self.children(tag)]

    # the end --------------------------------------------------------------------------------

    def finish(self) -> None:
        """Fail on anything not taken: refused if it is libvirt's, unknown otherwise."""
        for name in self.el.attrib:
            if str(name) not in self._attrs:
                self._leftover_attr(str(name))
        if not self._text_used:
            self._check_no_text(self.el.text)
        for i, child in enumerate(self.el):
            if not self._text_used:
                self._check_no_text(child.tail)
            if not isinstance(child.tag, str):
                if isinstance(child, etree._Entity):
                    raise self.error(f"entity reference {child.text} is not allowed")
                continue
            if i not in self._children:
                self._leftover_child(child)

    def _check_no_text(self, text: str | None) -> None:
        if text and text.strip(_WHITESPACE):
            raise self.error(f"unexpected text '{text.strip()}' in <{self.tag}>")

    def _leftover_attr(self, name: str) -> None:
        if name.startswith("{"):
            self.ctx.unknown(self.el, attr=name)
            return
        if domain_schema.knows_attribute(_parent_tag(self.el), str(self.el.tag), name):
            raise self.ctx.refuse(self.el, attr=name)
        self.ctx.unknown(self.el, attr=name)

    def _leftover_child(self, child: etree._Element) -> None:
        if domain_schema.knows_element(str(self.el.tag), str(child.tag)):
            raise self.ctx.refuse(child)
        self.ctx.unknown(child)


def serialize_preserved(el: etree._Element) -> str:
    """An element kept verbatim, its layout normalized for a child of `<domain>`."""
    copy = etree.fromstring(etree.tostring(el))
    copy.tail = None
    etree.cleanup_namespaces(copy)
    etree.indent(copy, space="  ", level=1)
    return etree.tostring(copy, encoding="unicode")


# writing -------------------------------------------------------------------------------------

AttrValue = str | int | None


class Elem:
    """An element to print: attributes in insertion order (None values are left out)."""

    def __init__(self, tag: str, text: str | None = None, **attrs: AttrValue) -> None:
        self.tag = tag
        self.text = text
        self.attrs: list[tuple[str, str]] = []
        self.children: list[Elem | str] = []
        self.set(**attrs)

    def set(self, **attrs: AttrValue) -> Elem:
        for name, value in attrs.items():
            self.put(name, value)
        return self

    def put(self, name: str, value: AttrValue) -> Elem:
        if value is not None:
            self.attrs.append((name, str(value)))
        return self

    def sub(self, tag: str, text: str | None = None, **attrs: AttrValue) -> Elem:
        child = Elem(tag, text, **attrs)
        self.children.append(child)
        return child

    def add(self, child: Elem | None) -> None:
        if child is not None:
            self.children.append(child)

    def raw(self, xml: str) -> None:
        """A serialized element printed verbatim (preserved parts)."""
        self.children.append(xml)

    def is_empty(self) -> bool:
        return not self.attrs and not self.children and self.text is None


def yes_no(value: bool | None, true: str = "yes", false: str = "no") -> str | None:
    return None if value is None else (true if value else false)


def on_off(value: bool | None) -> str | None:
    return yes_no(value, "on", "off")


def escape_text(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def escape_attr(text: str) -> str:
    out = escape_text(text).replace("'", "&apos;")
    return out.replace("\n", "&#10;").replace("\r", "&#13;").replace("\t", "&#9;")


def render_xml(root: Elem) -> str:
    """Print like virsh dumpxml; ends with a newline."""
    lines: list[str] = []
    _render(root, 0, lines)
    return "\n".join(lines) + "\n"


def _render(el: Elem, level: int, lines: list[str]) -> None:
    pad = "  " * level
    attrs = "".join(f" {name}='{escape_attr(value)}'" for name, value in el.attrs)
    if not el.children:
        if el.text is None:
            lines.append(f"{pad}<{el.tag}{attrs}/>")
        else:
            lines.append(f"{pad}<{el.tag}{attrs}>{escape_text(el.text)}</{el.tag}>")
        return
    lines.append(f"{pad}<{el.tag}{attrs}>")
    for child in el.children:
        if isinstance(child, str):
            lines.append(f"{pad}  {child}")
        else:
            _render(child, level + 1, lines)
    lines.append(f"{pad}</{el.tag}>")
