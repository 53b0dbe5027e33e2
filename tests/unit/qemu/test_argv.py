"""Focused rules of vmkit.qemu.argv: one behaviour per test (the golden files cover the rest)."""

from __future__ import annotations

import shlex
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from vmkit.errors import InvalidConfig
from vmkit.model.devices import (
    Address,
    CharDevice,
    CharType,
    Controller,
    ControllerType,
    Disk,
    DiskBus,
    DiskCache,
    DiskDevice,
    DiskIo,
    Graphics,
    GraphicsType,
    Input,
    Interface,
    InterfaceType,
    MemBalloon,
    NicModel,
    Rng,
    Video,
    VideoModel,
    Watchdog,
)
from vmkit.model.domain import (
    BootDev,
    Clock,
    Cpu,
    CpuFeature,
    CpuMode,
    Domain,
    Features,
    LifecycleAction,
    Timer,
)
from vmkit.qemu.argv import ArgvOptions, RuntimePaths, build_argv, quote_argv

RUN = Path("/run/vmkit/dom/t")
PATHS = RuntimePaths(RUN / "qmp.sock", RUN / "console.sock", RUN / "console.log", RUN)
TCG = ArgvOptions(accel="tcg")


def _dom(machine: str = "pc") -> Domain:
    dom = Domain(name="t", uuid="6c3e1d4f-0000-4000-8000-000000000001")
    dom.os.machine = machine
    dom.features = Features(acpi=True)
    return dom


def _argv(dom: Domain, opts: ArgvOptions = TCG) -> list[str]:
    return build_argv(dom, opts, PATHS)


def _values(argv: list[str], option: str) -> list[str]:
    return [argv[i + 1] for i, a in enumerate(argv) if a == option]


def _devices(argv: list[str], driver: str) -> list[dict[str, str]]:
    found = []
    for value in _values(argv, "-device"):
        head, _, rest = value.partition(",")
        if head == driver:
            found.append(dict(p.split("=", 1) for p in rest.split(",") if p))
    return found


def _user_nic(**kw: object) -> Interface:
    return Interface(InterfaceType.USER, mac_address="52:54:00:00:00:01", **kw)  # type: ignore[arg-type]


# ------------------------------------------------------------------ determinism, quoting


def test_same_domain_same_argv() -> None:
    def build() -> Domain:
        dom = _dom("q35")
        dom.devices.disks.append(Disk(source="/i/a.qcow2", target_dev="vda"))
        dom.devices.interfaces.append(_user_nic(model_type=NicModel.VIRTIO))
        dom.devices.serials.append(CharDevice("serial"))
        return dom

    first = _argv(build())
    assert first == _argv(build())
    dom = build()
    assert _argv(dom) == _argv(dom) == first


def test_quote_argv_round_trips_through_a_shell() -> None:
    dom = _dom()
    dom.os.kernel, dom.os.cmdline = "/boot/vm linuz", "console=ttyS0 root='/dev/vda 1'"
    argv = _argv(dom)
    assert shlex.split(quote_argv(argv)) == argv
    assert "\n" not in quote_argv(argv)


def test_commas_in_paths_are_doubled() -> None:
    dom = _dom()
    dom.devices.disks.append(Disk(source="/i/a,b.raw", target_dev="vda"))
    blockdev = _values(_argv(dom), "-blockdev")[0]
    assert "filename=/i/a,,b.raw," in blockdev


def test_head_of_the_command_line() -> None:
    argv = _argv(_dom())
    assert argv[:5] == ["qemu-system-x86_64", "-name", "guest=t,debug-threads=on", "-uuid", argv[4]]
    assert "-nodefaults" in argv and "-no-user-config" in argv
    assert _values(argv, "-sandbox") == ["on"]
    assert _values(argv, "-display") == ["none"]
    assert _values(argv, "-chardev")[0] == (
        f"socket,id=charmonitor,path={PATHS.qmp_socket},server=on,wait=off"
    )
    assert _values(argv, "-mon") == ["chardev=charmonitor,id=monitor,mode=control"]
    assert "-no-reboot" not in argv and "-no-shutdown" not in argv


def test_no_reboot_only_when_reboot_destroys() -> None:
    dom = _dom()
    dom.on_reboot = LifecycleAction.DESTROY
    assert "-no-reboot" in _argv(dom)
    dom.on_reboot = LifecycleAction.RESTART
    assert "-no-reboot" not in _argv(dom)


def test_acpi_off_without_features_like_libvirt() -> None:
    dom = _dom()
    dom.features = None
    assert _values(_argv(dom), "-machine") == ["pc,accel=tcg,usb=off,acpi=off"]
    dom.features = Features(acpi=True, vmport_state=False, smm_state=True)
    assert _values(_argv(dom), "-machine") == ["pc,accel=tcg,usb=off,vmport=off,smm=on"]


def test_a_balloon_is_added_unless_model_none() -> None:
    dom = _dom()
    assert len(_devices(_argv(dom), "virtio-balloon-pci")) == 1
    dom.devices.memballoon = MemBalloon("none")
    assert not _devices(_argv(dom), "virtio-balloon-pci")


# ------------------------------------------------------------------ microvm


def _microvm(cmdline: str | None = "console=ttyS0") -> Domain:
    dom = _dom("microvm")
    dom.os.kernel, dom.os.cmdline = "/boot/vmlinuz", cmdline
    return dom


def test_microvm_gets_tsc_options_and_cpu_max() -> None:
    argv = _argv(_microvm(), ArgvOptions(accel="tcg", tsc_khz=2400000))
    assert _values(argv, "-append") == ["console=ttyS0 tsc_early_khz=2400000 tsc=reliable"]
    assert _values(argv, "-cpu") == ["max"]


def test_microvm_tsc_options_need_the_host_tsc() -> None:
    argv = _argv(_microvm(), TCG)
    assert _values(argv, "-append") == ["console=ttyS0"]


def test_microvm_keeps_tsc_options_the_user_gave() -> None:
    dom = _microvm("tsc_early_khz=1000 console=ttyS0")
    argv = _argv(dom, ArgvOptions(accel="tcg", tsc_khz=2400000))
    assert _values(argv, "-append") == ["tsc_early_khz=1000 console=ttyS0 tsc=reliable"]
    dom.os.cmdline = None
    argv = _argv(dom, ArgvOptions(accel="tcg", tsc_khz=2400000))
    assert _values(argv, "-append") == ["tsc_early_khz=2400000 tsc=reliable"]


def test_microvm_cpu_chosen_by_the_user_stays() -> None:
    dom = _microvm()
    dom.cpu = Cpu(model="qemu64", features=[CpuFeature("require", "arat")])
    assert _values(_argv(dom), "-cpu") == ["qemu64,+arat"]


def test_pc_without_cpu_leaves_qemus_default() -> None:
    assert "-cpu" not in _argv(_dom())


def test_microvm_devices_are_virtio_mmio() -> None:
    dom = _microvm()
    dom.devices.disks.append(
        Disk(source="/i/r.raw", target_dev="vda", address=Address("virtio-mmio"))
    )
    dom.devices.interfaces.append(_user_nic())
    dom.devices.rngs.append(Rng())
    argv = _argv(dom)
    drivers = [v.split(",")[0] for v in _values(argv, "-device")]
    assert drivers == [
        "virtio-blk-device",
        "virtio-net-device",
        "virtio-balloon-device",
        "virtio-rng-device",
    ]
    assert not any("bus=pci" in v for v in _values(argv, "-device"))


# ------------------------------------------------------------------ q35 root ports


def _free_ports(argv: list[str]) -> list[str]:
    ports = [d["id"] for d in _devices(argv, "pcie-root-port")]
    used = {v.split("bus=")[1].split(",")[0] for v in _values(argv, "-device") if "bus=" in v}
    return [p for p in ports if p not in used]


@pytest.mark.parametrize("spare", [0, 1, 4, 9])
def test_q35_keeps_spare_root_ports_for_hotplug(spare: int) -> None:
    dom = _dom("q35")
    dom.devices.disks.append(Disk(source="/i/a.raw", target_dev="vda"))
    dom.devices.interfaces.append(_user_nic(model_type=NicModel.VIRTIO))
    argv = _argv(dom, ArgvOptions(accel="tcg", hotplug_ports=spare))
    assert len(_free_ports(argv)) == spare
    # every PCI device but the video sits on a root port of its own
    for value in _values(argv, "-device"):
        if value.startswith(("virtio-blk-pci", "virtio-net-pci", "virtio-balloon-pci")):
            assert ",bus=pci." in value and ",addr=0x0," in value


def test_q35_declared_free_ports_count_as_spare() -> None:
    dom = _dom("q35")
    for index in range(1, 7):
        dom.devices.controllers.append(Controller(ControllerType.PCI, index, "pcie-root-port"))
    argv = _argv(dom, ArgvOptions(accel="tcg", hotplug_ports=4))
    ports = _devices(argv, "pcie-root-port")
    assert [p["id"] for p in ports] == [f"pci.{i}" for i in range(1, 7)]  # balloon took one
    assert len(_free_ports(argv)) == 5


def test_pc_has_no_root_ports() -> None:
    dom = _dom("pc")
    dom.devices.disks.append(Disk(source="/i/a.raw", target_dev="vda"))
    argv = _argv(dom, ArgvOptions(accel="tcg", hotplug_ports=8))
    assert not _devices(argv, "pcie-root-port")
    assert _devices(argv, "virtio-blk-pci")[0]["bus"] == "pci.0"


def test_pci_addresses_from_the_xml_are_kept_and_others_avoid_them() -> None:
    dom = _dom("pc")
    pci = {"domain": "0", "bus": "0", "slot": "0x02", "function": "0"}
    dom.devices.disks.append(Disk(source="/i/a.raw", target_dev="vda", address=Address("pci", pci)))
    dom.devices.disks.append(Disk(source="/i/b.raw", target_dev="vdb"))
    blks = _devices(_argv(dom), "virtio-blk-pci")
    assert blks[0]["addr"] == "0x2" and blks[1]["addr"] == "0x3"


# ------------------------------------------------------------------ NICs, taps, vhost


def test_taps_vmkit_made_win_over_target_dev() -> None:
    dom = _dom()
    nic = Interface(InterfaceType.BRIDGE, mac_address="52:54:00:00:00:09", target_dev="vnet7")
    dom.devices.interfaces.append(nic)
    made = _values(_argv(dom, ArgvOptions(accel="tcg", taps={0: "vk-tap0"})), "-netdev")
    assert made == ["tap,id=hostnet0,ifname=vk-tap0,script=no,downscript=no"]
    fallback = _values(_argv(dom), "-netdev")
    assert fallback == ["tap,id=hostnet0,ifname=vnet7,script=no,downscript=no"]


def test_tap_missing_is_a_clear_error() -> None:
    dom = _dom()
    dom.devices.interfaces.append(Interface(InterfaceType.NETWORK, source_network="default"))
    with pytest.raises(InvalidConfig, match=r"interface 0 \(type 'network'\) has no tap"):
        _argv(dom)


def test_never_vhost_without_vhost_net() -> None:
    dom = _dom()
    dom.devices.interfaces.append(Interface(InterfaceType.NETWORK, model_type=NicModel.VIRTIO))
    dom.devices.interfaces.append(Interface(InterfaceType.NETWORK, model_type=NicModel.E1000))
    opts = {"taps": {0: "t0", 1: "t1"}}
    without = _values(_argv(dom, ArgvOptions(accel="tcg", **opts)), "-netdev")  # type: ignore[arg-type]
    assert not any("vhost" in v for v in without)
    with_vhost = _values(_argv(dom, ArgvOptions(accel="tcg", vhost_net=True, **opts)), "-netdev")  # type: ignore[arg-type]
    assert with_vhost[0].endswith(",vhost=on") and "vhost" not in with_vhost[1]


def test_vhost_asked_for_on_a_host_without_it() -> None:
    dom = _dom()
    nic = Interface(InterfaceType.NETWORK, model_type=NicModel.VIRTIO, driver_name="vhost")
    dom.devices.interfaces.append(nic)
    with pytest.raises(InvalidConfig, match="vhost-net was asked for but is not available"):
        _argv(dom, ArgvOptions(accel="tcg", taps={0: "t0"}))


def test_link_down_is_left_to_qmp() -> None:
    dom = _dom()
    dom.devices.interfaces.append(_user_nic(link_state="down"))
    value = _values(_argv(dom), "-device")[0]
    assert value.startswith("rtl8139,") and "link" not in value and ",id=net0," in value


# ------------------------------------------------------------------ CPU, clock, boot


@pytest.mark.parametrize(
    ("mode", "accel", "want"),
    [
        (CpuMode.HOST_PASSTHROUGH, "kvm", "host"),
        (CpuMode.HOST_PASSTHROUGH, "tcg", "max"),
        (CpuMode.HOST_MODEL, "kvm", "host"),
        (CpuMode.HOST_MODEL, "tcg", "max"),
        (CpuMode.MAXIMUM, "kvm", "max"),
    ],
)
def test_cpu_modes(mode: CpuMode, accel: str, want: str) -> None:
    dom = _dom()
    dom.cpu = Cpu(mode=mode)
    opts = ArgvOptions(accel="kvm" if accel == "kvm" else "tcg")
    argv = _argv(dom, opts)
    assert _values(argv, "-cpu") == [want]
    assert _values(argv, "-machine")[0].startswith(f"pc,accel={accel},")


def test_pit_policy_only_on_kvm() -> None:
    dom = _dom()
    dom.clock = Clock(timers=[Timer("pit", tickpolicy="catchup")])
    assert "-global" not in _argv(dom)
    kvm = _argv(dom, ArgvOptions(accel="kvm"))
    assert _values(kvm, "-global") == ["kvm-pit.lost_tick_policy=slew"]


def test_variable_clock_starts_at_now_plus_adjustment() -> None:
    dom = _dom()
    dom.clock = Clock(offset="variable", adjustment=-3600, basis="utc")
    now = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    argv = _argv(dom, ArgvOptions(accel="tcg", now=now))
    assert _values(argv, "-rtc") == ["base=2026-01-02T02:04:05"]


def test_os_boot_order_becomes_bootindex() -> None:
    dom = _dom()
    dom.os.boot_devs = [BootDev.NETWORK, BootDev.CDROM, BootDev.HD, BootDev.FD]
    dom.devices.disks.append(Disk(source="/i/a.raw", target_dev="vda"))
    dom.devices.disks.append(Disk(source="/i/b.raw", target_dev="vdb"))
    dom.devices.disks.append(Disk(device=DiskDevice.CDROM, target_dev="hdc"))
    dom.devices.disks.append(Disk(device=DiskDevice.FLOPPY, target_dev="fda"))
    dom.devices.interfaces.append(_user_nic())
    argv = _argv(dom)
    assert [d.get("bootindex") for d in _devices(argv, "virtio-blk-pci")] == ["3", None]
    assert _devices(argv, "ide-cd")[0]["bootindex"] == "2"
    assert _devices(argv, "rtl8139")[0]["bootindex"] == "1"
    assert "isa-fdc.bootindexA=4" in _values(argv, "-global")
    assert "-boot" not in argv


# ------------------------------------------------------------------ refusals


def _with(change: Callable[[Domain], object], machine: str = "pc") -> Domain:
    dom = _dom(machine)
    change(dom)
    return dom


def _add_disk(**kw: object) -> Callable[[Domain], object]:
    return lambda d: d.devices.disks.append(Disk(**kw))  # type: ignore[arg-type]


def _set(obj: str, **kw: object) -> Callable[[Domain], object]:
    def change(dom: Domain) -> None:
        target = dom.os if obj == "os" else dom
        for key, value in kw.items():
            setattr(target, key, value)

    return change


def _dev(kind: str, value: object) -> Callable[[Domain], object]:
    return lambda d: getattr(d.devices, kind).append(value)


def _pci(slot: int, bus: int = 0) -> Address:
    return Address("pci", {"domain": "0", "bus": str(bus), "slot": str(slot), "function": "0"})


REFUSED: list[tuple[str, Callable[[Domain], object], str, str]] = [
    ("machine", _set("os", machine="isapc"), "pc", "machine type 'isapc' is not supported"),
    ("arch", _set("os", arch="i686"), "pc", "architecture 'i686' is not supported"),
    ("pflash", _set("os", loader="/f.fd", loader_type="pflash"), "pc", "loader type 'pflash'"),
    ("initrd", _set("os", initrd="/i.gz"), "pc", "<initrd> needs a <kernel>"),
    ("cpuset", lambda d: setattr(d.vcpu, "cpuset", "0-1"), "pc", "pinning (cpuset)"),
    (
        "native-io",
        _add_disk(source="/a", target_dev="vda", driver_io=DiskIo.NATIVE),
        "pc",
        "io='native' needs cache='none'",
    ),
    (
        "discard",
        _add_disk(source="/a", target_dev="vda", driver_discard="maybe"),
        "pc",
        "discard 'maybe'",
    ),
    ("driver", _add_disk(source="/a", target_dev="vda", driver_name="tap"), "pc", "driver 'tap'"),
    (
        "ide-ro",
        _add_disk(source="/a", target_dev="hda", readonly=True),
        "pc",
        "read-only ide hard disk",
    ),
    ("hde", _add_disk(source="/a", target_dev="hde"), "pc", "outside the built-in IDE"),
    (
        "fd-serial",
        _add_disk(device=DiskDevice.FLOPPY, target_dev="fda", serial="x"),
        "pc",
        "floppy drive has no serial",
    ),
    ("microvm-ide", _add_disk(source="/a", target_dev="hda"), "microvm", "not available on"),
    (
        "microvm-video",
        _dev("videos", Video(VideoModel.VGA)),
        "microvm",
        "video device is not available",
    ),
    ("microvm-usb", _dev("inputs", Input("tablet")), "microvm", "USB"),
    (
        "microvm-e1000",
        _dev("interfaces", _user_nic(model_type=NicModel.E1000)),
        "microvm",
        "only virtio",
    ),
    (
        "microvm-pci",
        _add_disk(source="/a", target_dev="vda", address=_pci(3)),
        "microvm",
        "no PCI bus",
    ),
    (
        "usb-none",
        lambda d: (
            d.devices.controllers.append(Controller(ControllerType.USB, model="none")),
            d.devices.inputs.append(Input("tablet")),
        ),
        "pc",
        "needs USB, but USB is off",
    ),
    (
        "scsi-model",
        _dev("controllers", Controller(ControllerType.SCSI, model="ibmvscsi")),
        "pc",
        "SCSI controller model 'ibmvscsi'",
    ),
    (
        "port-on-pc",
        _dev("controllers", Controller(ControllerType.PCI, 1, model="pcie-root-port")),
        "pc",
        "not supported on a pc machine",
    ),
    (
        "pci-twice",
        lambda d: d.devices.disks.extend(
            [
                Disk(source="/a", target_dev="vda", address=_pci(5)),
                Disk(source="/b", target_dev="vdb", address=_pci(5)),
            ]
        ),
        "pc",
        "is used by both",
    ),
    ("pci-bus", _add_disk(source="/a", target_dev="vda", address=_pci(0, 3)), "pc", "bus 3"),
    ("pci-fixed", _add_disk(source="/a", target_dev="vda", address=_pci(1)), "pc", "taken by"),
    (
        "two-vnc",
        lambda d: d.devices.graphics.extend([Graphics(GraphicsType.VNC)] * 2),
        "pc",
        "only one VNC",
    ),
    ("vnc-port", _dev("graphics", Graphics(GraphicsType.VNC, port=5000)), "pc", "below 5900"),
    ("vram", _dev("videos", Video(VideoModel.VGA, vram=1000)), "pc", "whole MiB"),
    ("vram-virtio", _dev("videos", Video(VideoModel.VIRTIO, vram=16384)), "pc", "cannot be set"),
    ("heads", _dev("videos", Video(VideoModel.VGA, heads=2)), "pc", "has one head"),
    ("qxl-ram", _dev("videos", Video(VideoModel.VGA, ram=65536)), "pc", "only be set on a qxl"),
    (
        "secondary",
        lambda d: d.devices.videos.extend([Video(VideoModel.VGA), Video(VideoModel.CIRRUS)]),
        "pc",
        "can only be the primary",
    ),
    ("wd-dump", _dev("watchdogs", Watchdog("i6300esb", "dump")), "pc", "action 'dump'"),
    ("wd-itco", _dev("watchdogs", Watchdog("itco")), "pc", "'itco' is not supported on pc"),
    (
        "wd-actions",
        lambda d: d.devices.watchdogs.extend(
            [Watchdog("i6300esb", "reset"), Watchdog("ib700", "pause")]
        ),
        "pc",
        "share one action",
    ),
    ("rng-egd", _dev("rngs", Rng(backend_model="egd")), "pc", "backend 'egd'"),
    ("balloon", lambda d: setattr(d.devices, "memballoon", MemBalloon("xen")), "pc", "'xen'"),
    (
        "rtc-merge",
        lambda d: setattr(d, "clock", Clock(timers=[Timer("rtc", tickpolicy="merge")])),
        "pc",
        "rtc tickpolicy 'merge'",
    ),
    (
        "rtc-boot",
        lambda d: setattr(d, "clock", Clock(timers=[Timer("rtc", track="boot")])),
        "pc",
        "rtc track 'boot'",
    ),
    (
        "timer",
        lambda d: setattr(d, "clock", Clock(timers=[Timer("armvtimer")])),
        "pc",
        "timer 'armvtimer'",
    ),
    (
        "hpet-microvm",
        lambda d: setattr(d, "clock", Clock(timers=[Timer("hpet", present=True)])),
        "microvm",
        "no HPET",
    ),
    (
        "rtc-pc",
        lambda d: setattr(d, "clock", Clock(timers=[Timer("rtc", present=False)])),
        "pc",
        "RTC cannot be removed",
    ),
    ("basis", lambda d: setattr(d, "clock", Clock("variable", basis="gmt")), "pc", "basis 'gmt'"),
    ("user-queues", _dev("interfaces", _user_nic(driver_queues=2)), "pc", "virtio"),
    (
        "mtu-e1000",
        _dev("interfaces", _user_nic(model_type=NicModel.E1000, mtu_size=1400)),
        "pc",
        "MTU is only supported on virtio",
    ),
    ("user-script", _dev("interfaces", _user_nic(script_path="/x")), "pc", "runs no script"),
    (
        "alias-twice",
        lambda d: d.devices.disks.extend(
            [
                Disk(source="/a", target_dev="vda", alias="ua-x"),
                Disk(source="/b", target_dev="vdb", alias="ua-x"),
            ]
        ),
        "pc",
        "device id 'ua-x' is used twice",
    ),
    ("serial-type", _dev("serials", CharDevice("serial", target_type="spapr")), "pc", "'spapr'"),
    (
        "serial-port",
        _dev("serials", CharDevice("serial", target_port=4)),
        "pc",
        "ISA serial port 4 needs an <address",
    ),
    ("console", _dev("consoles", CharDevice("console", target_type="sclp")), "pc", "'sclp'"),
    (
        "guestfwd",
        _dev("channels", CharDevice("channel", CharType.PTY, target_type="guestfwd")),
        "pc",
        "channel target type 'guestfwd'",
    ),
    (
        "unix-path",
        _dev("serials", CharDevice("serial", CharType.UNIX)),
        "pc",
        "needs <source path=",
    ),
    (
        "balloon-none",
        lambda d: (
            setattr(d, "current_memory_kib", d.memory_kib // 2),
            setattr(d.devices, "memballoon", MemBalloon("none")),
        ),
        "pc",
        "memballoon model is 'none'",
    ),
    ("vendor", lambda d: setattr(d, "cpu", Cpu(vendor="Cyrix")), "pc", "unknown CPU vendor"),
    (
        "policy",
        lambda d: setattr(d, "cpu", Cpu(model="qemu64", features=[CpuFeature("maybe", "sse")])),
        "pc",
        "feature policy 'maybe'",
    ),
    ("bootmenu", _set("os", bootmenu_timeout=100), "pc", "needs enable='yes'"),
    (
        "scsi-cd-usb-addr",
        _add_disk(source="/a", target_dev="sda", target_bus=DiskBus.USB, address=_pci(4)),
        "pc",
        "expected 'usb'",
    ),
]


@pytest.mark.parametrize(
    ("change", "machine", "message"),
    [pytest.param(c, m, msg, id=name) for name, c, m, msg in REFUSED],
)
def test_refused(change: Callable[[Domain], object], machine: str, message: str) -> None:
    dom = _with(change, machine)
    if machine == "microvm":
        dom.os.kernel = "/boot/vmlinuz"
    with pytest.raises(InvalidConfig) as info:
        _argv(dom)
    assert message in str(info.value)
    assert info.value.exit_code == 2


def test_unix_channel_without_path_lives_in_run_dir() -> None:
    dom = _dom()
    agent = CharDevice("channel", CharType.UNIX, target_type="virtio")
    agent.target_name = "org.qemu.guest_agent.0"
    dom.devices.channels.append(agent)
    chardevs = _values(_argv(dom), "-chardev")
    assert f"path={RUN}/org.qemu.guest_agent.0.sock,server=on,wait=off" in chardevs[-1]


def test_first_pty_serial_is_the_console_socket() -> None:
    dom = _dom()
    dom.devices.serials += [CharDevice("serial"), CharDevice("serial")]
    dom.devices.consoles.append(CharDevice("console", target_type="serial"))
    chardevs = _values(_argv(dom), "-chardev")[1:]
    assert chardevs == [
        f"socket,id=charserial0,path={PATHS.console_socket},server=on,wait=off,"
        f"logfile={PATHS.console_log},logappend=on",
        "pty,id=charserial1",
    ]


def test_cache_modes_map_like_libvirt() -> None:
    want = {
        DiskCache.NONE: ("on", "off", "on"),
        DiskCache.WRITETHROUGH: ("off", "off", "off"),
        DiskCache.WRITEBACK: ("off", "off", "on"),
        DiskCache.DIRECTSYNC: ("on", "off", "off"),
        DiskCache.UNSAFE: ("off", "on", "on"),
    }
    for cache, (direct, no_flush, write_cache) in want.items():
        dom = _dom()
        dom.devices.disks.append(Disk(source="/a", target_dev="vda", driver_cache=cache))
        argv = _argv(dom)
        fmt = _values(argv, "-blockdev")[1]
        assert f"cache.direct={direct},cache.no-flush={no_flush}" in fmt
        assert _devices(argv, "virtio-blk-pci")[0]["write-cache"] == write_cache
