"""dnsmasq configurations (golden files tests/data/network/dnsmasq) and lease files."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from dataclasses import replace
from ipaddress import ip_address
from pathlib import Path

import pytest
from netcases import NET_DATA, load_case

from vmkit.errors import InvalidConfig
from vmkit.model.network import Dns, DnsTxt
from vmkit.net.dnsmasq import (
    DhcpLease,
    DnsmasqFiles,
    dnsmasq_needed,
    leases_for_mac,
    parse_leases,
    read_leases,
    render_dnsmasq_conf,
)

CASES = ["nat", "nat-full", "route", "open", "hostonly", "isolated-dhcp", "nodns"]


def _files(name: str) -> DnsmasqFiles:
    return DnsmasqFiles.in_dir(Path("/run/vmkit/net") / name)


@pytest.mark.parametrize("case", CASES)
def test_conf_golden(case: str, golden: Callable[[Path, str], None]) -> None:
    net = load_case(case)
    assert dnsmasq_needed(net)
    golden(NET_DATA / "dnsmasq" / f"{case}.conf", render_dnsmasq_conf(net, _files(net.name)))


@pytest.mark.parametrize("case", ["isolated", "bridge"])
def test_no_dnsmasq_without_an_address_or_for_a_host_bridge(case: str) -> None:
    assert not dnsmasq_needed(load_case(case))


def test_conf_isolates_dnsmasq_from_the_system() -> None:
    conf = render_dnsmasq_conf(load_case("hostonly"), _files("hostonly1"))
    lines = conf.splitlines()
    for needed in [
        "bind-interfaces",
        "interface=vk-ho1",
        "except-interface=lo",
        "no-hosts",
        "no-resolv",
        "no-ping",
        "dhcp-option=3",
        "pid-file=/run/vmkit/net/hostonly1/dnsmasq.pid",
        "dhcp-leasefile=/run/vmkit/net/hostonly1/leases",
    ]:
        assert needed in lines


def test_values_with_line_breaks_never_reach_the_file() -> None:
    net = load_case("nat")
    with pytest.raises(InvalidConfig) as err:
        render_dnsmasq_conf(net, _files("a\nb"))
    assert str(err.value).startswith("value '/run/vmkit/net/a\\nb/dnsmasq.pid' cannot go into")
    bad = replace(net, dns=Dns(txts=(DnsTxt("t", "a,b\ninterface=eth0"),)))
    with pytest.raises(InvalidConfig):
        render_dnsmasq_conf(bad, _files("nat1"))


LEASES = """\
1795624348 52:54:00:11:22:33 10.77.0.50 guest1 01:52:54:00:11:22:33
1795624349 52:54:00:AA:BB:CC 10.77.0.136 * *
duid 00:01:00:01:2c:3d:4e:5f:52:54:00:00:00:01
1795624350 1234567 fd00::10 web 00:01:00:01:2c:3d:4e:5f:52:54:00:00:00:10
garbage line
"""


def test_parse_leases() -> None:
    assert parse_leases(LEASES) == [
        DhcpLease(
            1795624348,
            "52:54:00:11:22:33",
            ip_address("10.77.0.50"),
            "guest1",
            "01:52:54:00:11:22:33",
        ),
        DhcpLease(1795624349, "52:54:00:aa:bb:cc", ip_address("10.77.0.136"), None, None),
        DhcpLease(
            1795624350,
            None,
            ip_address("fd00::10"),
            "web",
            "00:01:00:01:2c:3d:4e:5f:52:54:00:00:00:10",
            iaid="1234567",
        ),
    ]
    assert leases_for_mac(parse_leases(LEASES), "52:54:00:AA:BB:CC") == [ip_address("10.77.0.136")]


def test_read_leases_of_missing_file(tmp_path: Path) -> None:
    assert read_leases(tmp_path / "leases") == []


@pytest.mark.parametrize("case", CASES)
def test_dnsmasq_accepts_the_golden_conf(case: str) -> None:
    """dnsmasq's own syntax check (`--test`, no root, nothing started)."""
    if shutil.which("dnsmasq") is None:
        pytest.skip("dnsmasq is not installed (package dnsmasq-base)")
    path = NET_DATA / "dnsmasq" / f"{case}.conf"
    proc = subprocess.run(
        ["dnsmasq", "--test", f"--conf-file={path}"], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
