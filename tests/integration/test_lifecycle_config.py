"""Definitions around runs: transient domains, undefine while running, autostart, the next boot's
memory and vcpus, and edit (validated before it is saved)."""

from __future__ import annotations

import re
import stat

import pytest
from lifecycle_checks import assert_consistent
from vmkit_cli import VmkitEnv, all_pids_of

pytestmark = pytest.mark.integration


def info(vk: VmkitEnv, name: str) -> dict[str, str]:
    lines = vk.ok("dominfo", name).splitlines()
    return {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in lines if line)}


def editor(vk: VmkitEnv, name: str, sed: str) -> dict[str, str]:
    """An EDITOR that applies one sed expression to the file it is given."""
    script = vk.root / f"{name}.sh"
    script.write_text(f"#!/bin/sh\nexec sed -i -e '{sed}' \"$1\"\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return {"EDITOR": str(script), "VISUAL": ""}


def test_create_transient_then_destroy_is_gone(vk: VmkitEnv) -> None:
    xml = vk.domain_xml("tr", machine="microvm")
    assert vk.ok("create", str(xml)) == f"Domain 'tr' created from {xml}\n\n"
    assert vk.ok("list", "--transient", "--name") == "tr\n\n"
    assert vk.ok("list", "--persistent", "--name") == "\n"
    assert info(vk, "tr")["Persistent"] == "no"
    vk.wait_booted("tr")
    vk.fails(5, "autostart", "tr", match="transient")
    vk.ok("destroy", "tr")
    vk.fails(3, "domstate", "tr", match="failed to get domain 'tr'")
    assert vk.ok("list", "--all", "--name") == "\n"
    assert_consistent(vk)


def test_undefine_running_makes_it_transient(vk: VmkitEnv) -> None:
    vk.ok("define", str(vk.domain_xml("undef", machine="microvm")))
    vk.ok("start", "undef")
    assert vk.ok("undefine", "undef") == "Domain 'undef' has been undefined\n\n"
    got = info(vk, "undef")
    assert (got["State"], got["Persistent"]) == ("running", "no")
    assert vk.ok("list", "--all", "--transient", "--name") == "undef\n\n"
    vk.fails(5, "undefine", "undef", match="transient domain 'undef'")
    vk.wait_booted("undef")
    vk.ok("destroy", "undef")
    vk.fails(3, "dominfo", "undef", match="failed to get domain 'undef'")
    assert all_pids_of(vk.root) == []


def test_autostart_and_start_autostart(vk: VmkitEnv) -> None:
    for name in ("auto1", "manual1"):
        vk.ok("define", str(vk.domain_xml(name, machine="microvm")))
    assert vk.ok("autostart", "auto1") == "Domain 'auto1' marked as autostarted\n\n"
    assert info(vk, "auto1")["Autostart"] == "enable"
    assert vk.ok("list", "--all", "--autostart", "--name") == "auto1\n\n"
    assert vk.ok("start-autostart") == "Domain 'auto1' started\n"
    assert vk.ok("list", "--name") == "auto1\n\n"
    assert vk.ok("start-autostart") == "Domain 'auto1' started\n", "a running one is left alone"
    assert vk.ok("list", "--name") == "auto1\n\n"
    vk.ok("autostart", "--disable", "auto1")
    assert info(vk, "auto1")["Autostart"] == "disable"
    vk.ok("destroy", "auto1")
    assert vk.ok("start-autostart") == ""
    assert vk.ok("list", "--name") == "\n"
    assert_consistent(vk)


def test_setmem_setvcpus_change_the_next_boot(vk: VmkitEnv) -> None:
    vk.ok("define", str(vk.domain_xml("sized", machine="q35")))
    vk.ok("start", "sized")
    vk.ok("setmaxmem", "sized", "192M")
    vk.ok("setmem", "sized", "128M")
    vk.ok("setvcpus", "--maximum", "sized", "2")
    vk.ok("setvcpus", "sized", "2")
    inactive = vk.ok("dumpxml", "--inactive", "sized")
    assert re.search(r"<memory unit='KiB'>196608</memory>", inactive), inactive
    assert re.search(r"<currentMemory unit='KiB'>131072</currentMemory>", inactive), inactive
    assert re.search(r"<vcpu[^>]*>2</vcpu>", inactive), inactive
    got = info(vk, "sized")
    assert (got["CPU(s)"], got["Max memory"]) == ("1", "163840 KiB"), "the running one keeps it"
    live = vk.ok("dumpxml", "sized")
    assert "<memory unit='KiB'>163840</memory>" in live
    vk.fails(2, "setmem", "sized", "256M", match="max memory")
    vk.fails(2, "setvcpus", "sized", "3", match="greater than max")

    vk.ok("destroy", "sized")
    vk.ok("start", "sized")
    got = info(vk, "sized")
    assert (got["CPU(s)"], got["Max memory"], got["Used memory"]) == (
        "2",
        "196608 KiB",
        "131072 KiB",
    )
    vk.wait_booted("sized")
    assert vk.guest("sized", "grep -c ^processor /proc/cpuinfo") == "2"
    vk.ok("destroy", "sized")
    assert_consistent(vk)


def test_edit_error_keeps_old_definition(vk: VmkitEnv) -> None:
    vk.ok("define", str(vk.domain_xml("ed", machine="microvm")))
    before = vk.ok("dumpxml", "--inactive", "ed")
    bad = editor(vk, "bad", "s|<vcpu|<bogus/><vcpu|")
    vk.fails(2, "edit", "ed", extra_env=bad, match="bogus")
    assert vk.ok("dumpxml", "--inactive", "ed") == before
    broken = editor(vk, "broken", "s|</domain>||")
    vk.fails(2, "edit", "ed", extra_env=broken, match="(?i)xml")
    assert vk.ok("dumpxml", "--inactive", "ed") == before
    no_change = editor(vk, "same", "s|nothing-matches-this||")
    assert "not changed" in vk.ok("edit", "ed", extra_env=no_change)


def test_edit_memory_is_saved_and_used_at_next_start(vk: VmkitEnv) -> None:
    vk.ok("define", str(vk.domain_xml("ed2", machine="microvm")))
    vk.ok("start", "ed2")
    more = editor(vk, "more", "s|>163840<|>196608<|g")
    assert vk.ok("edit", "ed2", extra_env=more) == "Domain 'ed2' XML configuration edited.\n\n"
    inactive = vk.ok("dumpxml", "--inactive", "ed2")
    assert "<memory unit='KiB'>196608</memory>" in inactive
    assert info(vk, "ed2")["Max memory"] == "163840 KiB", "the running domain is unchanged"
    vk.ok("destroy", "ed2")
    vk.ok("start", "ed2")
    assert info(vk, "ed2")["Max memory"] == "196608 KiB"
    vk.ok("destroy", "ed2")
