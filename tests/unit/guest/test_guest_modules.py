"""Which kernel modules the guest gets, in which order, read from synthetic .ko files."""

from __future__ import annotations

from pathlib import Path

import pytest
from fakedeb import MODULES, RELEASE, FakeDebian, make_module

from vmkit.guest.errors import GuestBuildError
from vmkit.guest.modules import (
    REQUIRED_MODULES,
    ModuleTree,
    module_depends,
    module_name,
    plan_load_order,
    read_modinfo,
    render_modules_dep,
)

DEPS = {name: module_depends({"depends": [depends]}) for name, (_, depends) in MODULES.items()}


def test_module_name_normalises() -> None:
    assert module_name("virtio-net.ko") == "virtio_net"
    assert module_name("virtio_blk.ko.xz") == "virtio_blk"


def test_read_modinfo_from_elf() -> None:
    elf = make_module({"name": "virtio_net", "depends": "virtio_ring,virtio,net_failover"})
    info = read_modinfo(elf)
    assert info["name"] == ["virtio_net"]
    assert module_depends(info) == ["virtio_ring", "virtio", "net_failover"]
    assert module_depends(read_modinfo(make_module({"depends": ""}))) == []


def test_read_modinfo_rejects_non_elf() -> None:
    with pytest.raises(ValueError, match="ELF"):
        read_modinfo(b"#!/bin/sh\n")


def test_load_order_puts_dependencies_first() -> None:
    order = plan_load_order(["virtio_net", "virtio_blk", "button"], DEPS.__getitem__)
    assert order == [
        "virtio_ring",
        "virtio",
        "failover",
        "net_failover",
        "virtio_net",
        "virtio_blk",
        "button",
    ]


def test_platform_order_is_already_a_valid_load_order() -> None:
    assert plan_load_order(REQUIRED_MODULES, DEPS.__getitem__) == list(REQUIRED_MODULES)


def test_dependency_cycle_is_an_error() -> None:
    deps = {"a": ["b"], "b": ["a"]}
    with pytest.raises(GuestBuildError, match="cycle"):
        plan_load_order(["a"], deps.__getitem__)


def test_modules_dep_lists_all_dependencies_last_loaded_first() -> None:
    paths = {name: path for name, (path, _) in MODULES.items()}
    text = render_modules_dep(["failover", "net_failover", "virtio_net"], paths, DEPS.__getitem__)
    assert text.splitlines() == [
        "kernel/net/core/failover.ko:",
        "kernel/drivers/net/net_failover.ko: kernel/net/core/failover.ko",
        "kernel/drivers/net/virtio_net.ko: kernel/drivers/net/net_failover.ko "
        "kernel/net/core/failover.ko kernel/drivers/virtio/virtio.ko "
        "kernel/drivers/virtio/virtio_ring.ko",
    ]


def _tree(tmp_path: Path) -> ModuleTree:
    deb = tmp_path / "kernel.deb"
    deb.write_bytes(b"kernel")
    FakeDebian()(["dpkg-deb", "-x", str(deb), str(tmp_path / "root")])
    return ModuleTree(tmp_path / "root" / "lib" / "modules" / RELEASE)


def test_select_skips_builtin_and_absent_optional(tmp_path: Path) -> None:
    tree = _tree(tmp_path)
    picked = tree.select(["ext4", "virtio_blk"], ["e1000"])
    assert [(m.name, m.path) for m in picked] == [
        ("virtio", "kernel/drivers/virtio/virtio.ko"),
        ("virtio_ring", "kernel/drivers/virtio/virtio_ring.ko"),
        ("virtio_blk", "kernel/drivers/block/virtio_blk.ko"),
    ]
    assert read_modinfo(picked[-1].data)["name"] == ["virtio_blk"]


def test_select_missing_required_module_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(GuestBuildError, match="kernel module vhost_vsock is neither"):
        _tree(tmp_path).select(["vhost_vsock"], [])
