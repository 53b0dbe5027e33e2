"""The typed domain (a virtual machine) as libvirt's domain XML describes it. Plain data; no I/O.

Memory is kept in KiB, as libvirt does. Descriptive parts vmkit does not act on (`<metadata>`,
`<seclabel>`, `<pm>`, `<resource>`, ...) are kept verbatim in `preserved` as serialized XML so
they are written back unchanged; the model never interprets them.
"""

from __future__ import annotations

import uuid as uuid_mod
from dataclasses import dataclass, field
from enum import StrEnum

from vmkit.model.devices import Devices


class DomainType(StrEnum):
    QEMU = "qemu"
    KVM = "kvm"


class LifecycleAction(StrEnum):
    DESTROY = "destroy"
    RESTART = "restart"
    PRESERVE = "preserve"
    RENAME_RESTART = "rename-restart"
    COREDUMP_DESTROY = "coredump-destroy"
    COREDUMP_RESTART = "coredump-restart"


class CpuMode(StrEnum):
    CUSTOM = "custom"
    HOST_MODEL = "host-model"
    HOST_PASSTHROUGH = "host-passthrough"
    MAXIMUM = "maximum"


class BootDev(StrEnum):
    HD = "hd"
    CDROM = "cdrom"
    NETWORK = "network"
    FD = "fd"


@dataclass
class Vcpu:
    """`<vcpu>`: the maximum count, the count online at boot, and placement."""

    count: int = 1  # ./vcpu (text)
    current: int | None = None  # ./vcpu/@current
    placement: str | None = None  # ./vcpu/@placement (static|auto)
    cpuset: str | None = None  # ./vcpu/@cpuset


@dataclass
class CpuTopology:
    """`<cpu><topology>`: sockets x dies x cores x threads must equal the vcpu count."""

    sockets: int  # ./@sockets
    cores: int  # ./@cores
    threads: int  # ./@threads
    dies: int = 1  # ./@dies


@dataclass
class CpuFeature:
    """`<cpu><feature>`: one CPUID flag forced on or off."""

    policy: str  # ./@policy (force|require|optional|disable|forbid)
    name: str  # ./@name


@dataclass
class Cpu:
    """`<cpu>`: the CPU model the guest sees."""

    mode: CpuMode = CpuMode.CUSTOM  # ./@mode
    match: str | None = None  # ./@match (minimum|exact|strict)
    check: str | None = None  # ./@check (none|partial|full)
    migratable: bool | None = None  # ./@migratable
    model: str | None = None  # ./model (text)
    model_fallback: str | None = None  # ./model/@fallback
    vendor: str | None = None  # ./vendor
    topology: CpuTopology | None = None  # ./topology
    features: list[CpuFeature] = field(default_factory=list)  # ./feature


@dataclass
class Os:
    """`<os>`: machine type, firmware, boot order and direct kernel boot."""

    type: str = "hvm"  # ./type (text)
    arch: str = "x86_64"  # ./type/@arch
    machine: str | None = None  # ./type/@machine (pc, q35, microvm, pc-q35-7.2, ...)
    boot_devs: list[BootDev] = field(default_factory=list)  # ./boot/@dev (in order)
    bootmenu_enable: bool | None = None  # ./bootmenu/@enable
    bootmenu_timeout: int | None = None  # ./bootmenu/@timeout (ms)
    kernel: str | None = None  # ./kernel
    initrd: str | None = None  # ./initrd
    cmdline: str | None = None  # ./cmdline
    loader: str | None = None  # ./loader (text; a BIOS ROM image)
    loader_type: str | None = None  # ./loader/@type (rom)
    loader_readonly: bool | None = None  # ./loader/@readonly


@dataclass
class Features:
    """`<features>`: platform features; None means not mentioned."""

    acpi: bool = False  # ./acpi
    apic: bool = False  # ./apic
    pae: bool = False  # ./pae
    vmport_state: bool | None = None  # ./vmport/@state
    smm_state: bool | None = None  # ./smm/@state


@dataclass
class Timer:
    """`<clock><timer>`: one guest timer and its policy."""

    name: str  # ./@name (rtc, pit, hpet, kvmclock, tsc, hypervclock)
    present: bool | None = None  # ./@present
    tickpolicy: str | None = None  # ./@tickpolicy (delay|catchup|merge|discard)
    track: str | None = None  # ./@track (boot|guest|wall)


@dataclass
class Clock:
    """`<clock>`: what the guest RTC starts from, and its timers."""

    offset: str = "utc"  # ./@offset (utc|localtime|variable)
    adjustment: int | None = None  # ./@adjustment (seconds, offset=variable)
    basis: str | None = None  # ./@basis (utc|localtime, offset=variable)
    timers: list[Timer] = field(default_factory=list)  # ./timer


@dataclass
class Domain:
    """`<domain>`: a virtual machine definition."""

    name: str  # ./name
    type: DomainType = DomainType.QEMU  # ./@type
    uuid: str = field(default_factory=lambda: str(uuid_mod.uuid4()))  # ./uuid
    id: int | None = None  # ./@id (only while running)
    title: str | None = None  # ./title
    description: str | None = None  # ./description
    memory_kib: int = 131072  # ./memory
    current_memory_kib: int | None = None  # ./currentMemory
    max_memory_kib: int | None = None  # ./maxMemory
    max_memory_slots: int | None = None  # ./maxMemory/@slots
    vcpu: Vcpu = field(default_factory=Vcpu)  # ./vcpu
    cpu: Cpu | None = None  # ./cpu
    os: Os = field(default_factory=Os)  # ./os
    features: Features | None = None  # ./features
    clock: Clock | None = None  # ./clock
    on_poweroff: LifecycleAction | None = None  # ./on_poweroff
    on_reboot: LifecycleAction | None = None  # ./on_reboot
    on_crash: LifecycleAction | None = None  # ./on_crash
    devices: Devices = field(default_factory=Devices)  # ./devices
    preserved: list[str] = field(default_factory=list)  # ./metadata, ./seclabel, ./pm, ...

    @property
    def effective_on_poweroff(self) -> LifecycleAction:
        return self.on_poweroff or LifecycleAction.DESTROY

    @property
    def effective_on_reboot(self) -> LifecycleAction:
        return self.on_reboot or LifecycleAction.RESTART

    @property
    def effective_on_crash(self) -> LifecycleAction:
        return self.on_crash or LifecycleAction.DESTROY
