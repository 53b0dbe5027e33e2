"""The host CPU in QEMU's vocabulary: a named CPU model and QEMU's feature names.

libvirt finds the host model by comparing CPUID data with its cpu_map; we have neither, so
`guess_host_model` maps the CPU signature (vendor, family, model) to the QEMU model of that
generation, falling back to older generations QEMU has, then to qemu64. `qemu_feature_names`
renames /proc/cpuinfo flags to the names QEMU's `-cpu` accepts and drops Linux-only flags.
Pure functions; nothing is read here.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable

from vmkit.host.cpu import CpuInfo

# Linux flag -> QEMU name, where replacing "_" by "-" is not enough.
_FLAG_NAMES = {
    "sse4_1": "sse4-1",  # QEMU's sse4.1, spelled the way libvirt's schema allows
    "sse4_2": "sse4-2",
    "avx512_vnni": "avx512vnni",
    "avx512_bitalg": "avx512bitalg",
    "avx512_vbmi2": "avx512vbmi2",
    "tsc_deadline_timer": "tsc-deadline",
    "cr8_legacy": "cr8legacy",
    "extd_apicid": "extapic",
}
_DOTTED = {"sse4-1": "sse4.1", "sse4-2": "sse4.2"}

# Intel family 6 model numbers -> QEMU model of that generation.
_INTEL_MODELS = {
    **dict.fromkeys((0x1A, 0x1E, 0x1F, 0x2E), "Nehalem"),
    **dict.fromkeys((0x25, 0x2C, 0x2F), "Westmere"),
    **dict.fromkeys((0x2A, 0x2D), "SandyBridge"),
    **dict.fromkeys((0x3A, 0x3E), "IvyBridge"),
    **dict.fromkeys((0x3C, 0x3F, 0x45, 0x46), "Haswell"),
    **dict.fromkeys((0x3D, 0x47, 0x4F, 0x56), "Broadwell"),
    **dict.fromkeys((0x4E, 0x5E, 0x8E, 0x9E, 0xA5, 0xA6), "Skylake-Client"),
    0x55: "Skylake-Server",
    **dict.fromkeys((0x6A, 0x6C), "Icelake-Server"),
    **dict.fromkeys((0x8F, 0xCF), "SapphireRapids"),
    0x5F: "Denverton",
    0x86: "Snowridge",
}
# Newest first: when QEMU lacks a model, the next older one it has is used.
_INTEL_ORDER = (
    "SapphireRapids",
    "Cooperlake",
    "Icelake-Server",
    "Cascadelake-Server",
    "Skylake-Server",
    "Skylake-Client",
    "Broadwell",
    "Haswell",
    "IvyBridge",
    "SandyBridge",
    "Westmere",
    "Nehalem",
)
_AMD_ORDER = ("EPYC-Genoa", "EPYC-Milan", "EPYC-Rome", "EPYC", "Opteron_G5", "Opteron_G4")


def _intel_model(cpu: CpuInfo) -> str | None:
    if cpu.family != 6:
        return None
    name = _INTEL_MODELS.get(cpu.model)
    if name == "Skylake-Server" and cpu.stepping >= 5:  # same model number, later steppings
        return "Cooperlake" if cpu.stepping >= 10 else "Cascadelake-Server"
    return name


def _amd_model(cpu: CpuInfo) -> str | None:
    if cpu.family == 0x17:
        return "EPYC-Rome" if cpu.model >= 0x30 else "EPYC"
    if cpu.family == 0x19:
        genoa = 0x10 <= cpu.model <= 0x1F or 0x60 <= cpu.model <= 0x7F or cpu.model >= 0xA0
        return "EPYC-Genoa" if genoa else "EPYC-Milan"
    if cpu.family >= 0x1A:
        return "EPYC-Genoa"
    return {0x15: "Opteron_G4", 0x10: "Opteron_G3"}.get(cpu.family)


def _first_available(wanted: str, order: tuple[str, ...], models: Collection[str]) -> str | None:
    start = order.index(wanted) if wanted in order else 0
    return next((m for m in order[start:] if m in models), None)


def guess_host_model(cpu: CpuInfo, models: Collection[str]) -> str:
    """The QEMU CPU model closest to the host's generation that `models` contains."""
    order: tuple[str, ...]
    if cpu.vendor == "GenuineIntel":
        wanted, order = _intel_model(cpu), _INTEL_ORDER
    elif cpu.vendor == "AuthenticAMD":
        wanted, order = _amd_model(cpu), _AMD_ORDER
    elif cpu.vendor == "HygonGenuine":
        wanted, order = "Dhyana", ("Dhyana", *_AMD_ORDER[3:])
    else:
        wanted, order = None, ()
    if wanted:
        found = _first_available(wanted, order, models)
        if found:
            return found
    return "qemu64" if "lm" in cpu.flags or not cpu.flags else "qemu32"


def qemu_feature_names(flags: Iterable[str], qemu_flags: Collection[str]) -> list[str]:
    """Host flags renamed to QEMU's names, only those QEMU knows, sorted."""
    names: set[str] = set()
    for flag in flags:
        name = _FLAG_NAMES.get(flag, flag.replace("_", "-"))
        if name in qemu_flags or _DOTTED.get(name) in qemu_flags:
            names.add(name)
        elif flag in qemu_flags:
            names.add(flag)
    return sorted(names)
