"""The five network models (plus mode 'open') with real tiny guests, vmkit running inside a
throwaway "host" namespace joined to an "upstream" namespace (see vmnetlab.py).

One lab for the whole module: every network is defined and started with `vmkit net-define` /
`net-start`, two guests per network boot at once, then each model's test probes with real TCP
(HTTP) connections, from inside the guests over the serial console (busybox wget) and from the
namespaces:

    model      guest->guest  guest->host  host->guest  guest->upstream  upstream->guest
    nat            yes           yes          yes         yes (masq.)          no
    route          yes           yes          yes         yes                  yes
    open           yes           yes          yes         yes                  yes    (no nft rules)
    host-only      yes           yes          yes         no                   no
    isolated       yes           no           no          no                   no     (no DHCP)
    isolated+dhcp  yes           no           no          no                   no     (marker)
    bridge         yes           no           no          yes (LAN)            yes    (LAN)

Upstream has a route to every guest subnet through the host and the host forwards IPv4 (a NAT
network runs), so that only vmkit's rules decide. A port forward carries TCP from upstream into a
NAT'd guest. The last test destroys everything and checks that the host namespace holds exactly
what it held before (links, addresses, routes, nft ruleset, ip_forward, processes, run files).
"""

from __future__ import annotations

import difflib
import os
import re
import shutil
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from ipaddress import ip_address, ip_network

import pytest
from vmkit_cli import all_pids_of
from vmnetlab import (
    HOST_UP,
    LAN_BRIDGE,
    LAN_SUBNET,
    LAN_UPSTREAM,
    UPSTREAM_UP,
    NetLab,
    httpd_command,
    nic_xml,
    ns_run,
    probe_from_guest,
)

from vmkit.guest import GuestImage
from vmkit.model.network import NS_VMKIT

pytestmark = pytest.mark.integration

NEEDED = ["ip", "nft", "dnsmasq", "busybox"]
GUEST_MIB = 128
HOST_PORT, GUEST_PORT, NS_PORT = 8080, 80, 7000


@dataclass(frozen=True)
class Model:
    key: str  # test id
    net: str  # network name
    bridge: str
    xml: str  # formatnetwork
    subnet: str  # where the guests' addresses are
    dhcp: str  # "vmkit": the network's dnsmasq; "lan": upstream's; "": static addresses
    host_ip: str  # the host address guests talk to
    upstream_ip: str  # the upstream address guests talk to
    matrix: dict[str, bool]
    guest_seen_upstream_as: str | None = None  # the source upstream sees (None: the guest's)
    static: tuple[str, str] = ("", "")
    dhcp_route: str = ""  # the default route the guests get from DHCP
    gateway: str = ""  # a default route the test gives the guests, so that only the host decides


def _ip(third: int) -> str:
    rng = f"<dhcp><range start='10.232.{third}.100' end='10.232.{third}.199'/></dhcp>"
    return f"<ip address='10.232.{third}.1' netmask='255.255.255.0'>{rng}</ip>"


def _net(name: str, bridge: str, forward: str, ip: str) -> str:
    return f"<network><name>{name}</name>{forward}<bridge name='{bridge}' stp='off'/>{ip}</network>"


GROUPS = {  # each direction of the matrix, probed for both guests
    "guest->guest": ("g1->g2", "g2->g1"),
    "guest->host": ("g1->host", "g2->host"),
    "host->guest": ("host->g1", "host->g2"),
    "guest->upstream": ("g1->upstream", "g2->upstream"),
    "upstream->guest": ("upstream->g1", "upstream->g2"),
}
ALL = tuple(GROUPS)


def _matrix(*yes: str) -> dict[str, bool]:
    return {k: k in yes for k in ALL}


MODELS = [
    Model(
        "nat", "t-nat", "vkbr-nat", _net("t-nat", "vkbr-nat", "<forward mode='nat'/>", _ip(1)),
        "10.232.1.0/24", "vmkit", "10.232.1.1", UPSTREAM_UP,
        _matrix("guest->guest", "guest->host", "host->guest", "guest->upstream"),
        guest_seen_upstream_as=HOST_UP, dhcp_route="default via 10.232.1.1 dev eth0",
    ),
    Model(
        "route", "t-route", "vkbr-rt",
        _net("t-route", "vkbr-rt", "<forward mode='route' dev='up0'/>", _ip(2)),
        "10.232.2.0/24", "vmkit", "10.232.2.1", UPSTREAM_UP, _matrix(*ALL),
        dhcp_route="default via 10.232.2.1 dev eth0",
    ),
    Model(
        "open", "t-open", "vkbr-open",
        _net("t-open", "vkbr-open", "<forward mode='open'/>", _ip(3)),
        "10.232.3.0/24", "vmkit", "10.232.3.1", UPSTREAM_UP, _matrix(*ALL),
        dhcp_route="default via 10.232.3.1 dev eth0",
    ),
    Model(
        "host-only", "t-ho", "vkbr-ho", _net("t-ho", "vkbr-ho", "", _ip(4)),
        "10.232.4.0/24", "vmkit", "10.232.4.1", UPSTREAM_UP,
        _matrix("guest->guest", "guest->host", "host->guest"),
        dhcp_route="",  # no forward: DHCP gives no default route (dhcp-option=3) ...
        gateway="default via 10.232.4.1",  # ... but a guest may set one: the host must refuse
    ),
    Model(
        # no address on the bridge: the guests talk to the host's upstream address (which the
        # host answers ARP for on any link); the host gets a route to the subnet from the test
        "isolated", "t-iso", "vkbr-iso", _net("t-iso", "vkbr-iso", "", ""),
        "10.232.5.0/24", "", HOST_UP, UPSTREAM_UP, _matrix("guest->guest"),
        static=("10.232.5.11/24", "10.232.5.12/24"),
        gateway=f"default via {HOST_UP} dev eth0 onlink",
    ),
    Model(
        # <vmkit:isolated/>: the host serves DHCP/DNS on its bridge address and nothing else
        "isolated-dhcp", "t-isd", "vkbr-isd",
        _net("t-isd", "vkbr-isd", f"<metadata><vmkit:isolated xmlns:vmkit='{NS_VMKIT}'/>"
             "</metadata>", _ip(6)),
        "10.232.6.0/24", "vmkit", "10.232.6.1", UPSTREAM_UP, _matrix("guest->guest"),
        dhcp_route="", gateway="default via 10.232.6.1",
    ),
    Model(
        # the host has no address on the LAN and upstream does not forward: host and guests do
        # not meet, exactly as for two machines on a LAN whose router does not route between
        "bridge", "t-br", LAN_BRIDGE,
        f"<network><name>t-br</name><forward mode='bridge'/>"
        f"<bridge name='{LAN_BRIDGE}'/></network>",
        LAN_SUBNET, "lan", HOST_UP, LAN_UPSTREAM,
        _matrix("guest->guest", "guest->upstream", "upstream->guest"),
        dhcp_route=f"default via {LAN_UPSTREAM} dev eth0",
    ),
]  # fmt: skip
BY_KEY = {m.key: m for m in MODELS}
SHORT = {"nat": "nat", "route": "rt", "open": "open", "host-only": "ho", "isolated": "iso",
         "isolated-dhcp": "isd", "bridge": "br"}  # fmt: skip


@dataclass
class Guest:
    name: str
    model: Model
    mac: str
    ip: str = ""
    dhcp_route: str = ""  # `ip -4 route show default` once the lease was applied


@dataclass
class World:
    lab: NetLab
    before: dict[str, str]
    guests: dict[str, tuple[Guest, Guest]] = field(default_factory=dict)
    host_routes: list[str] = field(default_factory=list)  # added by the test, removed at the end


def _boot(lab: NetLab, guests: list[Guest]) -> None:
    vk = lab.vk
    for g in guests:
        nic = nic_xml(g.model.net, g.mac)
        vk.ok("define", str(vk.domain_xml(g.name, memory_mib=GUEST_MIB, devices=nic)))
        lab.domains.append(g.name)
    for g in guests:
        vk.ok("start", g.name)
    for g in guests:
        vk.wait_booted(g.name, timeout=120)


def _prepare(lab: NetLab, g: Guest, index: int) -> None:
    """Address (the DHCP lease, waited for in the guest; or a static one) and the HTTP server."""
    static = g.model.static[index]
    if static:
        setup = (
            "kill $(pidof udhcpc) 2>/dev/null; ip -4 addr flush dev eth0; "
            f"ip addr add {static} dev eth0"
        )
    else:  # udhcpc runs since boot: wait (at most 20 s) for its lease and its script
        setup = (
            "i=0; while ! ip -4 -o addr show dev eth0 | grep -q inet && [ $i -lt 200 ]; "
            "do usleep 100000; i=$((i+1)); done; "
            "while ps | grep -qE '[u]dhcpc.script (bound|renew)' && [ $i -lt 250 ]; "
            "do usleep 100000; i=$((i+1)); done"
        )
    setup += "; echo ROUTE $(ip -4 route show default)"
    if g.model.gateway:
        setup += f"; ip route replace {g.model.gateway}"
    out = lab.vk.guest(
        g.name,
        f"{setup}; {httpd_command(g.name, GUEST_PORT)}; ip -4 -o addr show dev eth0",
        timeout=60,
    )
    m = re.search(r"inet (\d+\.\d+\.\d+\.\d+)/", out)
    assert m, f"{g.name} ({g.model.key}) has no IPv4 address on eth0:\n{out}\n" + lab.vk.guest(
        g.name, "cat /run/udhcpc.log"
    )
    g.ip = m.group(1)
    route = re.search(r"^ROUTE ?(.*)$", out, re.M)
    assert route, out
    g.dhcp_route = route.group(1).strip()


@pytest.fixture(scope="module")
def world(tiny_guest: GuestImage) -> Iterator[World]:
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root")
    missing = [tool for tool in NEEDED if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"missing tools: {', '.join(missing)}")
    with NetLab(tiny_guest) as lab:
        lab.add_lan()
        lab.set_forwarding(False)
        w = World(lab, lab.snapshot())
        vk = lab.vk
        for m in MODELS:
            path = lab.root / f"{m.net}.net.xml"
            path.write_text(m.xml)
            vk.ok("net-define", str(path))
            lab.networks.append(m.net)
            vk.ok("net-start", m.net)
        forwarding = ns_run(lab.host, "sysctl", "-n", "net.ipv4.ip_forward").stdout.strip()
        assert forwarding == "1", "the NAT/routed networks turn IPv4 forwarding on"
        iso = BY_KEY["isolated"]
        route = f"{iso.subnet} dev {iso.bridge}"
        ns_run(lab.host, "ip", "route", "add", *route.split())
        w.host_routes.append(route)
        guests: list[Guest] = []
        for i, m in enumerate(MODELS, 1):
            name, mac = SHORT[m.key], f"52:54:00:e1:{i:02x}"
            w.guests[m.key] = (Guest(f"{name}1", m, f"{mac}:01"), Guest(f"{name}2", m, f"{mac}:02"))
            guests += w.guests[m.key]
        _boot(lab, guests)
        with ThreadPoolExecutor(len(guests)) as pool:
            jobs = [
                pool.submit(_prepare, lab, g, j)
                for pair in w.guests.values()
                for j, g in enumerate(pair)
            ]
            for job in jobs:
                job.result()
        lab.serve(lab.host, NS_PORT, "host")
        lab.serve(lab.upstream, NS_PORT, "upstream")
        yield w


def _probe(w: World, m: Model) -> dict[str, str | None]:
    """Every probe of the matrix for model m: label -> the server's answer (None: no answer)."""
    lab = w.lab
    g1, g2 = w.guests[m.key]
    inside = {
        g1.name: {
            "g1->g2": f"http://{g2.ip}/cgi-bin/who",
            "g1->host": f"http://{m.host_ip}:{NS_PORT}/",
            "g1->upstream": f"http://{m.upstream_ip}:{NS_PORT}/",
        },
        g2.name: {
            "g2->g1": f"http://{g1.ip}/cgi-bin/who",
            "g2->host": f"http://{m.host_ip}:{NS_PORT}/",
            "g2->upstream": f"http://{m.upstream_ip}:{NS_PORT}/",
        },
    }
    outside = {
        f"{src}->{label}": (ns, g.ip, GUEST_PORT, "/cgi-bin/who")
        for src, ns in (("host", lab.host), ("upstream", lab.upstream))
        for label, g in (("g1", g1), ("g2", g2))
    }
    with ThreadPoolExecutor(3) as pool:
        jobs = [pool.submit(probe_from_guest, lab.vk, name, urls) for name, urls in inside.items()]
        answers: dict[str, str | None] = lab.http_get_many(outside)
        for job in jobs:
            answers |= job.result()
    return answers


def _reach(answers: dict[str, str | None]) -> dict[str, bool | str]:
    """The five-way matrix; a direction where the two guests disagree shows as 'mixed'."""
    out: dict[str, bool | str] = {}
    for key, labels in GROUPS.items():
        seen = {answers[label] is not None for label in labels}
        out[key] = seen.pop() if len(seen) == 1 else f"mixed: {[answers[x] for x in labels]}"
    return out


def _expected_answers(w: World, m: Model) -> dict[str, str | None]:
    """Who answers, and which source address each server sees, where the matrix says yes."""
    g1, g2 = w.guests[m.key]
    host_src = m.host_ip  # the host reaches a guest from its address on that subnet
    up_src = LAN_UPSTREAM if m.key == "bridge" else UPSTREAM_UP
    want: dict[str, str | None] = {
        "g1->g2": f"{g2.name} {g1.ip}",
        "g2->g1": f"{g1.name} {g2.ip}",
        "g1->host": f"host {g1.ip}",
        "g2->host": f"host {g2.ip}",
        "g1->upstream": f"upstream {m.guest_seen_upstream_as or g1.ip}",
        "g2->upstream": f"upstream {m.guest_seen_upstream_as or g2.ip}",
        "host->g1": f"{g1.name} {host_src}",
        "host->g2": f"{g2.name} {host_src}",
        "upstream->g1": f"{g1.name} {up_src}",
        "upstream->g2": f"{g2.name} {up_src}",
    }
    for key, labels in GROUPS.items():
        if not m.matrix[key]:
            for label in labels:
                want[label] = None
    return want


def _check_lease(w: World, m: Model) -> None:
    vk = w.lab.vk
    subnet = ip_network(m.subnet)
    leases = vk.ok("net-dhcp-leases", m.net)
    for g in w.guests[m.key]:
        assert ip_address(g.ip) in subnet, f"{g.name}: {g.ip} not in {subnet}"
        assert 100 <= int(ip_address(g.ip)) & 0xFF <= 199, f"{g.name}: {g.ip} not from the range"
        assert any(g.mac in line and g.ip in line for line in leases.splitlines()), (
            f"no lease of {g.mac} -> {g.ip} in net-dhcp-leases {m.net}:\n{leases}"
        )
        ifaddr = vk.ok("domifaddr", g.name)
        assert any(g.mac in line and f"{g.ip}/24" in line for line in ifaddr.splitlines()), (
            f"domifaddr {g.name} does not show {g.mac} {g.ip}/24:\n{ifaddr}"
        )


@pytest.mark.parametrize("key", [m.key for m in MODELS])
def test_model_addresses_and_reach_matrix(world: World, key: str) -> None:
    m = BY_KEY[key]
    if m.dhcp == "vmkit":
        _check_lease(world, m)
    elif m.dhcp == "lan":  # upstream's dnsmasq leased it: the guest is on the LAN
        for g in world.guests[key]:
            assert ip_address(g.ip) in ip_network(LAN_SUBNET), g
    else:  # isolated: nobody serves DHCP; the guests' addresses are the static ones
        assert [g.ip for g in world.guests[key]] == [s.split("/")[0] for s in m.static]
        log = world.lab.vk.guest(world.guests[key][0].name, "cat /run/udhcpc.log")
        assert "obtained" not in log and "lease of" not in log, log
    for g in world.guests[key]:
        if m.dhcp:
            assert g.dhcp_route == m.dhcp_route, f"{g.name}: DHCP gave {g.dhcp_route!r}"
    answers = _probe(world, m)
    assert _reach(answers) == m.matrix, f"{key}: {answers}"
    assert answers == _expected_answers(world, m)


def test_open_network_has_no_firewall_rules(world: World) -> None:
    ruleset = ns_run(world.lab.host, "nft", "list", "ruleset").stdout
    assert "vkbr-open" not in ruleset and "t-open" not in ruleset, ruleset
    assert "vkbr-nat" in ruleset  # while the NAT network does have its table


def test_port_forward_into_nat_guest(world: World) -> None:
    lab, vk = world.lab, world.lab.vk
    g1, _ = world.guests["nat"]
    add = ["port-forward", "add", g1.name, "--host-port", str(HOST_PORT)]
    add += ["--guest-port", str(GUEST_PORT), "--proto", "tcp"]
    vk.ok(*add)
    listed = vk.ok("port-forward", "list", "t-nat")
    assert str(HOST_PORT) in listed and g1.ip in listed, listed
    probes = {
        "upstream->host:8080": (lab.upstream, HOST_UP, HOST_PORT, "/cgi-bin/who"),
        "host->host:8080": (lab.host, HOST_UP, HOST_PORT, "/cgi-bin/who"),
        "upstream->g1:80": (lab.upstream, g1.ip, GUEST_PORT, "/cgi-bin/who"),
    }
    assert lab.http_get_many(probes) == {
        "upstream->host:8080": f"{g1.name} {UPSTREAM_UP}",  # DNAT only: the guest sees upstream
        "host->host:8080": f"{g1.name} {HOST_UP}",  # from the host itself too
        "upstream->g1:80": None,  # the guest itself stays closed to upstream
    }
    vk.ok("port-forward", "remove", g1.name, "--host-port", str(HOST_PORT), "--proto", "tcp")
    assert lab.http_get(lab.upstream, HOST_UP, HOST_PORT, "/cgi-bin/who") is None
    vk.ok(*add)  # left in place: net-destroy must take it away with the rest
    assert lab.http_get(lab.upstream, HOST_UP, HOST_PORT, "/cgi-bin/who") == (
        f"{g1.name} {UPSTREAM_UP}"
    )


def test_destroying_everything_restores_the_host(world: World) -> None:
    lab = world.lab
    lab.stop_servers()
    for route in world.host_routes:
        ns_run(lab.host, "ip", "route", "del", *route.split())
    failures = lab.destroy_all()
    assert not failures, failures
    for net in lab.networks:
        lab.vk.ok("net-undefine", net)
    listed = lab.vk.ok("net-list", "--all")
    assert not any(net in listed for net in lab.networks), listed
    leftover = [pid for pid in all_pids_of(lab.root) if pid not in lab.lan_pids()]
    assert not leftover, f"processes of ours still alive: {lab.describe_pids(leftover)}"
    after = lab.snapshot()
    diffs = []
    for key, old in world.before.items():
        if after[key] != old:
            diff = difflib.unified_diff(
                old.splitlines(), after[key].splitlines(), "before", "after", lineterm=""
            )
            diffs.append(f"{key} changed:\n" + "\n".join(diff))
    assert not diffs, "\n\n".join(diffs)
