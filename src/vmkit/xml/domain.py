"""libvirt domain XML <-> vmkit.model.Domain: `parse_domain` and `render_domain`.

Parsing is strict: an element or attribute outside libvirt's format is an error naming it and
its line (or, with skip_unknown, dropped and reported); libvirt XML that vmkit cannot run
(`<hostdev>`, spice, `<os firmware='efi'>`, ...) is refused by name. Descriptive parts vmkit
does not act on (PRESERVED) are kept verbatim in Domain.preserved and written back in their
place. After reading, vmkit.model.validate checks the semantics; its errors get the line.

Rendering prints like `virsh dumpxml`; `inactive` leaves out runtime-only parts (the id,
aliases, pty paths, ...). What it prints validates against libvirt's domain.rng.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field

from lxml import etree

from vmkit.errors import InvalidConfig
from vmkit.model import units
from vmkit.model.domain import Domain, DomainType, LifecycleAction
from vmkit.model.validate import check_uuid, validate_domain
from vmkit.xml.domain_devices import read_devices, render_devices
from vmkit.xml.domain_parts import (
    read_clock,
    read_cpu,
    read_features,
    read_os,
    read_vcpu,
    render_clock,
    render_cpu,
    render_features,
    render_os,
    render_vcpu,
)
from vmkit.xml.xmlutil import (
    Elem,
    Node,
    ParseContext,
    element_children,
    line_of,
    local_name,
    parse_fragment,
    parse_xml,
    render_xml,
    serialize_preserved,
)

# Kept verbatim and written back (in this order, libvirt's): they describe the guest, or steer
# host-side things vmkit has no part in.
PRESERVED = ("metadata", "resource", "sysinfo", "pm", "perf", "seclabel")
_POWEROFF_ACTIONS = (
    LifecycleAction.DESTROY,
    LifecycleAction.RESTART,
    LifecycleAction.PRESERVE,
    LifecycleAction.RENAME_RESTART,
)


@dataclass
class DomainParse:
    """A parsed domain and what skip_unknown dropped (one message per item, with its line)."""

    domain: Domain
    dropped: list[str] = field(default_factory=list)


def parse_domain(
    text: str | bytes,
    *,
    source: str = "<string>",
    skip_unknown: bool = False,
    machines: Collection[str] | None = None,
) -> Domain:
    """Read and check a libvirt domain XML document; raises InvalidConfig naming the line."""
    return parse_domain_result(
        text, source=source, skip_unknown=skip_unknown, machines=machines
    ).domain


def parse_domain_result(
    text: str | bytes,
    *,
    source: str = "<string>",
    skip_unknown: bool = False,
    machines: Collection[str] | None = None,
) -> DomainParse:
    """parse_domain, also returning what skip_unknown dropped."""
    tree = parse_xml(text, source=source)
    ctx = ParseContext(tree, source, skip_unknown)
    root = tree.getroot()
    if root.tag != "domain":
        namespace = etree.QName(root).namespace
        where = f" in namespace '{namespace}'" if namespace else ""
        raise ctx.error(f"root element is <{local_name(root)}>{where}, expected <domain>", root)
    dom = _read_domain(Node(ctx, root))
    try:
        validate_domain(dom, machines=machines)
    except InvalidConfig as exc:
        raise _locate(ctx, exc) from exc
    return DomainParse(dom, ctx.dropped)


def render_domain(dom: Domain, *, inactive: bool = False) -> str:
    """The domain as libvirt domain XML, laid out like `virsh dumpxml`."""
    kept = _preserved_by_tag(dom.preserved)
    root = Elem("domain", type=dom.type.value, id=None if inactive else dom.id)
    root.sub("name", dom.name)
    root.sub("uuid", dom.uuid)
    if dom.title is not None:
        root.sub("title", dom.title)
    if dom.description is not None:
        root.sub("description", dom.description)
    _add_raw(root, kept, "metadata")
    if dom.max_memory_kib is not None:
        root.sub("maxMemory", str(dom.max_memory_kib), slots=dom.max_memory_slots, unit="KiB")
    root.sub("memory", str(dom.memory_kib), unit="KiB")
    if dom.current_memory_kib is not None:
        root.sub("currentMemory", str(dom.current_memory_kib), unit="KiB")
    root.add(render_vcpu(dom.vcpu))
    _add_raw(root, kept, "resource", "sysinfo")
    root.add(render_os(dom.os))
    root.add(render_features(dom.features) if dom.features is not None else None)
    root.add(render_cpu(dom.cpu) if dom.cpu is not None else None)
    root.add(render_clock(dom.clock) if dom.clock is not None else None)
    for tag, action in (
        ("on_poweroff", dom.on_poweroff),
        ("on_reboot", dom.on_reboot),
        ("on_crash", dom.on_crash),
    ):
        if action is not None:
            root.sub(tag, action.value)
    _add_raw(root, kept, "pm", "perf")
    root.add(render_devices(dom.devices, inactive=inactive))
    _add_raw(root, kept, "seclabel")
    return render_xml(root)


# reading -------------------------------------------------------------------------------------


def _read_domain(root: Node) -> Domain:
    dtype = root.enum_attr("type", DomainType)
    if dtype is None:
        raise root.error("missing required attribute 'type' in <domain>", attr="type")
    dom = Domain(name=_req_text(root, "name"), type=dtype)
    dom.id = root.int_attr("id", minimum=0)
    uuid = root.child("uuid")
    if uuid is not None:
        try:
            dom.uuid = check_uuid(uuid.text().strip())
        except InvalidConfig as exc:
            raise uuid.error(f"malformed uuid '{exc.value}'", value=exc.value) from None
        uuid.finish()
    title = root.child("title")
    if title is not None:
        dom.title = title.text()
        if "\n" in dom.title:
            raise title.error("<title> must be a single line", value=dom.title)
        title.finish()
    dom.description = root.child_text("description")
    _read_memory(root, dom)
    vcpu = root.child("vcpu")
    if vcpu is not None:
        dom.vcpu = read_vcpu(vcpu)
    _read_platform(root, dom)
    devices = root.child("devices")
    if devices is not None:
        dom.devices = read_devices(devices)
    dom.preserved = _take_preserved(root)
    root.finish()
    return dom


def _req_text(node: Node, tag: str) -> str:
    child = node.req_child(tag)
    value = child.text()
    child.finish()
    return value


def _read_memory(root: Node, dom: Domain) -> None:
    dom.memory_kib = _memory(root.req_child("memory"))
    current = root.child("currentMemory")
    if current is not None:
        dom.current_memory_kib = _memory(current)
    maxmem = root.child("maxMemory")
    if maxmem is not None:
        dom.max_memory_slots = maxmem.int_attr("slots", minimum=0)
        if dom.max_memory_slots is None:
            raise maxmem.error("missing required attribute 'slots' in <maxMemory>", attr="slots")
        dom.max_memory_kib = _memory(maxmem)


def _memory(node: Node) -> int:
    """A libvirt scaled integer in KiB."""
    unit = node.attr("unit")
    try:
        value = units.to_kib(node.text().strip(), unit)
    except InvalidConfig as exc:
        raise node.error(f"<{node.tag}>: {exc.message}", value=exc.value) from None
    node.finish()
    return value


def _read_platform(root: Node, dom: Domain) -> None:
    cpu = root.child("cpu")
    dom.cpu = read_cpu(cpu) if cpu is not None else None
    dom.os = read_os(root.req_child("os"))
    feats = root.child("features")
    dom.features = read_features(feats) if feats is not None else None
    clock = root.child("clock")
    dom.clock = read_clock(clock) if clock is not None else None
    for tag in ("on_poweroff", "on_reboot", "on_crash"):
        node = root.child(tag)
        if node is not None:
            allowed = None if tag == "on_crash" else _POWEROFF_ACTIONS
            setattr(dom, tag, node.enum_text(LifecycleAction, allowed))
            node.finish()


def _take_preserved(root: Node) -> list[str]:
    for tag in PRESERVED:
        root.children(tag)  # marks them taken
    kept = [c for c in element_children(root.el) if c.tag in PRESERVED]
    for child in kept:
        if child.tag == "sysinfo" and child.get("type") != "smbios":
            raise root.ctx.refuse(child, attr="type")
    kept.sort(key=lambda c: PRESERVED.index(str(c.tag)))  # libvirt's order, as rendered
    return [serialize_preserved(c) for c in kept]


# writing -------------------------------------------------------------------------------------


def _preserved_by_tag(preserved: list[str]) -> dict[str, list[str]]:
    by_tag: dict[str, list[str]] = {}
    for xml in preserved:
        tag = parse_fragment(xml).tag
        if tag not in PRESERVED:
            raise InvalidConfig(
                f"preserved part <{tag}> is not one vmkit keeps ({', '.join(PRESERVED)})",
                xpath="/domain",
                value=xml,
            )
        by_tag.setdefault(str(tag), []).append(xml)
    return by_tag


def _add_raw(root: Elem, kept: dict[str, list[str]], *tags: str) -> None:
    for tag in tags:
        for xml in kept.get(tag, []):
            root.raw(xml)


# locating semantic errors --------------------------------------------------------------------


def _locate(ctx: ParseContext, exc: InvalidConfig) -> InvalidConfig:
    """The validator's error, with the line of the element its XPath names."""
    message = exc.message
    if exc.xpath and message.endswith(f" ({exc.xpath})"):
        message = message[: -len(f" ({exc.xpath})")]
    prefix = "" if ctx.source == "<string>" else f"{ctx.source}: "
    line = _line_of(ctx.tree, exc.xpath, exc.value) if exc.xpath else None
    return InvalidConfig(prefix + message, xpath=exc.xpath, line=line, value=exc.value)


def _line_of(tree: etree._ElementTree, xpath: str, value: object) -> int | None:
    """The line of what `xpath` names; its nearest existing ancestor when it does not exist."""
    path, _, attr = xpath.partition("/@")
    steps = (path if path.startswith("/") else "//" + path).split("/")
    while len(steps) > 1:
        hits = _elements(tree, "/".join(steps))
        if hits:
            if attr and value is not None:
                same = [el for el in hits if el.get(attr) == str(value)]
                hits = same[-1:] or hits
            return line_of(hits[0])
        steps.pop()
        attr = ""
    return None


def _elements(tree: etree._ElementTree, xpath: str) -> list[etree._Element]:
    try:
        found = tree.xpath(xpath)
    except etree.XPathError:
        return []
    return [el for el in found if isinstance(el, etree._Element)] if isinstance(found, list) else []
