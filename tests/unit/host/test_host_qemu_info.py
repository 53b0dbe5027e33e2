"""qemu_help.py parsers and qemu_info.py (finding, querying, caching), without running QEMU."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hostdata import QEMU_TEXT, FakeHelpRunner

from vmkit.errors import QemuError
from vmkit.host.qemu_help import (
    parse_accelerators,
    parse_cpu_help,
    parse_devices,
    parse_machines,
    parse_version,
    parse_version_text,
)
from vmkit.host.qemu_info import QemuInfo, find_qemu, load_qemu_info


def test_version() -> None:
    text = (QEMU_TEXT / "version.txt").read_text()
    assert parse_version(text) == (7, 2, 22)
    assert parse_version_text(text) == "7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)"
    assert parse_version("QEMU emulator version 8.0\n") == (8, 0, 0)
    with pytest.raises(QemuError, match="cannot read QEMU's version"):
        parse_version("qemu-kvm 1\n")


def test_machines_aliases_default_deprecated() -> None:
    machines = parse_machines((QEMU_TEXT / "machine-help.txt").read_text())
    assert machines["pc"].canonical == "pc-i440fx-7.2"
    assert machines["q35"].canonical == "pc-q35-7.2"
    assert machines["pc-i440fx-7.2"].is_default
    assert machines["pc-i440fx-7.2"].description == "Standard PC (i440FX + PIIX, 1996)"
    assert machines["pc-i440fx-1.4"].deprecated
    assert not machines["pc-q35-7.2"].deprecated
    assert machines["microvm"].canonical is None
    assert "Supported" not in " ".join(machines)
    assert len(machines) == 61


def test_machine_with_every_suffix() -> None:
    text = "old   Some PC (alias of old-1.0) (default) (deprecated)\n"
    m = parse_machines(text)["old"]
    assert (m.canonical, m.is_default, m.deprecated, m.description) == (
        "old-1.0",
        True,
        True,
        "Some PC",
    )


def test_cpu_models_and_flags() -> None:
    models, flags = parse_cpu_help((QEMU_TEXT / "cpu-help.txt").read_text())
    assert models["EPYC-IBPB"].alias_of == "EPYC-v2"
    assert models["EPYC"].machine_alias and models["EPYC"].description == ""
    assert models["Broadwell-v1"].description == "Intel Core Processor (Broadwell)"
    assert models["486-v1"].description == ""
    assert {"host", "max", "qemu64", "EPYC-Milan"} <= models.keys()
    assert {"vmx", "svm", "sse4.1", "avx512f", "tsc-deadline"} <= set(flags)
    assert "Recognized" not in models


def test_devices() -> None:
    devices = parse_devices((QEMU_TEXT / "device-help.txt").read_text())
    net = devices["virtio-net-pci"]
    assert (net.bus, net.aliases, net.category) == ("PCI", ("virtio-net",), "Network devices")
    e1000 = devices["e1000"]
    assert e1000.description == "Intel Gigabit Ethernet" and e1000.aliases == ("e1000-82540em",)
    assert devices["isa-debugcon"].bus == "ISA"
    assert devices["nvdimm"].bus is None


def test_accelerators() -> None:
    assert parse_accelerators((QEMU_TEXT / "accel-help.txt").read_text()) == ("tcg", "kvm")


def test_qemu_info_queries() -> None:
    runner = FakeHelpRunner()
    info = load_qemu_info(Path("/usr/bin/qemu-system-x86_64"), None, runner=runner)
    assert [c[1] for c in runner.calls] == ["--version", "-machine", "-cpu", "-device", "-accel"]
    assert all(c[0] == "/usr/bin/qemu-system-x86_64" for c in runner.calls)
    assert info.resolve_machine("pc") == "pc-i440fx-7.2"
    assert info.resolve_machine("q35") == "pc-q35-7.2"
    assert info.resolve_machine("pc-q35-6.2") == "pc-q35-6.2"
    assert info.resolve_machine("microvm") == "microvm"
    assert info.resolve_machine("virt") is None
    assert info.default_machine == "pc-i440fx-7.2"
    assert info.aliases_of("pc-q35-7.2") == ["q35"]
    assert info.resolve_device("virtio-blk") == "virtio-blk-pci"
    assert info.resolve_device("no-such-device") is None
    assert info.version_string == "7.2.22"
    assert {"pc", "q35", "pc-q35-7.2", "microvm"} <= info.machine_names()
    assert info.binary == "/usr/bin/qemu-system-x86_64"


def test_cache_dir_means_host_json(tmp_path: Path) -> None:
    qemu = tmp_path / "qemu"
    qemu.write_text("binary")
    load_qemu_info(qemu, cache_dir=tmp_path / "cache", runner=FakeHelpRunner())
    assert (tmp_path / "cache" / "host.json").exists()


def test_cache_round_trip_and_key(tmp_path: Path) -> None:
    qemu = tmp_path / "qemu-system-x86_64"
    qemu.write_text("binary")
    cache = tmp_path / "host.json"
    runner = FakeHelpRunner()
    first = load_qemu_info(qemu, cache, runner=runner)
    second = load_qemu_info(qemu, cache, runner=runner)
    assert len(runner.calls) == 5  # the second call did not run QEMU
    assert second == first
    assert QemuInfo.from_json(json.loads(json.dumps(first.to_json()))) == first
    os.utime(qemu, ns=(10**9, 10**9))  # an upgraded binary
    load_qemu_info(qemu, cache, runner=runner)
    assert len(runner.calls) == 10


def test_broken_cache_entry_is_requeried(tmp_path: Path) -> None:
    qemu = tmp_path / "qemu"
    qemu.write_text("binary")
    cache = tmp_path / "host.json"
    runner = FakeHelpRunner()
    load_qemu_info(qemu, cache, runner=runner)
    data = json.loads(cache.read_text())
    del data["entries"][f"qemu:{qemu}"]["value"]["machines"]
    cache.write_text(json.dumps(data))
    info = load_qemu_info(qemu, cache, runner=runner)
    assert len(runner.calls) == 10 and "pc" in info.machines


def _exe(path: Path) -> Path:
    path.write_text("#!/bin/sh\n")
    path.chmod(0o755)
    return path


def test_find_qemu_on_path(tmp_path: Path) -> None:
    qemu = _exe(tmp_path / "qemu-system-x86_64")
    assert find_qemu({"PATH": str(tmp_path)}) == qemu


def test_find_qemu_env_override(tmp_path: Path) -> None:
    other = _exe(tmp_path / "my-qemu")
    _exe(tmp_path / "qemu-system-x86_64")
    assert find_qemu({"PATH": str(tmp_path), "VMKIT_QEMU": str(other)}) == other
    assert find_qemu({"PATH": str(tmp_path), "VMKIT_QEMU": "my-qemu"}) == other
    with pytest.raises(QemuError, match="VMKIT_QEMU=/nope"):
        find_qemu({"PATH": str(tmp_path), "VMKIT_QEMU": "/nope"})


def test_find_qemu_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("vmkit.host.qemu_info.FALLBACK_BINARIES", ())
    with pytest.raises(QemuError, match="apt-get install qemu-system-x86"):
        find_qemu({"PATH": str(tmp_path)})


def test_stat_failure_is_a_qemu_error(tmp_path: Path) -> None:
    with pytest.raises(QemuError, match="cannot stat"):
        load_qemu_info(tmp_path / "gone", None, runner=FakeHelpRunner())
