"""Golden argv tests: every domain case -> tests/data/argv/<case>.args, one argument per line.

Two sources of cases:
- tests/data/domain/<case>.xml, read by vmkit.xml.domain.parse_domain;
- the Python-built domains below (`py-*`), which reach corners the XML cases may not.

All are built with fixed runtime paths (/run/vmkit/dom/NAME/...), accel tcg, a tap `vnetN`
for every network/bridge/ethernet interface and a host TSC of 2.1 GHz, unless a case says
otherwise. A case the builder refuses has `error: <message>` as its golden file.
`pytest --regen-golden` rewrites the files; review the diff like code.

tests/integration/test_argv_qemu.py loads this module by path and starts QEMU on every case.
"""

from __future__ import annotations

import copy
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
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
    DiskFormat,
    DiskIo,
    DiskType,
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
    CpuTopology,
    Domain,
    DomainType,
    Features,
    LifecycleAction,
    Timer,
    Vcpu,
)
from vmkit.qemu.argv import ArgvOptions, RuntimePaths, build_argv

DATA = Path(__file__).resolve().parents[2] / "data"
DOMAIN_DIR = DATA / "domain"
ARGV_DIR = DATA / "argv"
TSC_KHZ = 2100000
NOW = datetime(2026, 11, 25, 12, 0, 0, tzinfo=UTC)  # start time, for clock offset='variable'
TAP_TYPES = {InterfaceType.NETWORK, InterfaceType.BRIDGE, InterfaceType.ETHERNET}


@dataclass
class Case:
    """A domain and the host choices it is built with."""

    dom: Domain
    accel: str = "tcg"
    vhost_net: bool = False
    hotplug_ports: int = 4
    taps: dict[int, str] | None = None  # None: vnetN for every tap-type NIC
    tsc_khz: int | None = TSC_KHZ
    notes: list[str] = field(default_factory=list)

    def options(self) -> ArgvOptions:
        taps = self.taps
        if taps is None:
            nics = self.dom.devices.interfaces
            taps = {i: f"vnet{i}" for i, n in enumerate(nics) if n.type in TAP_TYPES}
        accel = "kvm" if self.accel == "kvm" else "tcg"
        return ArgvOptions(
            accel=accel,
            vhost_net=self.vhost_net,
            tsc_khz=self.tsc_khz,
            taps=taps,
            hotplug_ports=self.hotplug_ports,
            now=NOW,
        )


def golden_paths(name: str, root: Path = Path("/run/vmkit/dom")) -> RuntimePaths:
    run = root / name
    return RuntimePaths(run / "qmp.sock", run / "console.sock", run / "console.log", run)


def render_golden(case: Case, name: str) -> str:
    try:
        argv = build_argv(case.dom, case.options(), golden_paths(name))
    except InvalidConfig as exc:
        return f"error: {exc}\n"
    assert not any("\n" in a for a in argv), "an argument holds a newline"
    return "\n".join(argv) + "\n"


# ---------------------------------------------------------------- Python-built cases


def _dom(name: str, machine: str = "pc", memory_kib: int = 262144) -> Domain:
    dom = Domain(name=name, uuid=str(uuid.uuid5(uuid.NAMESPACE_DNS, f"{name}.vmkit.test")))
    dom.os.machine = machine
    dom.memory_kib = memory_kib
    dom.features = Features(acpi=True, apic=True)
    return dom


def _pci(bus: int, slot: int, fn: int = 0, multifunction: bool = False) -> Address:
    attrs = {"domain": "0x0000", "bus": f"{bus:#04x}", "slot": f"{slot:#04x}"}
    attrs["function"] = f"{fn:#x}"
    if multifunction:
        attrs["multifunction"] = "on"
    return Address("pci", attrs)


def _drive(controller: int = 0, bus: int = 0, target: int = 0, unit: int = 0) -> Address:
    attrs = {"controller": controller, "bus": bus, "target": target, "unit": unit}
    return Address("drive", {k: str(v) for k, v in attrs.items()})


def _pty_console(dom: Domain) -> None:
    dom.devices.serials.append(
        CharDevice("serial", target_type="isa-serial", target_port=0, target_model="isa-serial")
    )
    dom.devices.consoles.append(CharDevice("console", target_type="serial", target_port=0))


def case_minimal_pc() -> Case:
    """The least a domain can say: name, memory; no features (so ACPI off, as libvirt)."""
    dom = Domain(name="minimal", uuid="c7a5fdbd-cdaf-9455-926a-d65c16db1809")
    dom.os.machine = "pc"
    return Case(dom)


def case_virt_install_q35() -> Case:
    """The shape virt-install --print-xml writes for q35: root ports, no addresses."""
    dom = _dom("vi-q35", "pc-q35-7.2", 1048576)
    dom.vcpu = Vcpu(count=2, placement="static")
    dom.cpu = Cpu(mode=CpuMode.HOST_PASSTHROUGH, check="none", migratable=True)
    dom.features = Features(acpi=True, apic=True, vmport_state=False)
    dom.clock = Clock(
        timers=[
            Timer("rtc", tickpolicy="catchup"),
            Timer("pit", tickpolicy="delay"),
            Timer("hpet", present=False),
        ]
    )
    dom.on_poweroff = LifecycleAction.DESTROY
    dom.on_reboot = LifecycleAction.RESTART
    dom.on_crash = LifecycleAction.DESTROY
    dv = dom.devices
    dv.emulator = "/usr/bin/qemu-system-x86_64"
    dv.disks.append(
        Disk(
            driver_name="qemu",
            driver_type=DiskFormat.QCOW2,
            driver_discard="unmap",
            source="/var/lib/vmkit/images/vi-q35.qcow2",
            target_dev="vda",
            target_bus=DiskBus.VIRTIO,
        )
    )
    dv.disks.append(Disk(device=DiskDevice.CDROM, target_dev="sda", target_bus=DiskBus.SATA))
    dv.controllers.append(Controller(ControllerType.USB, model="qemu-xhci", ports=15))
    dv.controllers.append(Controller(ControllerType.PCI, model="pcie-root"))
    for index in range(1, 15):
        dv.controllers.append(Controller(ControllerType.PCI, index, model="pcie-root-port"))
    dv.interfaces.append(
        Interface(
            InterfaceType.NETWORK,
            mac_address="52:54:00:6b:3c:01",
            source_network="default",
            model_type=NicModel.VIRTIO,
        )
    )
    _pty_console(dom)
    dv.channels.append(
        CharDevice(
            "channel", CharType.UNIX, target_type="virtio", target_name="org.qemu.guest_agent.0"
        )
    )
    dv.inputs.append(Input("tablet", "usb"))
    dv.graphics.append(Graphics(GraphicsType.VNC, port=-1))
    dv.videos.append(Video(VideoModel.VIRTIO))
    dv.memballoon = MemBalloon("virtio")
    dv.rngs.append(Rng(backend_path="/dev/urandom"))
    return Case(dom)


def case_dumpxml_pc() -> Case:
    """What virsh dumpxml prints for a running pc domain: every PCI address given."""
    dom = _dom("dump-pc", "pc-i440fx-7.2", 524288)
    dom.id = 7
    dom.current_memory_kib = 524288
    dom.cpu = Cpu(mode=CpuMode.CUSTOM, match="exact", check="partial", model="qemu64")
    dom.clock = Clock(offset="utc")
    dom.on_reboot = LifecycleAction.DESTROY
    dv = dom.devices
    dv.disks.append(
        Disk(
            driver_name="qemu",
            driver_type=DiskFormat.QCOW2,
            source="/var/lib/vmkit/images/dump-pc.qcow2",
            target_dev="vda",
            target_bus=DiskBus.VIRTIO,
            alias="virtio-disk0",
            address=_pci(0, 4),
            source_index=2,
            boot_order=1,
        )
    )
    dv.disks.append(
        Disk(
            device=DiskDevice.CDROM,
            driver_type=DiskFormat.RAW,
            target_dev="hdc",
            target_bus=DiskBus.IDE,
            readonly=True,
            alias="ide0-1-0",
            address=_drive(0, 1, 0, 0),
            boot_order=2,
        )
    )
    dv.controllers += [
        Controller(ControllerType.USB, model="piix3-uhci", alias="usb", address=_pci(0, 1, 2)),
        Controller(ControllerType.PCI, model="pci-root", alias="pci.0"),
        Controller(ControllerType.IDE, alias="ide", address=_pci(0, 1, 1)),
    ]
    dv.interfaces.append(
        Interface(
            InterfaceType.BRIDGE,
            mac_address="52:54:00:12:ab:cd",
            source_bridge="br0",
            target_dev="vnet3",
            model_type=NicModel.E1000,
            alias="net0",
            address=_pci(0, 3),
            boot_order=3,
        )
    )
    serial = CharDevice("serial", target_type="isa-serial", target_port=0, alias="serial0")
    serial.source_path, serial.target_model = "/dev/pts/3", "isa-serial"
    dv.serials.append(serial)
    console = CharDevice("console", target_type="serial", target_port=0, alias="serial0")
    console.tty = "/dev/pts/3"
    dv.consoles.append(console)
    dv.inputs += [
        Input("tablet", "usb", alias="input0", address=Address("usb", {"bus": "0", "port": "1"}))
    ]
    dv.inputs += [Input("mouse", "ps2", alias="input1"), Input("keyboard", "ps2", alias="input2")]
    dv.graphics.append(
        Graphics(
            GraphicsType.VNC,
            port=5901,
            autoport=False,
            listen="0.0.0.0",
            passwd="s3cret",
            keymap="en-us",
        )
    )
    dv.videos.append(
        Video(VideoModel.VGA, vram=16384, heads=1, primary=True, alias="video0", address=_pci(0, 2))
    )
    dv.memballoon = MemBalloon("virtio", alias="balloon0", address=_pci(0, 5))
    return Case(dom, taps={})


def case_dumpxml_q35() -> Case:
    """virsh dumpxml of a q35 domain: root ports packed at 00:02.x, devices on them."""
    dom = _dom("dump-q35", "pc-q35-7.2", 1048576)
    dom.vcpu = Vcpu(count=2)
    dom.cpu = Cpu(mode=CpuMode.HOST_MODEL, check="partial")
    dv = dom.devices
    dv.controllers.append(Controller(ControllerType.PCI, 0, model="pcie-root", alias="pcie.0"))
    for i in range(1, 8):
        ctrl = Controller(
            ControllerType.PCI, i, model="pcie-root-port", model_name="pcie-root-port"
        )
        ctrl.target_chassis, ctrl.target_port = i, 0x10 + i - 1
        ctrl.alias, ctrl.address = f"pci.{i}", _pci(0, 2, i - 1, multifunction=i == 1)
        dv.controllers.append(ctrl)
    dv.controllers += [
        Controller(ControllerType.USB, 0, model="qemu-xhci", ports=15, address=_pci(2, 0)),
        Controller(ControllerType.SATA, 0, alias="ide", address=_pci(0, 0x1F, 2)),
        Controller(ControllerType.VIRTIO_SERIAL, 0, address=_pci(3, 0)),
    ]
    dv.disks.append(
        Disk(
            driver_type=DiskFormat.QCOW2,
            driver_cache=DiskCache.NONE,
            driver_io=DiskIo.NATIVE,
            source="/var/lib/vmkit/images/dump-q35.qcow2",
            target_dev="vda",
            target_bus=DiskBus.VIRTIO,
            address=_pci(4, 0),
        )
    )
    dv.disks.append(
        Disk(
            device=DiskDevice.CDROM,
            source="/var/lib/vmkit/iso/install.iso",
            target_dev="sda",
            target_bus=DiskBus.SATA,
            readonly=True,
            address=_drive(0, 0, 0, 0),
        )
    )
    dv.interfaces.append(
        Interface(
            InterfaceType.NETWORK,
            mac_address="52:54:00:aa:00:01",
            source_network="default",
            target_dev="vnet0",
            model_type=NicModel.VIRTIO,
            address=_pci(1, 0),
            source_portid="6f2c1f28-44de-4b5c-a5cc-9f4ab8c0a1b2",
        )
    )
    _pty_console(dom)
    agent = CharDevice(
        "channel", CharType.UNIX, target_type="virtio", target_name="org.qemu.guest_agent.0"
    )
    agent.source_mode = "bind"
    agent.source_path = "/run/vmkit/dom/dump-q35/agent.sock"
    agent.address = Address("virtio-serial", {"controller": "0", "bus": "0", "port": "1"})
    agent.target_state = "disconnected"
    dv.channels.append(agent)
    dv.graphics.append(Graphics(GraphicsType.VNC, port=5900, autoport=True, listen="127.0.0.1"))
    dv.videos.append(Video(VideoModel.VIRTIO, heads=1, primary=True, address=_pci(0, 1)))
    dv.memballoon = MemBalloon("virtio", address=_pci(5, 0))
    dv.rngs.append(Rng(address=_pci(6, 0)))
    return Case(dom)


def case_microvm() -> Case:
    """microvm with direct kernel boot: gets -cpu max and the TSC kernel options."""
    dom = _dom("micro", "microvm", 131072)
    dom.os.kernel = "/var/lib/vmkit/boot/vmlinuz"
    dom.os.initrd = "/var/lib/vmkit/boot/initramfs.gz"
    dom.os.cmdline = "console=ttyS0 quiet"
    dom.on_reboot = LifecycleAction.RESTART
    dv = dom.devices
    dv.disks.append(Disk(source="/var/lib/vmkit/images/micro.raw", target_dev="vda"))
    dv.interfaces.append(Interface(InterfaceType.USER, mac_address="52:54:00:00:00:02"))
    dv.serials.append(CharDevice("serial"))
    dv.consoles.append(CharDevice("console", target_type="virtio"))
    dv.memballoon = MemBalloon("virtio", autodeflate=True, stats_period=5)
    dv.rngs.append(Rng(backend_model="builtin"))
    dv.inputs.append(Input("keyboard", "virtio"))
    return Case(dom)


def case_microvm_chosen() -> Case:
    """microvm where the user chose a CPU and gave the TSC options already."""
    dom = _dom("micro-cpu", "microvm", 131072)
    dom.features = Features(acpi=False)
    dom.cpu = Cpu(model="qemu64", features=[CpuFeature("require", "arat")])
    dom.os.kernel = "/var/lib/vmkit/boot/vmlinuz"
    dom.os.cmdline = "console=ttyS0 tsc_early_khz=1000000 tsc=unstable"
    dom.clock = Clock(timers=[Timer("pit", present=False), Timer("rtc", present=False)])
    dom.devices.interfaces.append(
        Interface(
            InterfaceType.ETHERNET, mac_address="52:54:00:00:00:03", model_type=NicModel.VIRTIO
        )
    )
    dom.devices.controllers.append(Controller(ControllerType.USB, model="none"))
    return Case(dom, taps={0: "vk-micro0"})


def case_disks_pc() -> Case:
    """Every bus and cache mode on pc: virtio, ide, sata, scsi, usb, floppy."""
    dom = _dom("disks-pc")
    img = "/var/lib/vmkit/images/"
    dv = dom.devices
    caches = [
        (DiskCache.NONE, DiskIo.NATIVE),
        (DiskCache.WRITETHROUGH, DiskIo.THREADS),
        (DiskCache.WRITEBACK, DiskIo.IO_URING),
        (DiskCache.DIRECTSYNC, None),
        (DiskCache.UNSAFE, None),
        (DiskCache.DEFAULT, None),
    ]
    for n, (cache, io) in enumerate(caches):
        dev = f"vd{chr(ord('a') + n)}"
        dv.disks.append(
            Disk(
                driver_type=DiskFormat.QCOW2 if n % 2 else DiskFormat.RAW,
                driver_cache=cache,
                driver_io=io,
                driver_discard="unmap" if n == 4 else None,
                source=f"{img}{dev},with,commas.img",
                target_dev=dev,
            )
        )
    dv.disks.append(
        Disk(
            source=img + "shared.raw",
            target_dev="vdg",
            readonly=True,
            shareable=True,
            serial="SER-0001",
            driver_discard="ignore",
            boot_order=1,
        )
    )
    dv.disks.append(Disk(type=DiskType.BLOCK, source="/dev/vmkit-test/lv0", target_dev="vdh"))
    dv.disks.append(Disk(source=img + "ide.raw", target_dev="hda", serial="IDE-A", boot_order=2))
    dv.disks.append(Disk(device=DiskDevice.CDROM, target_dev="hdc", target_bus=DiskBus.IDE))
    dv.disks.append(
        Disk(
            source=img + "sata.qcow2",
            driver_type=DiskFormat.QCOW2,
            target_dev="sda",
            target_bus=DiskBus.SATA,
        )
    )
    dv.disks.append(
        Disk(source=img + "scsi.raw", target_dev="sdb", target_bus=DiskBus.SCSI, boot_order=3)
    )
    dv.disks.append(
        Disk(
            device=DiskDevice.CDROM,
            source=img + "cd.iso",
            target_dev="sdc",
            target_bus=DiskBus.SCSI,
        )
    )
    dv.disks.append(
        Disk(source=img + "usb.raw", target_dev="sdd", target_bus=DiskBus.USB, serial="USB1")
    )
    dv.disks.append(Disk(device=DiskDevice.CDROM, target_dev="sde", target_bus=DiskBus.USB))
    dv.disks.append(
        Disk(device=DiskDevice.FLOPPY, source=img + "floppy.img", target_dev="fda", boot_order=4)
    )
    dv.disks.append(Disk(device=DiskDevice.FLOPPY, target_dev="fdb"))
    return Case(dom)


def case_disks_q35() -> Case:
    """q35: IDE disks on the built-in AHCI, a second AHCI, lsilogic SCSI, isa-fdc floppy."""
    dom = _dom("disks-q35", "q35")
    img = "/var/lib/vmkit/images/"
    dv = dom.devices
    dv.controllers.append(Controller(ControllerType.SCSI, 0, model="lsilogic"))
    dv.controllers.append(Controller(ControllerType.SCSI, 1, model="virtio-scsi"))
    dv.disks.append(Disk(source=img + "a.raw", target_dev="hda", target_bus=DiskBus.IDE))
    dv.disks.append(Disk(device=DiskDevice.CDROM, target_dev="hdb", target_bus=DiskBus.IDE))
    dv.disks.append(Disk(source=img + "b.raw", target_dev="sdf", target_bus=DiskBus.SATA))
    dv.disks.append(
        Disk(
            source=img + "c.raw",
            target_dev="sdg",
            target_bus=DiskBus.SATA,
            address=_drive(1, 0, 0, 3),
        )
    )
    dv.disks.append(Disk(source=img + "d.raw", target_dev="sda", target_bus=DiskBus.SCSI))
    dv.disks.append(Disk(device=DiskDevice.CDROM, target_dev="sdb", target_bus=DiskBus.SCSI))
    dv.disks.append(
        Disk(
            source=img + "e.raw",
            target_dev="sdc",
            target_bus=DiskBus.SCSI,
            address=_drive(1, 0, 2, 5),
        )
    )
    dv.disks.append(
        Disk(device=DiskDevice.FLOPPY, source=img + "f.img", target_dev="fdb", boot_order=1)
    )
    return Case(dom)


def case_nics() -> Case:
    """Every NIC model and interface type; boot from the network; link down; mtu; queues."""
    dom = _dom("nics")
    dv = dom.devices
    models = [NicModel.VIRTIO, NicModel.E1000, NicModel.E1000E, NicModel.RTL8139]
    models += [NicModel.NE2K_PCI, NicModel.PCNET, None]
    types = [InterfaceType.NETWORK, InterfaceType.BRIDGE, InterfaceType.USER]
    for n, model in enumerate(models):
        kind = types[n % 3]
        nic = Interface(kind, mac_address=f"52:54:00:00:10:{n:02x}", model_type=model)
        nic.source_network = "default" if kind is InterfaceType.NETWORK else None
        nic.source_bridge = "br0" if kind is InterfaceType.BRIDGE else None
        dv.interfaces.append(nic)
    first = dv.interfaces[0]
    first.mtu_size, first.driver_queues, first.boot_order = 9000, 2, 1
    dv.interfaces[1].link_state = "down"
    eth = Interface(
        InterfaceType.ETHERNET, mac_address="52:54:00:00:10:AA", model_type=NicModel.VIRTIO
    )
    eth.target_dev, eth.script_path, eth.driver_name = "vk-eth0", "/etc/vmkit/ifup", "qemu"
    eth.alias = "ua-uplink"
    dv.interfaces.append(eth)
    taps = {0: "vk-nics0", 1: "vk-nics1", 3: "vk-nics3", 4: "vk-nics4", 6: "vk-nics6"}
    return Case(dom, taps=taps)


def case_vhost() -> Case:
    """A host with /dev/vhost-net: virtio NICs get vhost=on unless driver name='qemu'."""
    dom = _dom("vhost", "q35")
    nics = dom.devices.interfaces
    nics.append(
        Interface(
            InterfaceType.NETWORK, mac_address="52:54:00:00:20:01", model_type=NicModel.VIRTIO
        )
    )
    nics.append(
        Interface(
            InterfaceType.BRIDGE,
            mac_address="52:54:00:00:20:02",
            model_type=NicModel.VIRTIO,
            driver_name="vhost",
        )
    )
    nics.append(
        Interface(
            InterfaceType.BRIDGE,
            mac_address="52:54:00:00:20:03",
            model_type=NicModel.VIRTIO,
            driver_name="qemu",
        )
    )
    nics.append(
        Interface(
            InterfaceType.NETWORK, mac_address="52:54:00:00:20:04", model_type=NicModel.E1000E
        )
    )
    return Case(dom, vhost_net=True)


def case_chardevs() -> Case:
    """Serial ports of every backend, a virtio console, channels, a declared virtio-serial."""
    dom = _dom("chardevs", "q35")
    run = "/run/vmkit/dom/chardevs/"
    dv = dom.devices
    dv.serials.append(
        CharDevice("serial", target_port=0, log_file=run + "serial0.log", log_append=False)
    )
    dv.serials.append(
        CharDevice("serial", CharType.FILE, source_path=run + "serial1.out", target_port=1)
    )
    sock = CharDevice("serial", CharType.UNIX, source_path=run + "serial2.sock", source_mode="bind")
    sock.log_file, sock.log_append = run + "serial2.log", True
    dv.serials.append(sock)
    dv.serials.append(CharDevice("serial", CharType.NULL, target_port=3))
    dv.serials.append(CharDevice("serial", CharType.PTY, target_type="pci-serial", target_port=4))
    dv.consoles.append(CharDevice("console", target_type="serial", target_port=0))
    dv.consoles.append(CharDevice("console", CharType.PTY, target_type="virtio", target_port=0))
    dv.controllers.append(Controller(ControllerType.VIRTIO_SERIAL, 0, ports=16))
    dv.channels.append(
        CharDevice(
            "channel", CharType.UNIX, target_type="virtio", target_name="org.qemu.guest_agent.0"
        )
    )
    dv.channels.append(
        CharDevice(
            "channel",
            CharType.UNIX,
            source_path=run + "custom.sock",
            source_mode="connect",
            target_type="virtio",
            target_name="org.example.custom",
        )
    )
    dv.channels.append(
        CharDevice("channel", CharType.PTY, target_type="virtio", target_name="org.example.pty")
    )
    return Case(dom)


def case_console_only() -> Case:
    """No <serial>, one <console type='pty'>: the console becomes serial0 (vmkit's socket)."""
    dom = _dom("console-only", "q35")
    dom.devices.consoles.append(CharDevice("console", log_file="/var/log/vmkit/console-only.log"))
    return Case(dom)


def case_graphics() -> Case:
    """VNC with websocket and password on IPv6 loopback; qxl primary, virtio secondary."""
    dom = _dom("graphics", "q35")
    dv = dom.devices
    dv.graphics.append(
        Graphics(GraphicsType.VNC, port=-1, autoport=True, websocket=-1, listen="::1", passwd="pw")
    )
    dv.graphics.append(Graphics(GraphicsType.NONE))
    dv.videos.append(Video(VideoModel.VIRTIO, heads=2))
    dv.videos.append(
        Video(VideoModel.QXL, vram=65536, ram=65536, vgamem=16384, heads=1, primary=True)
    )
    dv.inputs.append(Input("tablet", "virtio"))
    dv.inputs.append(Input("mouse", "virtio"))
    return Case(dom)


def case_video(model: VideoModel, vram: int | None) -> Callable[[], Case]:
    def build() -> Case:
        dom = _dom(f"video-{model}")
        dom.devices.graphics.append(Graphics(GraphicsType.VNC, port=5950, websocket=5750))
        dom.devices.videos.append(Video(model, vram=vram))
        return Case(dom)

    build.__doc__ = f"A {model} video device."
    return build


def case_inputs_usb() -> Case:
    """USB input without a declared controller: libvirt's default (piix3-uhci on pc)."""
    dom = _dom("inputs-usb")
    dv = dom.devices
    dv.inputs += [Input("tablet"), Input("mouse", "usb"), Input("keyboard", "usb")]
    dv.inputs += [Input("mouse"), Input("keyboard", "ps2"), Input("keyboard", "virtio")]
    return Case(dom)


def case_usb_controllers() -> Case:
    """ICH9 EHCI with its UHCI companions (old virt-manager q35), plus a second xHCI."""
    dom = _dom("usb-ich9", "q35")
    dv = dom.devices
    dv.controllers.append(
        Controller(ControllerType.USB, 0, model="ich9-ehci1", address=_pci(0, 0x1D, 7))
    )
    for n in range(1, 4):
        addr = _pci(0, 0x1D, n - 1, multifunction=n == 1)
        dv.controllers.append(
            Controller(ControllerType.USB, 0, model=f"ich9-uhci{n}", address=addr)
        )
    dv.controllers.append(Controller(ControllerType.USB, 1, model="nec-xhci", ports=4))
    dv.inputs.append(Input("tablet", "usb", address=Address("usb", {"bus": "1", "port": "2"})))
    dv.inputs.append(Input("keyboard", "usb"))
    return Case(dom)


def case_watchdog_pc() -> Case:
    dom = _dom("watchdog-pc")
    dom.devices.watchdogs.append(Watchdog("i6300esb", action="poweroff"))
    dom.devices.watchdogs.append(Watchdog("ib700", action="poweroff"))
    return Case(dom)


def case_watchdog_q35() -> Case:
    dom = _dom("watchdog-q35", "q35")
    dom.devices.watchdogs.append(Watchdog("itco", action="inject-nmi"))
    dom.devices.memballoon = MemBalloon("none")
    return Case(dom)


def case_cpu_custom() -> Case:
    """Custom CPU with features and topology, hot-pluggable vCPUs and memory, BIOS, boot menu."""
    dom = _dom("cpu-custom", "pc", 524288)
    dom.max_memory_kib, dom.max_memory_slots = 2097152, 4
    dom.current_memory_kib = 393216
    dom.vcpu = Vcpu(count=4, current=2)
    features = [
        CpuFeature("force", "ssse3"),
        CpuFeature("require", "x2apic"),
        CpuFeature("optional", "sse4.2"),
        CpuFeature("disable", "svm"),
        CpuFeature("forbid", "vmx"),
    ]
    dom.cpu = Cpu(
        mode=CpuMode.CUSTOM,
        match="exact",
        model="qemu64",
        model_fallback="forbid",
        vendor="GenuineIntel",
        topology=CpuTopology(sockets=1, cores=2, threads=2),
        features=features,
    )
    dom.features = Features(acpi=True, apic=True, pae=True, vmport_state=True, smm_state=True)
    dom.clock = Clock(
        offset="localtime",
        timers=[
            Timer("rtc", track="guest"),
            Timer("kvmclock", present=False),
            Timer("tsc", present=True),
        ],
    )
    dom.os.boot_devs = [BootDev.CDROM, BootDev.HD, BootDev.NETWORK, BootDev.FD]
    dom.os.bootmenu_enable, dom.os.bootmenu_timeout = True, 3000
    dom.os.loader, dom.os.loader_type, dom.os.loader_readonly = (
        "/usr/share/seabios/bios.bin",
        "rom",
        True,
    )
    dom.devices.memballoon = MemBalloon("virtio")
    return Case(dom)


def case_cpu_kvm() -> Case:
    """On kvm: host-model is -cpu host; the PIT tick policy becomes a kvm-pit global."""
    dom = _dom("cpu-kvm", "q35")
    dom.type = DomainType.KVM
    dom.cpu = Cpu(mode=CpuMode.HOST_MODEL, migratable=False)
    dom.clock = Clock(timers=[Timer("pit", tickpolicy="catchup"), Timer("hpet", present=True)])
    dom.os.bootmenu_enable = False
    return Case(dom, accel="kvm")


def case_cpu_maximum() -> Case:
    dom = _dom("cpu-max", "q35")
    dom.cpu = Cpu(mode=CpuMode.MAXIMUM, migratable=True, topology=CpuTopology(1, 1, 1, dies=1))
    dom.clock = Clock(offset="variable", adjustment=0, basis="localtime")
    dom.features = Features(acpi=True, smm_state=False)
    return Case(dom)


def case_q35_no_spare() -> Case:
    """hotplug_ports=0: only the ports the XML declares and the devices need."""
    dom = _dom("q35-nospare", "q35")
    dom.devices.controllers.append(Controller(ControllerType.PCI, 1, model="pcie-root-port"))
    dom.devices.disks.append(Disk(source="/var/lib/vmkit/images/ns.raw", target_dev="vda"))
    dom.devices.disks.append(Disk(source="/var/lib/vmkit/images/ns2.raw", target_dev="vdb"))
    return Case(dom, hotplug_ports=0)


def case_bridges_q35() -> Case:
    """q35 with a DMI-to-PCI bridge, a PCI bridge behind it and a PCIe-to-PCI bridge."""
    dom = _dom("bridges-q35", "q35")
    dv = dom.devices
    dv.controllers.append(
        Controller(ControllerType.PCI, 1, model="dmi-to-pci-bridge", address=_pci(0, 0x1E))
    )
    dv.controllers.append(Controller(ControllerType.PCI, 2, model="pci-bridge", address=_pci(1, 1)))
    dv.controllers.append(Controller(ControllerType.PCI, 3, model="pcie-to-pci-bridge"))
    nic = Interface(InterfaceType.USER, mac_address="52:54:00:00:30:01", model_type=NicModel.E1000)
    nic.address = _pci(2, 3)
    dv.interfaces.append(nic)
    nic2 = Interface(
        InterfaceType.USER, mac_address="52:54:00:00:30:02", model_type=NicModel.RTL8139
    )
    nic2.address = _pci(3, 1)
    dv.interfaces.append(nic2)
    port = Controller(ControllerType.PCI, 4, model="pcie-root-port", model_name="ioh3420")
    dv.controllers.append(port)
    return Case(dom, hotplug_ports=1)


def case_bridge_pc() -> Case:
    dom = _dom("bridge-pc")
    dv = dom.devices
    dv.controllers.append(Controller(ControllerType.PCI, 1, model="pci-bridge"))
    dv.disks.append(
        Disk(source="/var/lib/vmkit/images/br.raw", target_dev="vda", address=_pci(1, 5))
    )
    dv.disks.append(Disk(source="/var/lib/vmkit/images/br2.raw", target_dev="vdb"))
    return Case(dom)


def case_refused() -> Case:
    """A case the builder refuses: its golden file holds the message."""
    dom = _dom("refused")
    dom.devices.disks.append(
        Disk(
            source="/x.raw",
            target_dev="vda",
            driver_cache=DiskCache.WRITEBACK,
            driver_io=DiskIo.NATIVE,
        )
    )
    return Case(dom)


PY_CASES: dict[str, Callable[[], Case]] = {
    "py-minimal-pc": case_minimal_pc,
    "py-virt-install-q35": case_virt_install_q35,
    "py-dumpxml-pc": case_dumpxml_pc,
    "py-dumpxml-q35": case_dumpxml_q35,
    "py-microvm": case_microvm,
    "py-microvm-chosen": case_microvm_chosen,
    "py-disks-pc": case_disks_pc,
    "py-disks-q35": case_disks_q35,
    "py-nics": case_nics,
    "py-vhost": case_vhost,
    "py-chardevs": case_chardevs,
    "py-console-only": case_console_only,
    "py-graphics": case_graphics,
    "py-video-vga": case_video(VideoModel.VGA, 32768),
    "py-video-cirrus": case_video(VideoModel.CIRRUS, 16384),
    "py-video-vmvga": case_video(VideoModel.VMVGA, 16384),
    "py-video-bochs": case_video(VideoModel.BOCHS, 16384),
    "py-inputs-usb": case_inputs_usb,
    "py-usb-controllers": case_usb_controllers,
    "py-watchdog-pc": case_watchdog_pc,
    "py-watchdog-q35": case_watchdog_q35,
    "py-cpu-custom": case_cpu_custom,
    "py-cpu-kvm": case_cpu_kvm,
    "py-cpu-maximum": case_cpu_maximum,
    "py-q35-no-spare": case_q35_no_spare,
    "py-bridges-q35": case_bridges_q35,
    "py-bridge-pc": case_bridge_pc,
    "py-refused": case_refused,
}


# ---------------------------------------------------------------- XML cases


def xml_case_names() -> list[str]:
    return sorted(p.stem for p in DOMAIN_DIR.glob("*.xml"))


def load_case(name: str) -> Case:
    """A case by name: `py-*` from this module, anything else from tests/data/domain."""
    if name in PY_CASES:
        return PY_CASES[name]()
    from vmkit.xml.domain import parse_domain

    path = DOMAIN_DIR / f"{name}.xml"
    return Case(parse_domain(path.read_bytes(), source=str(path)))


def all_case_names() -> list[str]:
    return [*PY_CASES, *xml_case_names()]


@pytest.fixture
def utc_host(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Golden files must not depend on the host's time zone (clock basis='localtime')."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.parametrize("name", all_case_names())
@pytest.mark.usefixtures("utc_host")
def test_golden(name: str, regen_golden: bool) -> None:
    case = load_case(name)
    before = copy.deepcopy(case.dom)
    got = render_golden(case, name)
    assert case.dom == before, "build_argv changed the domain it was given"
    path = ARGV_DIR / f"{name}.args"
    if regen_golden:
        ARGV_DIR.mkdir(parents=True, exist_ok=True)
        path.write_text(got)
        return
    assert path.exists(), f"{path} is missing: run pytest --regen-golden and review it"
    assert got == path.read_text()


def test_no_orphan_golden_files(regen_golden: bool) -> None:
    names = set(all_case_names())
    orphans = sorted(p for p in ARGV_DIR.glob("*.args") if p.stem not in names)
    if regen_golden:
        for path in orphans:
            path.unlink()
        return
    assert not orphans, f"golden files without a case: {[p.name for p in orphans]}"
