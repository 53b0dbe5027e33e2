"""The shortest real path through vmkit: define, start, boot, console, list, destroy, undefine."""

from __future__ import annotations

import pytest
from vmkit_cli import VmkitEnv, all_pids_of

pytestmark = pytest.mark.integration


def test_define_start_console_destroy(vk: VmkitEnv) -> None:
    vk.ok("define", str(vk.domain_xml("smoke")))
    vk.ok("start", "smoke")
    vk.wait_booted("smoke")
    assert vk.guest("smoke", "echo $((6*7))") == "42"
    assert "running" in vk.ok("list")
    vk.ok("destroy", "smoke")
    assert vk.ok("domstate", "--reason", "smoke").strip() == "shut off (destroyed)"
    vk.ok("undefine", "smoke")
    assert all_pids_of(vk.root) == []
