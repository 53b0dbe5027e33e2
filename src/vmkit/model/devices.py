"""Typed devices of a domain (`<devices>` in libvirt's domain XML). Plain data; no I/O.

Field names are libvirt's in snake_case; the trailing comment is the XPath relative to the
device element, so a grep for the XML name finds the field.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class DiskType(StrEnum):
    FILE = "file"
    BLOCK = "block"


class DiskDevice(StrEnum):
    DISK = "disk"
    CDROM = "cdrom"
    FLOPPY = "floppy"


class DiskBus(StrEnum):
    IDE = "ide"
    SATA = "sata"
    SCSI = "scsi"
    VIRTIO = "virtio"
    FDC = "fdc"
    USB = "usb"


class DiskFormat(StrEnum):
    RAW = "raw"
    QCOW2 = "qcow2"


class DiskCache(StrEnum):
    DEFAULT = "default"
    NONE = "none"
    WRITETHROUGH = "writethrough"
    WRITEBACK = "writeback"
    DIRECTSYNC = "directsync"
    UNSAFE = "unsafe"


class DiskIo(StrEnum):
    NATIVE = "native"
    THREADS = "threads"
    IO_URING = "io_uring"


@dataclass
class Address:
    """A device address (`<address>`): pci, drive, usb, virtio-serial, ... attributes as given."""

    type: str  # ./@type
    attrs: dict[str, str] = field(default_factory=dict)  # ./@domain, ./@bus, ./@slot, ...


@dataclass
class Disk:
    """`<disk>`: a block device backed by a file or a host block device."""

    type: DiskType = DiskType.FILE  # ./@type
    device: DiskDevice = DiskDevice.DISK  # ./@device
    driver_name: str | None = None  # ./driver/@name (only 'qemu')
    driver_type: DiskFormat | None = None  # ./driver/@type
    driver_cache: DiskCache | None = None  # ./driver/@cache
    driver_io: DiskIo | None = None  # ./driver/@io
    driver_discard: str | None = None  # ./driver/@discard (unmap|ignore)
    source: str | None = None  # ./source/@file or ./source/@dev (None: empty drive)
    target_dev: str = ""  # ./target/@dev
    target_bus: DiskBus | None = None  # ./target/@bus (derived from dev when absent)
    target_tray: str | None = None  # ./target/@tray (open|closed)
    readonly: bool = False  # ./readonly
    shareable: bool = False  # ./shareable
    serial: str | None = None  # ./serial
    boot_order: int | None = None  # ./boot/@order
    alias: str | None = None  # ./alias/@name
    address: Address | None = None  # ./address
    source_index: int | None = None  # ./source/@index (runtime only, as virsh dumpxml shows)
    backing_store: str | None = None  # ./backingStore (serialized XML, kept verbatim)


class ControllerType(StrEnum):
    IDE = "ide"
    SATA = "sata"
    SCSI = "scsi"
    USB = "usb"
    PCI = "pci"
    VIRTIO_SERIAL = "virtio-serial"
    FDC = "fdc"


@dataclass
class Controller:
    """`<controller>`: a bus the guest sees (ide, sata, scsi, usb, pci root/ports, ...)."""

    type: ControllerType  # ./@type
    index: int = 0  # ./@index
    model: str | None = None  # ./@model (virtio-scsi, qemu-xhci, pcie-root-port, ...)
    ports: int | None = None  # ./@ports
    target_chassis: int | None = None  # ./target/@chassis
    target_port: int | None = None  # ./target/@port
    alias: str | None = None  # ./alias/@name
    address: Address | None = None  # ./address
    model_name: str | None = None  # ./model/@name (the QEMU device, e.g. pcie-root-port)


class InterfaceType(StrEnum):
    NETWORK = "network"
    BRIDGE = "bridge"
    USER = "user"
    ETHERNET = "ethernet"


class NicModel(StrEnum):
    VIRTIO = "virtio"
    E1000 = "e1000"
    E1000E = "e1000e"
    RTL8139 = "rtl8139"
    NE2K_PCI = "ne2k_pci"
    PCNET = "pcnet"


@dataclass
class Interface:
    """`<interface>`: a NIC and how its frames reach the host."""

    type: InterfaceType  # ./@type
    mac_address: str | None = None  # ./mac/@address (generated at define when absent)
    source_network: str | None = None  # ./source/@network
    source_bridge: str | None = None  # ./source/@bridge
    model_type: NicModel | None = None  # ./model/@type
    target_dev: str | None = None  # ./target/@dev
    script_path: str | None = None  # ./script/@path
    boot_order: int | None = None  # ./boot/@order
    link_state: str | None = None  # ./link/@state (up|down)
    mtu_size: int | None = None  # ./mtu/@size
    driver_name: str | None = None  # ./driver/@name (qemu|vhost)
    driver_queues: int | None = None  # ./driver/@queues
    alias: str | None = None  # ./alias/@name
    address: Address | None = None  # ./address
    source_portid: str | None = None  # ./source/@portid (runtime only, type network)


class CharType(StrEnum):
    PTY = "pty"
    FILE = "file"
    UNIX = "unix"
    NULL = "null"


@dataclass
class CharDevice:
    """`<serial>`, `<console>` or `<channel>`: a character device and its host side."""

    kind: str  # the element name: serial | console | channel
    type: CharType = CharType.PTY  # ./@type
    source_path: str | None = None  # ./source/@path
    source_mode: str | None = None  # ./source/@mode (bind|connect)
    target_type: str | None = None  # ./target/@type (isa-serial, serial, virtio)
    target_port: int | None = None  # ./target/@port
    target_name: str | None = None  # ./target/@name (channel: org.qemu.guest_agent.0)
    target_model: str | None = None  # ./target/model/@name (isa-serial, ...)
    log_file: str | None = None  # ./log/@file
    log_append: bool | None = None  # ./log/@append
    alias: str | None = None  # ./alias/@name
    address: Address | None = None  # ./address
    tty: str | None = None  # ./@tty (console of a running domain: the pty)
    target_state: str | None = None  # ./target/@state (channel, runtime: connected|disconnected)


class GraphicsType(StrEnum):
    VNC = "vnc"
    NONE = "none"


@dataclass
class Graphics:
    """`<graphics>`: remote display (vnc) or none."""

    type: GraphicsType  # ./@type
    port: int | None = None  # ./@port (-1 means pick one)
    autoport: bool | None = None  # ./@autoport
    websocket: int | None = None  # ./@websocket
    listen: str | None = None  # ./@listen or ./listen[@type='address']/@address
    passwd: str | None = None  # ./@passwd
    keymap: str | None = None  # ./@keymap


class VideoModel(StrEnum):
    VGA = "vga"
    CIRRUS = "cirrus"
    QXL = "qxl"
    VIRTIO = "virtio"
    VMVGA = "vmvga"
    BOCHS = "bochs"
    NONE = "none"


@dataclass
class Video:
    """`<video>`: the display adapter."""

    model_type: VideoModel  # ./model/@type
    vram: int | None = None  # ./model/@vram (KiB)
    heads: int | None = None  # ./model/@heads
    primary: bool | None = None  # ./model/@primary
    alias: str | None = None  # ./alias/@name
    address: Address | None = None  # ./address
    ram: int | None = None  # ./model/@ram (KiB, qxl)
    vgamem: int | None = None  # ./model/@vgamem (KiB, qxl)


@dataclass
class Input:
    """`<input>`: mouse, tablet or keyboard."""

    type: str  # ./@type (mouse|tablet|keyboard)
    bus: str | None = None  # ./@bus (ps2|usb|virtio)
    alias: str | None = None  # ./alias/@name
    address: Address | None = None  # ./address


@dataclass
class MemBalloon:
    """`<memballoon>`: the balloon device (model 'none' disables it)."""

    model: str  # ./@model (virtio|none)
    autodeflate: bool | None = None  # ./@autodeflate
    stats_period: int | None = None  # ./stats/@period
    alias: str | None = None  # ./alias/@name
    address: Address | None = None  # ./address


@dataclass
class Rng:
    """`<rng>`: a virtio entropy source fed by a host device or QEMU's builtin backend."""

    model: str = "virtio"  # ./@model
    backend_model: str = "random"  # ./backend/@model (random|builtin)
    backend_path: str | None = None  # ./backend (text: /dev/urandom)
    rate_bytes: int | None = None  # ./rate/@bytes
    rate_period: int | None = None  # ./rate/@period
    alias: str | None = None  # ./alias/@name
    address: Address | None = None  # ./address


@dataclass
class Watchdog:
    """`<watchdog>`: a hardware watchdog and what happens when it fires."""

    model: str  # ./@model (i6300esb|ib700|itco)
    action: str | None = None  # ./@action (reset|shutdown|poweroff|pause|none|dump|inject-nmi)
    alias: str | None = None  # ./alias/@name
    address: Address | None = None  # ./address


@dataclass
class Devices:
    """`<devices>`: everything the guest sees, in document order per kind."""

    emulator: str | None = None  # ./emulator
    disks: list[Disk] = field(default_factory=list)  # ./disk
    controllers: list[Controller] = field(default_factory=list)  # ./controller
    interfaces: list[Interface] = field(default_factory=list)  # ./interface
    serials: list[CharDevice] = field(default_factory=list)  # ./serial
    consoles: list[CharDevice] = field(default_factory=list)  # ./console
    channels: list[CharDevice] = field(default_factory=list)  # ./channel
    graphics: list[Graphics] = field(default_factory=list)  # ./graphics
    videos: list[Video] = field(default_factory=list)  # ./video
    inputs: list[Input] = field(default_factory=list)  # ./input
    memballoon: MemBalloon | None = None  # ./memballoon
    rngs: list[Rng] = field(default_factory=list)  # ./rng
    watchdogs: list[Watchdog] = field(default_factory=list)  # ./watchdog
