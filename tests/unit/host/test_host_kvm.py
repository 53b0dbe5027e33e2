"""kvm.py: static verdicts, the probe flow and the cache, with a fake prober."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from hostdata import DATA, roots_of

from vmkit.errors import InvalidConfig, LaunchFailed
from vmkit.host.kvm import AccelInfo, KvmFacts, detect_accel, judge_static, read_kvm_facts
from vmkit.host.probe import ProbeResult
from vmkit.host.roots import HostRoots


class FakeProber:
    """Answers per accelerator and records what was probed."""

    def __init__(self, kvm_ok: bool = True, tcg_ok: bool = True) -> None:
        self.ok = {"kvm": kvm_ok, "tcg": tcg_ok}
        self.calls: list[str] = []

    def __call__(self, accel: str) -> ProbeResult:
        self.calls.append(accel)
        if self.ok[accel]:
            return ProbeResult(accel, True, 0.1, "done", "probe boot finished in 0.10 s")
        detail = "probe boot did not finish within 3 s (reached: long mode)"
        return ProbeResult(accel, False, 3.0, "long mode", detail)


@pytest.fixture
def qemu(tmp_path: Path) -> Path:
    binary = tmp_path / "qemu-system-x86_64"
    binary.write_text("#!/bin/sh\n")
    return binary


@pytest.fixture
def intel(tmp_path: Path) -> HostRoots:
    """A writable copy of the intel tree (tests change it)."""
    shutil.copytree(DATA / "intel", tmp_path / "intel")
    return HostRoots.under(tmp_path / "intel")


def test_pvm_is_tcg_without_probing(qemu: Path) -> None:
    prober = FakeProber()
    info = detect_accel(None, roots=roots_of("pvm"), qemu=qemu, prober=prober)
    assert info.accel == "tcg"
    assert "kvm_pvm" in info.reason and "PVM-only" in info.reason
    assert not info.probed and prober.calls == []


def test_no_dev_kvm_is_tcg(qemu: Path) -> None:
    info = detect_accel(None, roots=roots_of("nokvm"), qemu=qemu, prober=FakeProber())
    assert info == AccelInfo("tcg", "/dev/kvm does not exist (no KVM module loaded); using TCG")


@pytest.mark.parametrize("case", ["intel", "amd"])
def test_static_maybe_then_probe_says_kvm(case: str, qemu: Path) -> None:
    prober = FakeProber()
    info = detect_accel(None, roots=roots_of(case), qemu=qemu, prober=prober)
    assert info.accel == "kvm" and info.probed
    assert prober.calls == ["kvm"]
    assert ("kvm_intel" if case == "intel" else "kvm_amd") in info.reason


def test_failed_probe_with_working_control_is_tcg(qemu: Path) -> None:
    prober = FakeProber(kvm_ok=False)
    info = detect_accel(None, roots=roots_of("intel"), qemu=qemu, prober=prober)
    assert info.accel == "tcg" and info.probed
    assert prober.calls == ["kvm", "tcg"]
    assert "did not finish within 3 s" in info.reason and "under TCG" in info.reason


def test_inconclusive_probe_keeps_kvm_and_is_not_cached(tmp_path: Path, qemu: Path) -> None:
    cache = tmp_path / "host.json"
    prober = FakeProber(kvm_ok=False, tcg_ok=False)
    info = detect_accel(cache, roots=roots_of("intel"), qemu=qemu, prober=prober)
    assert info.accel == "kvm" and "inconclusive" in info.reason
    detect_accel(cache, roots=roots_of("intel"), qemu=qemu, prober=prober)
    assert prober.calls == ["kvm", "tcg", "kvm", "tcg"]


def test_probe_false_skips_the_probe(qemu: Path) -> None:
    prober = FakeProber()
    info = detect_accel(None, roots=roots_of("intel"), qemu=qemu, prober=prober, probe=False)
    assert info.accel == "kvm" and "not probed" in info.reason and prober.calls == []


def test_cache_hit_skips_everything(tmp_path: Path, qemu: Path) -> None:
    cache = tmp_path / "cache" / "host.json"
    prober = FakeProber()
    first = detect_accel(cache, roots=roots_of("intel"), qemu=qemu, prober=prober)
    second = detect_accel(cache, roots=roots_of("intel"), qemu=qemu, prober=prober)
    assert prober.calls == ["kvm"]
    assert not first.cached and second.cached
    assert (second.accel, second.reason, second.probed) == (first.accel, first.reason, True)
    stored = json.loads(cache.read_text())
    assert stored["entries"]["accel"]["key"]["modules"] == ["kvm", "kvm_intel"]


def test_cache_key_changes_invalidate(tmp_path: Path, intel: HostRoots, qemu: Path) -> None:
    cache = tmp_path / "host.json"
    prober = FakeProber()
    detect_accel(cache, roots=intel, qemu=qemu, prober=prober)
    (intel.proc / "sys/kernel/osrelease").write_text("6.1.0-28-amd64\n")  # new kernel
    detect_accel(cache, roots=intel, qemu=qemu, prober=prober)
    os.utime(qemu, ns=(1, 1))  # new QEMU: new mtime
    detect_accel(cache, roots=intel, qemu=qemu, prober=prober)
    (intel.dev / "kvm").unlink()  # module unloaded
    shutil.rmtree(intel.sys / "module/kvm_intel")
    info = detect_accel(cache, roots=intel, qemu=qemu, prober=prober)
    assert prober.calls == ["kvm", "kvm", "kvm"]
    assert info.accel == "tcg" and not info.cached


def test_corrupt_cache_is_ignored(tmp_path: Path, qemu: Path) -> None:
    cache = tmp_path / "host.json"
    cache.write_text("{not json")
    info = detect_accel(cache, roots=roots_of("pvm"), qemu=qemu, prober=FakeProber())
    assert info.accel == "tcg"
    assert json.loads(cache.read_text())["entries"]["accel"]["value"]["accel"] == "tcg"


def test_without_qemu_kvm_is_not_confirmed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VMKIT_QEMU", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr("vmkit.host.qemu_info.FALLBACK_BINARIES", ())
    cache = tmp_path / "host.json"
    info = detect_accel(cache, roots=roots_of("intel"))
    assert info.accel == "kvm" and "no QEMU binary found" in info.reason
    assert not cache.exists()


def test_missing_qemu_binary_fails_at_launch(tmp_path: Path) -> None:
    with pytest.raises(LaunchFailed):
        detect_accel(None, roots=roots_of("intel"), qemu=tmp_path / "no-such-qemu")


FACTS = KvmFacts("6.1", True, None, ("kvm", "kvm_intel"), "vmx")


@pytest.mark.parametrize(
    ("change", "accel", "words"),
    [
        ({}, None, ""),
        ({"dev_kvm": False}, "tcg", "does not exist"),
        ({"open_error": "Permission denied"}, "tcg", "Permission denied"),
        ({"modules": ("kvm", "kvm_pvm")}, "tcg", "PVM-only"),
        ({"modules": ("kvm",)}, "tcg", "neither kvm_intel nor kvm_amd"),
        ({"virt_flag": None}, "tcg", "neither vmx nor svm"),
        ({"modules": ("kvm", "kvm_intel", "kvm_pvm")}, None, ""),  # PVM next to VT-x: probe
    ],
)
def test_judge_static(change: dict[str, object], accel: str | None, words: str) -> None:
    facts = KvmFacts(**{**FACTS.__dict__, **change})
    verdict = judge_static(facts)
    if accel is None:
        assert verdict is None
    else:
        assert verdict is not None and verdict.accel == accel and words in verdict.reason


def test_force_overrides_detection(qemu: Path) -> None:
    prober = FakeProber()
    info = detect_accel(None, roots=roots_of("pvm"), qemu=qemu, prober=prober, force="kvm")
    assert info == AccelInfo("kvm", "forced to kvm") and prober.calls == []
    assert detect_accel(None, roots=roots_of("intel"), force="tcg").accel == "tcg"
    with pytest.raises(InvalidConfig, match="unknown accelerator 'hvf'"):
        detect_accel(None, force="hvf")


def test_read_kvm_facts_of_pvm() -> None:
    facts = read_kvm_facts(roots_of("pvm"))
    assert facts.modules == ("kvm", "kvm_pvm")
    assert facts.kernel == "6.18.44-fc-v595"
    assert facts.dev_kvm and facts.open_error is None and facts.virt_flag is None
