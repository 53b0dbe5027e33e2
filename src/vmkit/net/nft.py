"""The nftables side of a network: one `table inet vmkit_<network>` per network.

`plan_firewall` turns a Network into a FirewallPlan (None for open and bridge networks, which get
no rules, as with libvirt); `render_ruleset` turns the plan into nft text (pure, golden-tested);
`Nft` applies text with `nft -f -` (inside a netns when given). A table is replaced atomically:
the script declares the table, deletes it and adds it again in one transaction, so there is never
a moment without rules, and never a stale rule left from a previous version.

What the rules do, per mode (bridge BR, subnets S, optional uplink UP):
- every mode: accept DHCP/DNS from guests on input; accept BR -> BR on forward first (with
  br_netfilter on, frames bridged between two guests pass the forward hook with iifname = oifname
  = BR); reject anything else forwarded into or out of BR that the mode does not allow.
- nat: guests out (from S [to UP]); back in only for established/related, or DNAT'd by a port
  forward; masquerade S to anything outside S (tcp/udp source ports 1024-65535, as libvirt).
- route: S out [to UP] and S in [from UP], both ways.
- no forward: nothing forwarded; without an address (isolated) the host drops input from BR too.
- no forward with `<vmkit:isolated/>` (isolated with DHCP): the host takes only DHCP/DNS from BR
  and sends only DHCP/DNS replies to BR (an `output` filter chain); everything else from BR, to
  BR or forwarded through BR (but BR -> BR) is dropped.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from vmkit.errors import FirewallFailed, InvalidConfig, NetworkError
from vmkit.model.network import (
    AddressRange,
    ForwardMode,
    IPNetwork,
    Network,
    PortForward,
    PortRange,
    check_ifname,
    check_network_name,
)
from vmkit.net.netns import exec_in_netns

_DEFAULT_NAT_PORTS = PortRange(1024, 65535)


@dataclass(frozen=True)
class FirewallPlan:
    table: str  # inet table name, vmkit_<network>
    bridge: str
    mode: ForwardMode | None  # NAT, ROUTE or None (isolated / host-only)
    subnets: tuple[IPNetwork, ...] = ()
    uplink: str | None = None
    nat_ports: PortRange = _DEFAULT_NAT_PORTS
    nat_addresses: AddressRange | None = None
    nat_ipv6: bool = False
    port_forwards: tuple[PortForward, ...] = ()
    isolated: bool = False  # no forward, DHCP/DNS with the host and nothing else


def table_name(network: str) -> str:
    check_network_name(network, xpath=None)
    return f"vmkit_{network}"


def plan_firewall(net: Network) -> FirewallPlan | None:
    """The rules a network needs; None when it needs none (forward mode open or bridge)."""
    if net.mode in (ForwardMode.OPEN, ForwardMode.BRIDGE):
        return None
    if not net.bridge_name:
        raise InvalidConfig(f"network '{net.name}' has no bridge name", xpath="/network/bridge")
    fwd = net.forward
    return FirewallPlan(
        table=table_name(net.name),
        bridge=net.bridge_name,
        mode=net.mode,
        subnets=tuple(ip.subnet for ip in net.ips),
        uplink=fwd.uplink if fwd else None,
        nat_ports=(fwd.nat_ports if fwd and fwd.nat_ports else _DEFAULT_NAT_PORTS),
        nat_addresses=fwd.nat_addresses if fwd else None,
        nat_ipv6=bool(fwd and fwd.nat_ipv6),
        port_forwards=net.port_forwards,
        isolated=net.isolated,
    )


def _q(name: str) -> str:
    check_ifname(name)
    return f'"{name}"'


def _fam(net: IPNetwork) -> str:
    return "ip" if net.version == 4 else "ip6"


def _chain(name: str, hook: str, lines: Iterable[str]) -> list[str]:
    return [f"\tchain {name} {{", f"\t\t{hook}", *(f"\t\t{line}" for line in lines), "\t}"]


def _input_rules(plan: FirewallPlan) -> list[str]:
    br = _q(plan.bridge)
    if not plan.subnets:  # isolated: the host has no address here and takes nothing in
        return [f"iifname {br} drop"]
    rules = [
        f"iifname {br} udp dport {{ 53, 67, 547 }} accept",
        f"iifname {br} tcp dport 53 accept",
    ]
    return rules + ([f"iifname {br} drop"] if plan.isolated else [])


def _output_rules(plan: FirewallPlan) -> list[str]:
    """Isolated with DHCP: only the DHCP/DNS replies of the host go out to BR."""
    br = _q(plan.bridge)
    return [
        f"oifname {br} udp sport {{ 53, 67, 547 }} accept",
        f"oifname {br} tcp sport 53 accept",
        f"oifname {br} drop",
    ]


def _forward_rules(plan: FirewallPlan) -> list[str]:
    br = _q(plan.bridge)
    out = f" oifname {_q(plan.uplink)}" if plan.uplink else ""
    inn = f" iifname {_q(plan.uplink)}" if plan.uplink else ""
    rules = [f"iifname {br} oifname {br} accept"]
    for net in plan.subnets:
        fam = _fam(net)
        routed = plan.mode is ForwardMode.ROUTE or (net.version == 6 and not plan.nat_ipv6)
        if plan.mode is ForwardMode.NAT and not routed:
            rules.append(f"oifname {br}{inn} {fam} daddr {net} ct state established,related accept")
            if plan.port_forwards and net.version == 4:
                rules.append(f"oifname {br}{inn} {fam} daddr {net} ct status dnat accept")
            rules.append(f"iifname {br}{out} {fam} saddr {net} accept")
        elif plan.mode is not None:  # routed (IPv6 in a NAT network is routed, as in libvirt)
            rules.append(f"iifname {br}{out} {fam} saddr {net} accept")
            rules.append(f"oifname {br}{inn} {fam} daddr {net} accept")
    verdict = "drop" if plan.isolated else "reject"
    rules += [f"iifname {br} {verdict}", f"oifname {br} {verdict}"]
    return rules


def _nat_rules(plan: FirewallPlan) -> list[str]:
    rules = []
    out = f" oifname {_q(plan.uplink)}" if plan.uplink else ""
    ports = f":{plan.nat_ports.start}-{plan.nat_ports.end}"
    for net in plan.subnets:
        if net.version == 6 and not plan.nat_ipv6:
            continue
        fam = _fam(net)
        match = f"{fam} saddr {net} {fam} daddr != {net}{out}"
        if net.version == 4:
            rules.append(f"{fam} saddr {net} {fam} daddr 224.0.0.0/24 return")
            rules.append(f"{fam} saddr {net} {fam} daddr 255.255.255.255 return")
        if plan.nat_addresses is not None and net.version == 4:
            to = f"{plan.nat_addresses.start}-{plan.nat_addresses.end}"
            rules.append(f"{match} meta l4proto {{ tcp, udp }} snat ip to {to}{ports}")
            rules.append(f"{match} snat ip to {to}")
        else:
            rules.append(f"{match} meta l4proto {{ tcp, udp }} masquerade to {ports}")
            rules.append(f"{match} masquerade")
    return rules


def _dnat_rules(plan: FirewallPlan, *, local: bool) -> list[str]:
    """Port forwards, for traffic arriving (local=False) or made on the host (local=True)."""
    rules = []
    for pf in plan.port_forwards:
        if pf.address is not None:
            where = f"ip daddr {pf.address}"
        elif local:
            where = "fib daddr type local ip daddr != 127.0.0.0/8"
        else:
            where = "fib daddr type local"
        prefix = "" if local else f"iifname != {_q(plan.bridge)} "
        target = f"dnat ip to {pf.guest_ip}:{pf.guest_port}"
        rules.append(f"{prefix}{where} {pf.proto} dport {pf.host_port} {target}")
    return rules


def render_ruleset(plan: FirewallPlan) -> str:
    """The whole `table inet ...` of a network, as nft prints it (tabs, blank line between)."""
    chains = [
        _chain(
            "input", "type filter hook input priority filter; policy accept;", _input_rules(plan)
        ),
        _chain(
            "forward",
            "type filter hook forward priority filter; policy accept;",
            _forward_rules(plan),
        ),
    ]
    if plan.isolated:
        chains.append(
            _chain(
                "output",
                "type filter hook output priority filter; policy accept;",
                _output_rules(plan),
            )
        )
    if plan.mode is ForwardMode.NAT:
        chains.append(
            _chain(
                "postrouting",
                "type nat hook postrouting priority srcnat; policy accept;",
                _nat_rules(plan),
            )
        )
    if plan.port_forwards:
        chains.append(
            _chain(
                "prerouting",
                "type nat hook prerouting priority dstnat; policy accept;",
                _dnat_rules(plan, local=False),
            )
        )
        chains.append(
            _chain(
                "output",
                "type nat hook output priority -100; policy accept;",
                _dnat_rules(plan, local=True),
            )
        )
    body: list[str] = []
    for i, chain in enumerate(chains):
        body += ([""] if i else []) + chain
    return "\n".join([f"table inet {plan.table} {{", *body, "}"]) + "\n"


def render_apply(plan: FirewallPlan) -> str:
    """One transaction that replaces the table (declare, delete, add)."""
    return f"table inet {plan.table}\ndelete table inet {plan.table}\n" + render_ruleset(plan)


def render_remove(table: str) -> str:
    """One transaction that removes the table, whether or not it exists."""
    return f"table inet {table}\ndelete table inet {table}\n"


class Nft:
    """Runs nft scripts in one namespace (the current one when `netns` is None)."""

    def __init__(self, netns: str | None = None, binary: str = "nft") -> None:
        self.netns = netns
        self.binary = binary

    def run(self, script: str) -> None:
        try:
            proc = exec_in_netns(self.netns, [self.binary, "-f", "-"], input=script)
        except NetworkError as e:
            raise FirewallFailed(script, str(e)) from e
        if proc.returncode != 0:
            raise FirewallFailed(script, proc.stderr or f"exit code {proc.returncode}")

    def apply(self, plan: FirewallPlan) -> None:
        self.run(render_apply(plan))

    def remove(self, table: str) -> None:
        self.run(render_remove(table))

    def ruleset(self) -> str:
        proc = exec_in_netns(self.netns, [self.binary, "list", "ruleset"])
        if proc.returncode != 0:
            raise FirewallFailed("list ruleset", proc.stderr)
        return proc.stdout

    def has_table(self, table: str) -> bool:
        proc = exec_in_netns(self.netns, [self.binary, "list", "table", "inet", table])
        return proc.returncode == 0
