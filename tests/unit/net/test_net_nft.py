"""nftables rulesets rendered from network definitions (golden files tests/data/network/nft)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from netcases import NET_DATA, load_case

from vmkit.errors import FirewallFailed, InvalidConfig
from vmkit.model.network import ForwardMode
from vmkit.net.nft import (
    FirewallPlan,
    Nft,
    plan_firewall,
    render_apply,
    render_remove,
    render_ruleset,
    table_name,
)

WITH_RULES = ["nat", "nat-full", "route", "hostonly", "isolated", "isolated-dhcp", "nodns"]


@pytest.mark.parametrize("case", WITH_RULES)
def test_ruleset_golden(case: str, golden: Callable[[Path, str], None]) -> None:
    plan = plan_firewall(load_case(case))
    assert plan is not None
    golden(NET_DATA / "nft" / f"{case}.nft", render_ruleset(plan))


@pytest.mark.parametrize("case", ["open", "bridge"])
def test_open_and_bridge_networks_get_no_rules(case: str) -> None:
    assert plan_firewall(load_case(case)) is None


def test_plan_of_nat_network() -> None:
    plan = plan_firewall(load_case("nat"))
    assert plan is not None
    assert (plan.table, plan.bridge, plan.mode, plan.uplink) == (
        "vmkit_nat1",
        "vk-nat1",
        ForwardMode.NAT,
        None,
    )
    assert [str(s) for s in plan.subnets] == ["10.231.1.0/24"]


def test_same_bridge_traffic_is_accepted_before_any_reject() -> None:
    """The br_netfilter pitfall: guest-to-guest frames pass the forward hook as BR -> BR."""
    for case in WITH_RULES:
        plan = plan_firewall(load_case(case))
        assert plan is not None
        lines = [line.strip() for line in render_ruleset(plan).splitlines()]
        forward = lines.index("chain forward {")
        accept = lines.index(f'iifname "{plan.bridge}" oifname "{plan.bridge}" accept')
        first_stop = next(
            i for i, line in enumerate(lines) if i > forward and line.endswith(("reject", "drop"))
        )
        assert forward < accept < first_stop


def test_isolated_with_dhcp_lets_only_dhcp_and_dns_between_guests_and_host() -> None:
    plan = plan_firewall(load_case("isolated-dhcp"))
    assert plan is not None and plan.isolated and plan.mode is None
    chains: dict[str, list[str]] = {}
    for block in render_ruleset(plan).split("chain ")[1:]:
        name, _, body = block.partition(" {")
        rules = (r.strip() for r in body.splitlines())
        chains[name] = [r for r in rules if r.endswith(("accept", "drop", "reject"))]
    br = '"vk-isd1"'
    assert chains["input"][-1] == f"iifname {br} drop"
    assert chains["output"] == [
        f"oifname {br} udp sport {{ 53, 67, 547 }} accept",
        f"oifname {br} tcp sport 53 accept",
        f"oifname {br} drop",
    ]
    assert chains["forward"] == [
        f"iifname {br} oifname {br} accept",
        f"iifname {br} drop",
        f"oifname {br} drop",
    ]
    hostonly = plan_firewall(load_case("hostonly"))
    assert hostonly is not None and not hostonly.isolated  # without the marker: host-only


def test_apply_replaces_the_table_in_one_transaction() -> None:
    plan = FirewallPlan(table="vmkit_x", bridge="br0", mode=None)
    script = render_apply(plan)
    assert script.startswith("table inet vmkit_x\ndelete table inet vmkit_x\ntable inet vmkit_x {")
    assert render_remove("vmkit_x") == "table inet vmkit_x\ndelete table inet vmkit_x\n"


def test_table_name_is_checked() -> None:
    assert table_name("lab-nat") == "vmkit_lab-nat"
    with pytest.raises(InvalidConfig):
        table_name("a; flush ruleset")


def test_nft_failure_is_a_firewall_error(tmp_path: Path) -> None:
    fake = tmp_path / "nft"
    fake.write_text("#!/bin/sh\ncat >/dev/null\necho 'Error: syntax error' >&2\nexit 1\n")
    fake.chmod(0o755)
    with pytest.raises(FirewallFailed) as err:
        Nft(binary=str(fake)).run("table inet x {}\n")
    assert str(err.value) == "nft failed: Error: syntax error"
    assert err.value.ruleset == "table inet x {}\n"
    with pytest.raises(FirewallFailed) as err2:
        Nft(binary=str(tmp_path / "missing")).run("x")
    assert "not installed" in str(err2.value)
