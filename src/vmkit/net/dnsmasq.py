"""One dnsmasq per network: its configuration (pure, golden-tested), its process, its leases.

`render_dnsmasq_conf` writes everything into one file that dnsmasq reads with
`--conf-file=FILE` (so neither /etc/dnsmasq.conf nor /etc/hosts is read), bound to the bridge only,
with `no-ping` (a lease in 0.1 s instead of 3.1 s) and pid/lease files in the network's run dir.
Static hosts and DNS records are in that file too, not in files dnsmasq re-reads: dnsmasq drops
to `nobody` after start and may not be able to read vmkit's run dir then, so a live update is a
restart (leases survive in the lease file). Every value is checked before it reaches the file.

`start_dnsmasq` launches it (inside a netns when given) and returns its pid once it has
daemonized; `stop_dnsmasq` stops that pid, after checking it is still our dnsmasq. `parse_leases`
reads dnsmasq's lease file for net-dhcp-leases and domifaddr.
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address, ip_address
from pathlib import Path

from vmkit.errors import InvalidConfig, NetworkError
from vmkit.model.network import (
    DhcpHost,
    DhcpRange,
    ForwardMode,
    Ip,
    IPAddress,
    Lease,
    Network,
    check_ifname,
)
from vmkit.net.netns import exec_in_netns

_FORBIDDEN_CHARS = ("\n", "\r", "\0")


@dataclass(frozen=True)
class DnsmasqFiles:
    conf: Path
    pid: Path
    leases: Path

    @classmethod
    def in_dir(cls, directory: Path) -> DnsmasqFiles:
        return cls(directory / "dnsmasq.conf", directory / "dnsmasq.pid", directory / "leases")


@dataclass(frozen=True)
class DnsmasqProcess:
    pid: int
    start_time: int  # /proc/PID/stat field 22, so a reused pid is never taken for ours


@dataclass(frozen=True)
class DhcpLease:
    expiry: int  # seconds since the epoch; 0 for an infinite lease
    mac: str | None  # None for IPv6 leases (they carry an IAID and a DUID)
    ip: IPAddress
    hostname: str | None
    client_id: str | None  # client id (IPv4) or DUID (IPv6)
    iaid: str | None = None


def dnsmasq_needed(net: Network) -> bool:
    """A network with an address runs dnsmasq for DNS, DHCP or both (not for mode bridge)."""
    if net.mode is ForwardMode.BRIDGE or not net.ips:
        return False
    return net.dns_enabled or any(ip.dhcp is not None for ip in net.ips)


def _v(value: object) -> str:
    """A value for the conf file: no line breaks or NULs, ever."""
    text = str(value)
    if any(c in text for c in _FORBIDDEN_CHARS):
        raise InvalidConfig(f"value {text!r} cannot go into a dnsmasq configuration", value=text)
    return text


def _field(value: object) -> str:
    """One comma-separated field: also no commas."""
    text = _v(value)
    if "," in text:
        raise InvalidConfig(f"value {text!r} may not contain ','", value=text)
    return text


def _lease_time(lease: Lease | None) -> str:
    if lease is None:
        return ""
    return ",infinite" if lease.expiry == 0 else f",{lease.seconds}"


def _range_line(ip: Ip, rng: DhcpRange) -> str:
    mask = ip.subnet.netmask if ip.address.version == 4 else ip.prefix_length
    return f"dhcp-range={rng.start},{rng.end},{mask}{_lease_time(rng.lease)}"


def _host_line(host: DhcpHost) -> str:
    parts: list[str] = []
    if host.mac:
        parts.append(_field(host.mac))
    elif host.id:
        parts.append(f"id:{_field(host.id)}")
    parts.append(str(host.ip) if host.ip.version == 4 else f"[{host.ip}]")
    if host.name:
        parts.append(_field(host.name))
    return "dhcp-host=" + ",".join(parts) + _lease_time(host.lease)


def _dns_lines(net: Network) -> list[str]:
    if not net.dns_enabled:
        return ["port=0"]
    lines = []
    dns = net.dns
    forwarders = dns.forwarders if dns else ()
    isolated = net.mode is None
    if isolated or any(fw.addr is not None and fw.domain is None for fw in forwarders):
        lines.append("no-resolv")
    if dns and dns.forward_plain_names is False:
        lines.append("domain-needed")
    if net.domain is not None:
        name = _field(net.domain.name)
        lines.append(f"domain={name}")
        if net.domain.local_only:
            lines.append(f"local=/{name}/")
        lines.append("expand-hosts")
    for fw in forwarders:
        domain = f"/{_field(fw.domain)}/" if fw.domain else ""
        lines.append(f"server={domain}{fw.addr or ''}")
    for host in dns.hosts if dns else ():
        lines.append("host-record=" + ",".join([*map(_field, host.hostnames), str(host.ip)]))
    for txt in dns.txts if dns else ():
        lines.append(f'txt-record={_field(txt.name)},"{_field(txt.value)}"')
    for srv in dns.srvs if dns else ():
        name = f"_{_field(srv.service)}._{_field(srv.protocol)}"
        if srv.domain:
            name += f".{_field(srv.domain)}"
        rest = [_field(srv.target)] if srv.target else []
        for num in (srv.port, srv.priority, srv.weight):
            if num is None:
                break
            rest.append(str(num))
        lines.append("srv-host=" + ",".join([name, *rest]))
    return lines


def _dhcp_lines(net: Network, files: DnsmasqFiles) -> list[str]:
    lines: list[str] = []
    hosts: list[DhcpHost] = []
    size = 0
    for ip in net.ips:
        if ip.dhcp is None:
            continue
        for rng in ip.dhcp.ranges:
            lines.append(_range_line(ip, rng))
            size += int(rng.end) - int(rng.start) + 1
        if not ip.dhcp.ranges and ip.dhcp.hosts:  # static hosts only: dnsmasq needs a range
            lines.append(f"dhcp-range={ip.subnet.network_address},static")
        hosts += ip.dhcp.hosts
    if not lines:
        return []
    if net.mode is None:
        lines.append("dhcp-option=3")  # no forward: no default route for the guests
    if net.mtu:
        lines.append(f"dhcp-option=option:mtu,{net.mtu}")
    lines += [
        "dhcp-no-override",
        "dhcp-authoritative",
        f"dhcp-lease-max={min(size + len(hosts), 1 << 24) or 1}",
        f"dhcp-leasefile={_v(files.leases)}",
        *(_host_line(h) for h in hosts),
        "no-ping",
    ]
    if any(ip.address.version == 6 for ip in net.ips):
        lines.append("enable-ra")
    return lines


def render_dnsmasq_conf(net: Network, files: DnsmasqFiles) -> str:
    """The whole dnsmasq configuration of a network."""
    if not net.bridge_name:
        raise InvalidConfig(f"network '{net.name}' has no bridge name", xpath="/network/bridge")
    check_ifname(net.bridge_name)
    lines = [
        f"# dnsmasq configuration of vmkit network '{_v(net.name)}'; rewritten at every start",
        "strict-order",
        f"pid-file={_v(files.pid)}",
        "except-interface=lo",
        "bind-interfaces",
        f"interface={net.bridge_name}",
        "no-hosts",
        *_dns_lines(net),
        *_dhcp_lines(net, files),
    ]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------
# leases


def parse_leases(text: str) -> list[DhcpLease]:
    """dnsmasq's lease file: `EXPIRY MAC IP NAME CLIENTID` (IPv4), `EXPIRY IAID IP NAME DUID`
    (IPv6, after a `duid SERVER-DUID` line); `*` means unknown. Malformed lines are skipped."""
    leases = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 5 or fields[0] == "duid" or not fields[0].isdigit():
            continue
        try:
            ip = ip_address(fields[2])
        except ValueError:
            continue
        name = None if fields[3] == "*" else fields[3]
        client = None if fields[4] == "*" else fields[4]
        if isinstance(ip, IPv6Address):
            leases.append(DhcpLease(int(fields[0]), None, ip, name, client, iaid=fields[1]))
        else:
            leases.append(DhcpLease(int(fields[0]), fields[1].lower(), ip, name, client))
    return leases


def read_leases(path: Path) -> list[DhcpLease]:
    try:
        return parse_leases(path.read_text())
    except FileNotFoundError:
        return []


def leases_for_mac(leases: list[DhcpLease], mac: str) -> list[IPv4Address]:
    wanted = mac.lower()
    return [
        lease.ip for lease in leases if lease.mac == wanted and isinstance(lease.ip, IPv4Address)
    ]


# ---------------------------------------------------------------------------------------------
# process


def _start_time(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] == "Z":  # a zombie is dead; PID 1 reaps it late
        return None
    return int(fields[19])


def _is_ours(proc: DnsmasqProcess, conf: Path) -> bool:
    if _start_time(proc.pid) != proc.start_time:
        return False
    try:
        argv = Path(f"/proc/{proc.pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return f"--conf-file={conf}".encode() in argv


def dnsmasq_running(proc: DnsmasqProcess, files: DnsmasqFiles) -> bool:
    return _is_ours(proc, files.conf)


def start_dnsmasq(
    files: DnsmasqFiles, netns: str | None = None, binary: str = "dnsmasq"
) -> DnsmasqProcess:
    """Start dnsmasq on `files.conf`; returns once it has daemonized and written its pid."""
    files.pid.unlink(missing_ok=True)
    proc = exec_in_netns(netns, [binary, f"--conf-file={_v(files.conf)}"])
    if proc.returncode != 0:
        message = proc.stderr.strip() or f"exit code {proc.returncode}"
        raise NetworkError(f"dnsmasq failed to start (exit code {proc.returncode}): {message}")
    deadline = time.monotonic() + 2
    while True:
        try:
            pid = int(files.pid.read_text().strip())
            break
        except (OSError, ValueError):
            if time.monotonic() > deadline:
                raise NetworkError(f"dnsmasq wrote no pid file {files.pid}") from None
            time.sleep(0.01)
    start = _start_time(pid)
    if start is None:
        raise NetworkError(f"dnsmasq (pid {pid}) exited right after starting")
    return DnsmasqProcess(pid, start)


def stop_dnsmasq(proc: DnsmasqProcess, files: DnsmasqFiles, timeout: float = 2) -> None:
    """SIGTERM our dnsmasq (SIGKILL after `timeout`); a process that is gone or not ours is
    left alone."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if not _is_ours(proc, files.conf):
            return
        try:
            os.kill(proc.pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if _start_time(proc.pid) != proc.start_time:
                return
            time.sleep(0.01)
    if _start_time(proc.pid) == proc.start_time:
        raise NetworkError(f"dnsmasq (pid {proc.pid}) did not stop")
