"""Pieces shared by the namespace labs (net/netlab.py, net_cli/netcli_lab.py, vmnetlab.py).

ns_exec(netns, *argv)            a command inside a lab namespace (never the root namespace)
new_netns(name, made)            a lab namespace: created, recorded in `made`, loopback up,
                                 no IPv6 duplicate address detection
delete_netns_quietly(names)      `ip netns del` each that still exists, ignoring failures
start_server(netns, script, ..)  a Python server in a namespace, once it printed "ready"
stop_processes(procs)            kill (by pid) and reap every process a lab started
mask_timers(text)                `ip -d link` output without its ever-changing timers
UDHCPC_SCRIPT, TCP_SERVER        the busybox udhcpc hook and the "<tag> <peer>" TCP server
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

_TIMER_RE = re.compile(r"(\w+_timer)\s+[0-9.]+")

UDHCPC_SCRIPT = """#!/bin/sh
# busybox udhcpc hook: configure what the lease says
case "$1" in
  bound|renew)
    ip addr flush dev "$interface"
    ip addr add "$ip/$mask" dev "$interface"
    if [ -n "$router" ]; then ip route replace default via "$router"; fi
    ;;
esac
exit 0
"""

# A TCP server: answers every connection with "<tag> <peer address>" and closes it.
TCP_SERVER = """
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1])))
s.listen(8)
print("ready", flush=True)
while True:
    c, peer = s.accept()
    c.sendall(f"{sys.argv[2]} {peer[0]}\\n".encode())
    c.close()
"""


class HostAndUpstream:
    """The two namespaces of every lab, named after its `tag`: host (where vmkit's networks go)
    and upstream (the outside world)."""

    tag: str

    @property
    def host(self) -> str:
        return f"{self.tag}-h"

    @property
    def upstream(self) -> str:
        return f"{self.tag}-u"


def ns_exec(
    netns: str | None, *argv: str, check: bool = True, timeout: float = 60, **kw: Any
) -> subprocess.CompletedProcess[str]:
    """Run argv inside lab namespace `netns` (never in the root namespace)."""
    assert netns, "lab commands always run inside a lab namespace"
    return subprocess.run(
        ["ip", "netns", "exec", netns, *argv],
        capture_output=True,
        text=True,
        check=check,
        timeout=timeout,
        **kw,
    )


def _ip_netns_add(name: str) -> None:
    subprocess.run(["ip", "netns", "add", name], check=True, timeout=30)


def new_netns(
    name: str,
    made: list[str],
    *,
    create: Callable[[str], None] = _ip_netns_add,
    all_dad: bool = False,
) -> str:
    """Create namespace `name` (`ip netns add` unless `create` is given), record it in `made`
    (so that the lab deletes it also when what follows fails), bring its loopback up and turn
    off IPv6 duplicate address detection (addresses final at once, snapshots stable): for new
    links only, or with `all_dad` also for the existing ones."""
    create(name)
    made.append(name)
    ns_exec(name, "ip", "link", "set", "lo", "up")
    ns_exec(name, "sysctl", "-qw", "net.ipv6.conf.default.accept_dad=0")
    if all_dad:
        ns_exec(name, "sysctl", "-qw", "net.ipv6.conf.all.accept_dad=0")
    return name


def delete_netns_quietly(names: Iterable[str]) -> None:
    """`ip netns del` every one of `names` that still exists; a failure is not an error."""
    for name in names:
        if Path(f"/run/netns/{name}").exists():
            subprocess.run(["ip", "netns", "del", name], check=False, timeout=30)


def start_server(
    netns: str, script: str, port: int, tag: str, procs: list[subprocess.Popen[str]]
) -> subprocess.Popen[str]:
    """`python -c script port tag` in `netns`, recorded in `procs` (for stop_processes), once it
    printed "ready"."""
    proc = subprocess.Popen(
        ["ip", "netns", "exec", netns, sys.executable, "-c", script, str(port), tag],
        stdout=subprocess.PIPE,
        text=True,
    )
    procs.append(proc)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready", f"server {tag} did not start"
    return proc


def stop_processes(procs: Iterable[subprocess.Popen[str]]) -> None:
    """Kill every process still running (by its pid) and reap it."""
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)
        if proc.stdout:
            proc.stdout.close()


def mask_timers(links: str) -> str:
    """`ip -d link show` output with every `*_timer N` value replaced by X."""
    return _TIMER_RE.sub(r"\1 X", links)
