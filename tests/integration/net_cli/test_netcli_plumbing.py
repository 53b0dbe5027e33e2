"""Host plumbing through the real CLI, in throwaway namespaces: iface-bridge moves a NIC's
addresses and routes onto a bridge and back (a veth stands in for the host's NIC), and a failure
injected at any step on the real kernel leaves the NIC as it was; netns and veth commands; a
namespace as the router (with SNAT) of an isolated network."""

from __future__ import annotations

import difflib
import re

import pytest
from netcli_lab import UP_HOST, UP_PEER, NetCli, sh

from vmkit.engine.ifbridge import iface_bridge
from vmkit.net.links import Links
from vmkit.net.netns import run_in_netns

pytestmark = pytest.mark.integration


def _nic_state(cli: NetCli) -> dict[str, str]:
    def strip(text: str) -> str:
        # timers tick; moving a veth between namespaces resets its tso_max_size
        return re.sub(r"(\w+_timer)\s+[0-9.]+|valid_lft \S+ preferred_lft \S+|tso_max_size \d+",
                      "", text)  # fmt: skip

    return {
        "links": strip(sh(cli.host, "ip", "-d", "link", "show").stdout),
        "addresses": strip(sh(cli.host, "ip", "addr", "show").stdout),
        # routes moved back come with proto static (net.links.Route does not carry the proto)
        "routes": sh(cli.host, "ip", "route", "show").stdout.replace(" proto static", ""),
    }


def test_iface_bridge_and_unbridge(cli: NetCli) -> None:
    sh(cli.host, "ip", "route", "add", "10.240.0.0/16", "via", UP_PEER)
    before = _nic_state(cli)
    out = cli.ok("iface-bridge", "up0", "br0", "--no-stp", "--delay", "0")
    assert out.startswith("Created bridge br0 with attached device up0\nMoved 198.51.100.1/24")
    assert f"inet {UP_HOST}/24" in sh(cli.host, "ip", "addr", "show", "br0").stdout
    assert "inet " not in sh(cli.host, "ip", "addr", "show", "up0").stdout
    assert "master br0" in sh(cli.host, "ip", "link", "show", "up0").stdout
    routes = sh(cli.host, "ip", "route", "show").stdout
    assert f"default via {UP_PEER} dev br0" in routes
    assert f"10.240.0.0/16 via {UP_PEER} dev br0" in routes
    cli.wait_for("the bridge to forward", lambda: "state UP" in sh(
        cli.host, "ip", "link", "show", "br0").stdout)  # fmt: skip
    assert (
        sh(cli.host, "busybox", "ping", "-c", "1", "-W", "2", UP_PEER, check=False).returncode == 0
    )
    cli.fails(4, "iface-bridge", "up0", "br1", match="already in bridge 'br0'")
    out = cli.ok("iface-unbridge", "br0")
    assert out == "Device up0 un-attached from bridge br0\nBridge br0 deleted\n\n"
    assert _nic_state(cli) == before
    cli.fails(3, "iface-bridge", "eth9", "br0", match="no interface named 'eth9'")
    cli.fails(2, "iface-bridge", "up0", "averyverylongbridge", match="longer than 15")
    assert _nic_state(cli) == before


def _uplink_state(cli: NetCli) -> dict[str, str]:
    state = _nic_state(cli)
    return {
        "up1": re.sub(r"^\d+: ", "", state["links"].split("up1@", 1)[1].split("\n4:")[0]),
        "addresses": sh(cli.host, "ip", "addr", "show", "up1").stdout.split(":", 1)[1],
        "routes": state["routes"].replace(" linkdown", ""),  # the bridge's carrier comes and goes
        "rules": sh(cli.host, "ip", "rule", "show").stdout,
    }


def _same(before: dict[str, str], after: dict[str, str]) -> None:
    for key in before:
        diff = difflib.unified_diff(before[key].splitlines(), after[key].splitlines(), lineterm="")
        text = "\n".join(diff)
        assert not text, f"{key} differs:\n{text}"


class _FailAt:
    """Real netlink (Links), failing at the n-th change."""

    def __init__(self, links: Links, n: int) -> None:
        self._links, self._n, self.changes = links, n, 0

    def __getattr__(self, name: str) -> object:
        real = getattr(self._links, name)
        if name in ("view", "get", "links"):
            return real

        def call(*args: object, **kw: object) -> object:
            self.changes += 1
            if self.changes == self._n:
                raise RuntimeError(f"injected failure at change {self._n} ({name})")
            return real(*args, **kw)

        return call


def _bridge_failing_at(n: int) -> str:
    with Links() as links:
        wrapper = _FailAt(links, n)
        try:
            iface_bridge(wrapper, "up0", "br0")  # type: ignore[arg-type]
        except RuntimeError as e:
            return f"rolled back: {e}"
        return f"done after {wrapper.changes} changes"


def test_a_failure_at_any_step_of_iface_bridge_is_rolled_back_on_the_kernel(cli: NetCli) -> None:
    before = _nic_state(cli)
    n = 1
    while True:
        outcome = run_in_netns(cli.host, lambda n=n: _bridge_failing_at(n))  # type: ignore[misc]
        if outcome.startswith("done"):
            break
        assert outcome.startswith("rolled back: injected"), outcome
        assert _nic_state(cli) == before, f"failure at change {n} left the NIC changed"
        n += 1
    assert n > 5
    cli.ok("iface-unbridge", "br0")
    assert _nic_state(cli) == before


def test_netns_and_veth_commands(cli: NetCli) -> None:
    name = f"{cli.tag}-x"
    assert cli.ok("netns", "add", name, nsenter=True) == f"Namespace {name} created\n"
    assert name in cli.ok("netns", "list", nsenter=True).split()
    assert "lo" in cli.ok("netns", "exec", name, "--", "ip", "-br", "link", nsenter=True)
    r = cli.run("netns", "exec", name, "--", "sh", "-c", "exit 7", nsenter=True)
    assert r.returncode == 7
    cli.fails(4, "netns", "add", name, nsenter=True, match="already exists")
    cli.fails(5, "netns", "add", f"{cli.tag}-y", match="nsenter --net=")  # under ip netns exec
    out = cli.ok("veth", "add", "vx0", "vx1", "--peer-netns", name, nsenter=True)
    assert out == "Veth vx0 <-> vx1 created\n"
    assert "state" in sh(cli.host, "ip", "link", "show", "vx0").stdout
    assert "vx1" in sh(name, "ip", "link", "show", "vx1").stdout
    cli.fails(4, "veth", "add", "vx0", "vx2", match="'vx0' already exists")
    cli.fails(2, "veth", "delete", "lo", "--netns", cli.upstream, match="not a veth")
    cli.fails(3, "veth", "delete", "nope0", match="no interface named")
    assert cli.ok("veth", "delete", "vx1", "--netns", name) == "Veth vx1 deleted\n"
    assert "vx0" not in sh(cli.host, "ip", "link", "show").stdout
    assert cli.ok("netns", "delete", name, nsenter=True) == f"Namespace {name} deleted\n"
    cli.fails(3, "netns", "delete", name, nsenter=True, match="no namespace named")


@pytest.mark.parametrize("forward", ["", "route"])
def test_a_namespace_routes_a_network_with_snat(cli: NetCli, forward: str) -> None:
    """Isolated: the guest's gateway is the router. Routed: the guest's gateway is the host,
    whose policy route for the network sends it on to the router (not out of up0)."""
    # a second link toward the upstream namespace: the router's uplink
    sh(cli.host, "ip", "link", "add", "up1", "type", "veth", "peer", "name", "eth1", "netns",
       cli.upstream)  # fmt: skip
    sh(cli.host, "ip", "addr", "add", "198.51.101.1/24", "dev", "up1")
    sh(cli.host, "ip", "link", "set", "up1", "up")
    sh(cli.upstream, "ip", "addr", "add", "198.51.101.2/24", "dev", "eth1")
    sh(cli.upstream, "ip", "link", "set", "eth1", "up")
    # a gateway route through the uplink: it moves into the router with it, and back
    sh(cli.host, "ip", "route", "add", f"{UP_PEER}/32", "via", "198.51.101.2", "dev", "up1")
    xml = cli.xml(
        "lan",
        f"<network><name>lan</name>{f'<forward mode={forward!r}/>' if forward else ''}"
        "<bridge name='vklan' stp='off'/>"
        "<ip address='10.234.0.1' prefix='24'><dhcp>"
        "<range start='10.234.0.100' end='10.234.0.199'/></dhcp></ip></network>",
    )
    cli.ok("net-define", xml)
    cli.ok("net-start", "lan")
    before = _uplink_state(cli)
    router = f"{cli.tag}-r"
    cli.fails(2, "router", "add", router, "--network", "lan", "--address", "10.234.0.150",
              "--uplink", "up1", nsenter=True, match="inside the network's DHCP range")  # fmt: skip
    out = cli.ok("router", "add", router, "--network", "lan", "--address", "10.234.0.254",
                 "--uplink", "up1", nsenter=True)  # fmt: skip
    assert out.startswith(f"Router {router} created: 10.234.0.0/24 of network lan leaves")
    assert "up1" not in sh(cli.host, "ip", "link", "show").stdout
    assert "198.51.101.1/24" in sh(router, "ip", "addr", "show", "up1").stdout
    g = cli.guest("g1", "vklan", "52:54:00:00:34:10")
    sh(g, "ip", "addr", "add", "10.234.0.50/24", "dev", "eth0")
    sh(g, "ip", "route", "add", "default", "via", "10.234.0.1" if forward else "10.234.0.254")
    cli.serve(cli.upstream, 9000, "upstream")
    assert cli.connect(g, "198.51.101.2", 9000) == "upstream 198.51.101.1"  # masqueraded
    if forward:
        assert "lookup 5100" in sh(cli.host, "ip", "rule", "show").stdout
        assert cli.connect(g, UP_PEER, 9000) == "upstream 198.51.101.1"  # not through up0
    assert router in cli.ok("router", "list", nsenter=True)
    cli.fails(4, "netns", "delete", router, nsenter=True, match="use 'vmkit router delete")
    assert cli.ok("router", "delete", router, nsenter=True).startswith(f"Router {router} deleted")
    cli.wait_for("up1 to come up", lambda: "state UP" in sh(
        cli.host, "ip", "link", "show", "up1").stdout)  # fmt: skip
    _same(before, _uplink_state(cli))  # up1 is back, with its address and routes
    assert router not in cli.ok("netns", "list", nsenter=True).split()
    cli.ok("net-destroy", "lan")
