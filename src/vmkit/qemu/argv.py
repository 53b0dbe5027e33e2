"""Domain model -> qemu-system-x86_64 argv, in QEMU's modern syntax. Pure and deterministic.

`build_argv(dom, opts, paths)` is the whole public surface (with `quote_argv` for printing):
the same domain, options and paths always give the same list. The host's choices come in
through `ArgvOptions` (accelerator, vhost-net, TSC kHz, taps vmkit created, spare hot-plug
ports, the start time for a variable clock); this module never looks at the host itself.

The head of the command line (machine, CPU, memory, boot, QMP) is built here; the clock in
argv_clock; devices in argv_disks (disks and storage controllers), argv_net (NICs),
argv_chardev (serial, console, channels), argv_devices (USB, input, graphics, video,
balloon, rng, watchdog) and argv_pci (PCI addresses and root ports).

Choices worth knowing:
- libvirt's semantics where the XML is silent: no `<acpi/>` means `acpi=off`; no
  `<memballoon>` means a virtio balloon; no NIC model means rtl8139 (virtio on microvm).
- host-passthrough and host-model are `-cpu host` on kvm and `-cpu max` on tcg (tcg has no
  `host`); microvm without a `<cpu>` gets `-cpu max` (PLATFORM.md: idle cost).
- `<os><boot dev>` becomes the bootindex of the first device of each kind, not `-boot
  order=`: QEMU keeps that order in the CMOS, which holds only three devices on a PC.
- vCPU placement auto means no pinning (the host scheduler places); a cpuset is refused.

Left to the engine, because they are not start-up options: `-S`, `-daemonize`,
`-no-shutdown`, `-action` for shutdown/reboot/panic (only `-no-reboot` for on_reboot=destroy
and the watchdog action are set here), the VNC password (`password=on` is set here; the
secret goes over QMP `set_password`), NIC link state down (QMP `set_link` on `netN`),
currentMemory below memory (QMP `balloon`), and which binary runs (`opts.binary`;
`<emulator>` is not read). Anything else in the model that cannot be expressed raises
InvalidConfig naming it.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence

from vmkit.errors import InvalidConfig
from vmkit.model.defaults import DEFAULT_MACHINE
from vmkit.model.devices import DiskDevice
from vmkit.model.domain import BootDev, CpuMode, Domain, LifecycleAction
from vmkit.model.validate import validate_domain
from vmkit.qemu.argv_chardev import chardev_items
from vmkit.qemu.argv_clock import clock_args
from vmkit.qemu.argv_context import (
    ArgvOptions,
    Ctx,
    DeviceArg,
    Item,
    OptValue,
    RuntimePaths,
    check_path,
    machine_family,
    render_items,
    render_opts,
)
from vmkit.qemu.argv_devices import device_items, usb_controller_items
from vmkit.qemu.argv_disks import disk_items
from vmkit.qemu.argv_net import nic_items
from vmkit.qemu.argv_pci import plan_pci

__all__ = ["ArgvOptions", "RuntimePaths", "build_argv", "quote_argv"]

_CPU_MODEL_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_CPU_FEATURE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_VENDORS = {"Intel": "GenuineIntel", "AMD": "AuthenticAMD", "Hygon": "HygonGenuine"}
_FEATURE_SIGN = {"force": "+", "require": "+", "optional": "+", "disable": "-", "forbid": "-"}


def build_argv(dom: Domain, opts: ArgvOptions, paths: RuntimePaths) -> list[str]:
    """The full QEMU command line for `dom`; raises InvalidConfig for what cannot be run."""
    validate_domain(dom)
    ctx = Ctx(dom, opts, paths, machine_family(dom.os.machine or DEFAULT_MACHINE))
    ctx.boot = _boot_indexes(dom)
    head = _head_args(ctx)
    items: list[Item] = [*usb_controller_items(ctx)]
    items += disk_items(ctx)
    items += nic_items(ctx)
    items += chardev_items(ctx)
    items += device_items(ctx)
    devices = [i for i in items if isinstance(i, DeviceArg)]
    buses = plan_pci(ctx, devices)
    _check_unique_ids([*buses, *devices])
    return [*head, *render_items(buses), *render_items(items)]


def quote_argv(argv: Sequence[str]) -> str:
    """One shell-quoted line, runnable as printed (virsh domxml-to-native's output)."""
    return shlex.join(argv)


def _head_args(ctx: Ctx) -> list[str]:
    dom, paths = ctx.dom, ctx.paths
    args = [ctx.opts.binary]
    args += ["-name", render_opts(None, {"guest": dom.name, "debug-threads": True})]
    args += ["-uuid", dom.uuid]
    args += ["-machine", _machine_opts(ctx)]
    args += _cpu_args(ctx)
    args += ["-m", _memory_opts(dom)]
    args += ["-smp", _smp_opts(dom)]
    args += ["-nodefaults", "-no-user-config", "-display", "none", "-sandbox", "on"]
    monitor: dict[str, OptValue | None] = {
        "id": "charmonitor",
        "path": str(paths.qmp_socket),
        "server": True,
        "wait": False,
    }
    args += ["-chardev", render_opts("socket", monitor)]
    args += ["-mon", "chardev=charmonitor,id=monitor,mode=control"]
    args += clock_args(ctx)
    if dom.on_reboot is LifecycleAction.DESTROY:
        args.append("-no-reboot")
    args += _firmware_args(ctx)
    args += _kernel_args(ctx)
    args += _boot_args(ctx)
    return args


def _machine_opts(ctx: Ctx) -> str:
    dom = ctx.dom
    props: dict[str, str | bool | None] = {"accel": ctx.opts.accel, "usb": False}
    feats = dom.features
    if feats is not None and feats.vmport_state is not None:
        if ctx.microvm:
            raise InvalidConfig(
                "vmport is not available on the microvm machine type",
                xpath="/domain/features/vmport",
            )
        props["vmport"] = feats.vmport_state
    if feats is not None and feats.smm_state is not None:
        props["smm"] = feats.smm_state
    if feats is None or not feats.acpi:
        props["acpi"] = False  # libvirt: no <acpi/> in <features> means no ACPI
    props.update(_timer_machine_props(ctx))
    return render_opts(dom.os.machine or DEFAULT_MACHINE, props)


def _timer_machine_props(ctx: Ctx) -> dict[str, str | bool | None]:
    """hpet/pit/rtc present='no' become machine properties (`-no-hpet` is deprecated)."""
    props: dict[str, str | bool | None] = {}
    timers = ctx.dom.clock.timers if ctx.dom.clock else []
    for i, timer in enumerate(timers, start=1):
        xpath = f"/domain/clock/timer[{i}]/@present"
        if timer.present is not False:
            if timer.name == "hpet" and timer.present and ctx.microvm:
                raise InvalidConfig("microvm has no HPET", xpath=xpath, value="yes")
            continue
        if timer.name == "hpet" and not ctx.microvm:
            props["hpet"] = False
        elif timer.name == "pit":
            props["pit"] = False
        elif timer.name == "rtc":
            if not ctx.microvm:
                raise InvalidConfig(
                    "the RTC cannot be removed from a pc or q35 machine", xpath=xpath, value="no"
                )
            props["rtc"] = False
    return props


def _cpu_args(ctx: Ctx) -> list[str]:
    """-cpu: host-passthrough/host-model -> host (kvm) or max (tcg); custom -> model,+f,-f."""
    cpu = ctx.dom.cpu
    flags = _cpu_flags(ctx)
    model: str | None = None
    props: dict[str, str | bool | None] = {}
    if cpu is None or cpu.mode is CpuMode.CUSTOM:
        model = cpu.model if cpu else None
        if model is not None and not _CPU_MODEL_RE.match(model):
            raise InvalidConfig(
                f"malformed CPU model '{model}'", xpath="/domain/cpu/model", value=model
            )
        if model is None and (ctx.microvm or flags):
            model = "max" if ctx.microvm else "qemu64"
        if cpu is not None and cpu.vendor is not None:
            model = model or "qemu64"
            props["vendor"] = _cpuid_vendor(cpu.vendor)
    elif cpu.mode is CpuMode.MAXIMUM:
        model = "max"
    else:
        model = "host" if ctx.opts.accel == "kvm" else "max"
    if cpu is not None and cpu.mode is not CpuMode.CUSTOM and cpu.migratable is not None:
        props["migratable"] = cpu.migratable
    if model is None:
        return []
    head = render_opts(model, props)
    return ["-cpu", ",".join([head, *flags])]


def _cpuid_vendor(vendor: str) -> str:
    """libvirt's vendor name (Intel, AMD, Hygon) or a raw 12-character CPUID vendor string."""
    cpuid = _VENDORS.get(vendor, vendor)
    if len(cpuid) != 12 or not all(c.isalnum() for c in cpuid):
        raise InvalidConfig(
            f"unknown CPU vendor '{vendor}' (Intel, AMD, Hygon or a 12-character CPUID string)",
            xpath="/domain/cpu/vendor",
            value=vendor,
        )
    return cpuid


def _cpu_flags(ctx: Ctx) -> list[str]:
    flags: list[str] = []
    cpu = ctx.dom.cpu
    for i, feat in enumerate(cpu.features if cpu else [], start=1):
        xpath = f"/domain/cpu/feature[{i}]"
        sign = _FEATURE_SIGN.get(feat.policy)
        if sign is None:
            raise InvalidConfig(
                f"unknown CPU feature policy '{feat.policy}'",
                xpath=xpath + "/@policy",
                value=feat.policy,
            )
        if not _CPU_FEATURE_RE.match(feat.name):
            raise InvalidConfig(
                f"malformed CPU feature name '{feat.name}'",
                xpath=xpath + "/@name",
                value=feat.name,
            )
        flags.append(sign + feat.name)
    timers = ctx.dom.clock.timers if ctx.dom.clock else []
    if any(t.name == "kvmclock" and t.present is False for t in timers):
        flags.append("-kvmclock")
    return flags


def _memory_opts(dom: Domain) -> str:
    props: dict[str, str | int | None] = {"size": f"{dom.memory_kib}k"}
    if dom.max_memory_kib is not None:
        props["slots"] = dom.max_memory_slots or 0
        props["maxmem"] = f"{dom.max_memory_kib}k"
    elif dom.max_memory_slots is not None:
        raise InvalidConfig(
            "maxMemory slots need a maxMemory size", xpath="/domain/maxMemory/@slots"
        )
    cur = dom.current_memory_kib
    balloon = dom.devices.memballoon
    if cur is not None and cur < dom.memory_kib and balloon is not None and balloon.model == "none":
        raise InvalidConfig(
            f"currentMemory ({cur} KiB) below memory ({dom.memory_kib} KiB) needs a memory "
            "balloon, but memballoon model is 'none'",
            xpath="/domain/currentMemory",
            value=cur,
        )
    return render_opts(None, props)


def _smp_opts(dom: Domain) -> str:
    vcpu = dom.vcpu
    xpath = "/domain/vcpu"
    if vcpu.cpuset is not None:
        raise InvalidConfig(
            "vCPU pinning (cpuset) is not supported", xpath=xpath + "/@cpuset", value=vcpu.cpuset
        )
    if vcpu.placement not in (None, "static", "auto"):  # auto: the host scheduler decides
        raise InvalidConfig(
            f"vCPU placement '{vcpu.placement}' is not supported (static, auto)",
            xpath=xpath + "/@placement",
            value=vcpu.placement,
        )
    topo = dom.cpu.topology if dom.cpu else None
    sockets, dies, cores, threads = (
        (topo.sockets, topo.dies, topo.cores, topo.threads) if topo else (vcpu.count, 1, 1, 1)
    )
    current = vcpu.current if vcpu.current is not None else vcpu.count
    props = {
        "maxcpus": vcpu.count,
        "sockets": sockets,
        "dies": dies,
        "cores": cores,
        "threads": threads,
    }
    return render_opts(str(current), props)


def _firmware_args(ctx: Ctx) -> list[str]:
    os = ctx.dom.os
    if os.type != "hvm":
        raise InvalidConfig(
            f"OS type '{os.type}' is not supported (only 'hvm')",
            xpath="/domain/os/type",
            value=os.type,
        )
    if os.arch != "x86_64":
        raise InvalidConfig(
            f"architecture '{os.arch}' is not supported (only x86_64)",
            xpath="/domain/os/type/@arch",
            value=os.arch,
        )
    if os.loader is None:
        return []
    if os.loader_type not in (None, "rom"):
        raise InvalidConfig(
            f"loader type '{os.loader_type}' is not supported (only 'rom')",
            xpath="/domain/os/loader/@type",
            value=os.loader_type,
        )
    return ["-bios", check_path(os.loader, "/domain/os/loader")]


def _kernel_args(ctx: Ctx) -> list[str]:
    os = ctx.dom.os
    if os.kernel is None:
        for name, value in (("initrd", os.initrd), ("cmdline", os.cmdline)):
            if value is not None:
                raise InvalidConfig(
                    f"<{name}> needs a <kernel> (direct kernel boot)", xpath=f"/domain/os/{name}"
                )
        return []
    args = ["-kernel", check_path(os.kernel, "/domain/os/kernel")]
    if os.initrd is not None:
        args += ["-initrd", check_path(os.initrd, "/domain/os/initrd")]
    cmdline = _microvm_cmdline(ctx, os.cmdline)
    if cmdline is not None:
        if "\x00" in cmdline or "\n" in cmdline:
            raise InvalidConfig(
                "the kernel command line must be one line", xpath="/domain/os/cmdline"
            )
        args += ["-append", cmdline]
    return args


def _microvm_cmdline(ctx: Ctx, cmdline: str | None) -> str | None:
    """microvm hangs at boot on a busy host without a TSC hint (PLATFORM.md): add it."""
    if not ctx.microvm or ctx.opts.tsc_khz is None:
        return cmdline
    words = (cmdline or "").split()
    extra = []
    if not any(w.startswith("tsc_early_khz=") for w in words):
        extra.append(f"tsc_early_khz={ctx.opts.tsc_khz}")
    if not any(w.startswith("tsc=") for w in words):
        extra.append("tsc=reliable")
    return " ".join([*words, *extra]) if extra else cmdline


def _boot_indexes(dom: Domain) -> dict[int, int]:
    """bootindex per device (by id): per-device `<boot order>`, else `<os><boot dev>`.

    `<os><boot dev>` is not passed as `-boot order=`: QEMU keeps that in the CMOS, which holds
    three devices on a PC. It becomes the bootindex of the first device of each kind instead
    (first disk, first cdrom, first floppy, first NIC), which SeaBIOS honours the same way.
    """
    devs = dom.devices
    found = {id(d): d.boot_order for d in devs.disks if d.boot_order is not None}
    found |= {id(n): n.boot_order for n in devs.interfaces if n.boot_order is not None}
    if found:
        return found
    first: dict[BootDev, object] = {}
    kinds = {DiskDevice.DISK: BootDev.HD, DiskDevice.CDROM: BootDev.CDROM}
    kinds[DiskDevice.FLOPPY] = BootDev.FD
    for disk in devs.disks:
        first.setdefault(kinds[disk.device], disk)
    if devs.interfaces:
        first[BootDev.NETWORK] = devs.interfaces[0]
    for index, dev in enumerate(dom.os.boot_devs, start=1):
        if dev in first:
            found.setdefault(id(first[dev]), index)
    return found


def _boot_args(ctx: Ctx) -> list[str]:
    os = ctx.dom.os
    props: dict[str, str | int | bool | None] = {}
    if os.bootmenu_enable is not None:
        props["menu"] = os.bootmenu_enable
        if os.bootmenu_enable and os.bootmenu_timeout is not None:
            props["splash-time"] = os.bootmenu_timeout
    elif os.bootmenu_timeout is not None:
        raise InvalidConfig(
            "bootmenu timeout needs enable='yes'", xpath="/domain/os/bootmenu/@timeout"
        )
    return ["-boot", render_opts(None, props)] if props else []


def _check_unique_ids(devices: list[DeviceArg]) -> None:
    seen: dict[str, str] = {}
    for dev in devices:
        ident = dev.props.get("id")
        if not isinstance(ident, str):
            continue
        if ident in seen:
            raise InvalidConfig(
                f"device id '{ident}' is used twice ({seen[ident]} and {dev.xpath})",
                xpath=dev.xpath + "/alias/@name",
                value=ident,
            )
        seen[ident] = dev.xpath
