"""The platform parts of a domain XML <-> model: `<vcpu>`, `<cpu>`, `<os>`, `<features>`, `<clock>`.

Strict readers (see xmlutil.Node) and writers in libvirt's order; no semantic checks across
parts (vmkit.model.validate does those).
"""

from __future__ import annotations

import re

from vmkit.model.domain import (
    BootDev,
    Clock,
    Cpu,
    CpuFeature,
    CpuMode,
    CpuTopology,
    Features,
    Os,
    Timer,
    Vcpu,
)
from vmkit.xml.xmlutil import NAME_RE, Elem, Node, on_off, yes_no

_CPUSET_RE = re.compile(r"^\^?[0-9]+(-[0-9]+)?(,\^?[0-9]+(-[0-9]+)?)*$")
TIMER_NAMES = ("rtc", "pit", "hpet", "kvmclock", "tsc", "hypervclock")


def _absolute(node: Node) -> str:
    value = node.text()
    if not value.startswith("/"):
        raise node.error(f"invalid value '{value}' for <{node.tag}>: expected an absolute path")
    return value


# vcpu ----------------------------------------------------------------------------------------


def read_vcpu(node: Node) -> Vcpu:
    vcpu = Vcpu(count=node.int_text(minimum=0))
    vcpu.current = node.int_attr("current", minimum=0)
    vcpu.placement = node.choice_attr("placement", ("static", "auto"))
    vcpu.cpuset = node.attr("cpuset")
    if vcpu.cpuset is not None and not _CPUSET_RE.match(vcpu.cpuset):
        raise node.error(
            f"invalid value '{vcpu.cpuset}' for attribute 'cpuset' of <vcpu>: "
            "expected a CPU list such as 0-3,^2",
            attr="cpuset",
            value=vcpu.cpuset,
        )
    node.finish()
    return vcpu


def render_vcpu(vcpu: Vcpu) -> Elem:
    return Elem(
        "vcpu", str(vcpu.count), placement=vcpu.placement, cpuset=vcpu.cpuset, current=vcpu.current
    )


# cpu -----------------------------------------------------------------------------------------


def read_cpu(node: Node) -> Cpu:
    cpu = Cpu(mode=node.enum_attr("mode", CpuMode) or CpuMode.CUSTOM)
    cpu.match = node.choice_attr("match", ("minimum", "exact", "strict"))
    cpu.check = node.choice_attr("check", ("none", "partial", "full"))
    cpu.migratable = node.bool_attr("migratable", "on", "off")
    model = node.child("model")
    if model is not None:
        cpu.model = model.text().strip()
        cpu.model_fallback = model.choice_attr("fallback", ("allow", "forbid"))
        _check_name(model, cpu.model)
        model.finish()
    vendor = node.child("vendor")
    if vendor is not None:
        cpu.vendor = vendor.text().strip()
        _check_name(vendor, cpu.vendor)
        vendor.finish()
    topo = node.child("topology")
    if topo is not None:
        cpu.topology = _read_topology(topo)
    for feat in node.children("feature"):
        policy = feat.choice_attr("policy", ("force", "require", "optional", "disable", "forbid"))
        name = feat.name_attr("name", required=True)
        if policy is None or name is None:
            raise feat.error("missing required attribute 'policy' in <feature>", attr="policy")
        cpu.features.append(CpuFeature(policy=policy, name=name))
        feat.finish()
    node.finish()
    return cpu


def _check_name(node: Node, value: str) -> None:
    if not NAME_RE.match(value):
        raise node.error(
            f"invalid value '{value}' for <{node.tag}>: "
            "expected letters, digits, '.', '_', '+' or '-'",
            value=value,
        )


def _read_topology(node: Node) -> CpuTopology:
    values = {}
    for name in ("sockets", "cores", "threads"):
        value = node.int_attr(name, minimum=0)
        if value is None:
            raise node.error(f"missing required attribute '{name}' in <topology>", attr=name)
        values[name] = value
    dies = node.int_attr("dies", minimum=0)
    node.finish()
    return CpuTopology(**values, dies=1 if dies is None else dies)


def render_cpu(cpu: Cpu) -> Elem:
    el = Elem("cpu", mode=cpu.mode.value, match=cpu.match, check=cpu.check)
    el.put("migratable", on_off(cpu.migratable))
    if cpu.model is not None:
        el.sub("model", cpu.model, fallback=cpu.model_fallback)
    if cpu.vendor is not None:
        el.sub("vendor", cpu.vendor)
    if cpu.topology is not None:
        t = cpu.topology
        el.sub("topology", sockets=t.sockets, dies=t.dies, cores=t.cores, threads=t.threads)
    for feat in cpu.features:
        el.sub("feature", policy=feat.policy, name=feat.name)
    return el


# os ------------------------------------------------------------------------------------------


def read_os(node: Node) -> Os:
    os = Os()
    typ = node.req_child("type")
    os.type = typ.choice_text(("hvm",))
    os.arch = typ.choice_attr("arch", ("x86_64",)) or "x86_64"
    os.machine = typ.name_attr("machine")
    typ.finish()
    loader = node.child("loader")
    if loader is not None:
        os.loader = _absolute(loader)
        os.loader_type = loader.choice_attr("type", ("rom",))
        os.loader_readonly = loader.bool_attr("readonly")
        loader.finish()
    for boot in node.children("boot"):
        dev = boot.enum_attr("dev", BootDev)
        if dev is None:
            raise boot.error("missing required attribute 'dev' in <boot>", attr="dev")
        os.boot_devs.append(dev)
        boot.finish()
    menu = node.child("bootmenu")
    if menu is not None:
        os.bootmenu_enable = menu.bool_attr("enable")
        os.bootmenu_timeout = menu.int_attr("timeout", minimum=0, maximum=65535)
        menu.finish()
    for name in ("kernel", "initrd"):
        part = node.child(name)
        if part is not None:
            setattr(os, name, _absolute(part))
            part.finish()
    os.cmdline = node.child_text("cmdline")
    node.finish()
    return os


def render_os(os: Os) -> Elem:
    el = Elem("os")
    el.sub("type", os.type, arch=os.arch, machine=os.machine)
    if os.loader is not None:
        el.sub("loader", os.loader, readonly=yes_no(os.loader_readonly), type=os.loader_type)
    for name in ("kernel", "initrd", "cmdline"):
        value = getattr(os, name)
        if value is not None:
            el.sub(name, value)
    for dev in os.boot_devs:
        el.sub("boot", dev=dev.value)
    if os.bootmenu_enable is not None or os.bootmenu_timeout is not None:
        el.sub("bootmenu", enable=yes_no(os.bootmenu_enable), timeout=os.bootmenu_timeout)
    return el


# features ------------------------------------------------------------------------------------


def read_features(node: Node) -> Features:
    feats = Features()
    feats.acpi = node.flag_child("acpi")
    feats.apic = node.flag_child("apic")
    feats.pae = node.flag_child("pae")
    for name in ("vmport", "smm"):
        part = node.child(name)
        if part is not None:
            setattr(feats, f"{name}_state", part.bool_attr("state", "on", "off"))
            part.finish()
    node.finish()
    return feats


def render_features(feats: Features) -> Elem:
    el = Elem("features")
    for name in ("acpi", "apic", "pae"):
        if getattr(feats, name):
            el.sub(name)
    if feats.vmport_state is not None:
        el.sub("vmport", state=on_off(feats.vmport_state))
    if feats.smm_state is not None:
        el.sub("smm", state=on_off(feats.smm_state))
    return el


# clock ---------------------------------------------------------------------------------------


def read_clock(node: Node) -> Clock:
    clock = Clock(offset=node.choice_attr("offset", ("utc", "localtime", "variable")) or "utc")
    clock.adjustment = node.int_attr("adjustment", minimum=None)
    clock.basis = node.choice_attr("basis", ("utc", "localtime"))
    for tnode in node.children("timer"):
        name = tnode.choice_attr("name", TIMER_NAMES)
        if name is None:
            raise tnode.error("missing required attribute 'name' in <timer>", attr="name")
        timer = Timer(name=name, present=tnode.bool_attr("present"))
        timer.tickpolicy = tnode.choice_attr("tickpolicy", ("delay", "catchup", "merge", "discard"))
        timer.track = tnode.choice_attr("track", ("boot", "guest", "wall"))
        tnode.finish()
        clock.timers.append(timer)
    node.finish()
    return clock


def render_clock(clock: Clock) -> Elem:
    el = Elem("clock", offset=clock.offset, adjustment=clock.adjustment, basis=clock.basis)
    for t in clock.timers:
        timer = el.sub("timer", name=t.name, present=yes_no(t.present))
        timer.set(tickpolicy=t.tickpolicy, track=t.track)
    return el
