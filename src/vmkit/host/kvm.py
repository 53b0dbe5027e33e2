"""Is KVM usable here, or must guests run under TCG? One cached answer with its reason.

Order of business (`detect_accel`):
1. the cache: a JSON entry keyed on what would change the answer (kernel release, /dev/kvm
   presence and access, loaded kvm modules, QEMU binary path and mtime): a few ms;
2. static checks, no process spawned: /dev/kvm exists and opens read-write, kvm_intel or
   kvm_amd is loaded (kvm_pvm alone is the PVM-only KVM of our CI machines, on which normal
   guests crawl), the CPU has vmx/svm;
3. only when those say "maybe", the timed probe boot (probe.py) under KVM; if it fails, the same
   probe under TCG as a control, so a broken probe never condemns a working KVM.

This module decides; it never launches guests. Probing goes through the `Prober` seam.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from vmkit.errors import InvalidConfig, VmkitError
from vmkit.host import cache
from vmkit.host.cpu import read_cpuinfo
from vmkit.host.probe import Prober, QemuProber
from vmkit.host.qemu_info import find_qemu
from vmkit.host.roots import HostRoots, read_text

Accel = Literal["kvm", "tcg"]
_CACHE_SECTION = "accel"


@dataclass(frozen=True)
class AccelInfo:
    """The accelerator to use and why (the reason is shown by dominfo/capabilities/validate)."""

    accel: Accel
    reason: str
    probed: bool = False  # a probe boot decided (not static checks alone)
    cached: bool = False  # read from the cache file

    @property
    def kvm_usable(self) -> bool:
        return self.accel == "kvm"


@dataclass(frozen=True)
class KvmFacts:
    """What the static checks look at."""

    kernel: str  # /proc/sys/kernel/osrelease
    dev_kvm: bool  # /dev/kvm exists
    open_error: str | None  # why /dev/kvm does not open read-write (None: it does)
    modules: tuple[str, ...]  # loaded kvm modules: kvm, kvm_intel, kvm_amd, kvm_pvm
    virt_flag: str | None  # vmx or svm


def loaded_kvm_modules(roots: HostRoots) -> tuple[str, ...]:
    """Names under sys/module that belong to KVM (kvm, kvm_intel, kvm_amd, kvm_pvm, ...)."""
    try:
        names = [p.name for p in (roots.sys / "module").iterdir()]
    except OSError:
        return ()
    return tuple(sorted(n for n in names if n == "kvm" or n.startswith("kvm_")))


def _open_error(dev_kvm: Path) -> str | None:
    try:
        fd = os.open(dev_kvm, os.O_RDWR | os.O_CLOEXEC)
    except OSError as e:
        return e.strerror or str(e)
    os.close(fd)
    return None


def read_kvm_facts(roots: HostRoots) -> KvmFacts:
    dev_kvm = roots.dev / "kvm"
    exists = os.path.exists(dev_kvm)
    return KvmFacts(
        kernel=read_text(roots.proc / "sys/kernel/osrelease").strip(),
        dev_kvm=exists,
        open_error=_open_error(dev_kvm) if exists else None,
        modules=loaded_kvm_modules(roots),
        virt_flag=read_cpuinfo(roots).virt_flag,
    )


def judge_static(facts: KvmFacts) -> AccelInfo | None:
    """TCG with the reason when a static check rules KVM out; None when KVM may work."""
    mods = set(facts.modules)
    if not facts.dev_kvm:
        return AccelInfo("tcg", "/dev/kvm does not exist (no KVM module loaded); using TCG")
    if facts.open_error:
        return AccelInfo("tcg", f"cannot open /dev/kvm read-write: {facts.open_error}; using TCG")
    if not mods & {"kvm_intel", "kvm_amd"}:
        flags = (
            "the CPU has no vmx/svm" if facts.virt_flag is None else f"CPU has {facts.virt_flag}"
        )
        if "kvm_pvm" in mods:
            return AccelInfo(
                "tcg",
                f"/dev/kvm is PVM-only: kvm_pvm is loaded without kvm_intel/kvm_amd and {flags}; "
                "normal guests run far slower than TCG there (they seem to hang); using TCG",
            )
        return AccelInfo("tcg", f"neither kvm_intel nor kvm_amd is loaded ({flags}); using TCG")
    if facts.virt_flag is None:
        return AccelInfo("tcg", "the CPU advertises neither vmx nor svm; using TCG")
    return None


def cache_key(roots: HostRoots, qemu: Path | None) -> dict[str, Any]:
    """What would change the verdict; cheap to compute (no cpuinfo, no open)."""
    dev_kvm = roots.dev / "kvm"
    try:
        st = os.stat(qemu) if qemu else None
    except OSError:
        st = None
    return {
        "kernel": read_text(roots.proc / "sys/kernel/osrelease").strip(),
        "dev_kvm": os.path.exists(dev_kvm),
        "dev_kvm_rw": os.access(dev_kvm, os.R_OK | os.W_OK),
        "modules": list(loaded_kvm_modules(roots)),
        "qemu": str(qemu) if qemu else None,
        "qemu_mtime_ns": st.st_mtime_ns if st else None,
    }


def _probe(static_ok: str, prober: Prober) -> tuple[AccelInfo, bool]:
    """Run the KVM probe (and the TCG control when it fails); (verdict, worth caching)."""
    kvm = prober("kvm")
    if kvm.ok:
        return AccelInfo("kvm", f"{static_ok}; KVM {kvm.detail}", probed=True), True
    control = prober("tcg")
    if not control.ok:
        reason = (
            f"{static_ok}, but the probe boot is inconclusive: under KVM {kvm.detail}, and under "
            f"TCG {control.detail}; assuming KVM works"
        )
        return AccelInfo("kvm", reason, probed=True), False
    reason = (
        f"{static_ok}, but a probe boot under KVM {kvm.detail.removeprefix('probe boot ')} "
        f"(under TCG it finished in {control.elapsed:.2f} s); using TCG"
    )
    return AccelInfo("tcg", reason, probed=True), True


def _decide(facts: KvmFacts, prober: Prober | None, probe: bool) -> tuple[AccelInfo, bool]:
    """Static checks, then the probe when they allow KVM; (verdict, worth caching)."""
    verdict = judge_static(facts)
    if verdict is not None:
        return verdict, True
    mods = "+".join(m for m in facts.modules if m in ("kvm_intel", "kvm_amd"))
    static_ok = f"/dev/kvm is usable ({mods}, CPU has {facts.virt_flag})"
    if prober is None:
        why = "not probed" if not probe else "not probed: no QEMU binary found"
        return AccelInfo("kvm", f"{static_ok}; {why}"), False
    return _probe(static_ok, prober)


def detect_accel(
    cache_file: Path | None,
    *,
    roots: HostRoots | None = None,
    qemu: Path | None = None,
    prober: Prober | None = None,
    probe: bool = True,
    force: str | None = None,
) -> AccelInfo:
    """KVM or TCG, with the reason; cached in `cache_file` (None: no cache).

    `qemu` defaults to `find_qemu()`; `prober` to the real probe boot with that binary.
    `probe=False` skips the probe boot (the answer is then not cached). `force` ("kvm" or
    "tcg", e.g. from $VMKIT_ACCEL) overrides detection; "" or None means detect.
    """
    if force:
        if force not in ("kvm", "tcg"):
            raise InvalidConfig(f"unknown accelerator '{force}': use kvm or tcg", value=force)
        return AccelInfo("kvm" if force == "kvm" else "tcg", f"forced to {force}")
    roots = roots or HostRoots()
    if qemu is None:
        try:
            qemu = find_qemu()
        except VmkitError:
            qemu = None
    key = cache_key(roots, qemu)
    hit = cache.load_entry(cache_file, key, _CACHE_SECTION)
    if hit and hit.get("accel") in ("kvm", "tcg") and isinstance(hit.get("reason"), str):
        return AccelInfo(hit["accel"], hit["reason"], bool(hit.get("probed")), cached=True)
    if probe and prober is None and qemu is not None:
        prober = QemuProber(qemu)
    verdict, worth_caching = _decide(read_kvm_facts(roots), prober if probe else None, probe)
    if worth_caching:
        value = {"accel": verdict.accel, "reason": verdict.reason, "probed": verdict.probed}
        cache.store_entry(cache_file, key, value, _CACHE_SECTION)
    return verdict
