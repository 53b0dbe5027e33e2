"""Named network namespaces (/run/netns/NAME, as `ip netns` keeps them) and running code in one.

`create_netns` / `delete_netns` / `list_netns` go through pyroute2.netns. `run_in_netns` runs a
Python callable in a forked child that has joined the namespace (what reads and writes
/proc/sys/net there); `netns_argv` prefixes a command with `ip netns exec NAME` so that a
subprocess (nft, dnsmasq) runs inside it. pyroute2 is imported only by the functions that use
it (it takes 0.15-0.4 s to import). Must not: decide what to create, keep state.
"""

from __future__ import annotations

import ctypes
import os
import pickle
import re
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from vmkit.errors import Conflict, InvalidConfig, NetworkError, NotFound

_T = TypeVar("_T")
NETNS_DIR = Path("/run/netns")
_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_CLONE_NEWNET = 0x40000000


def check_netns_name(name: str) -> None:
    """1-64 of [A-Za-z0-9_.-], not '.' or '..' (it becomes a file name under /run/netns)."""
    if not _NAME_RE.match(name) or name in (".", ".."):
        raise InvalidConfig(
            f"invalid namespace name '{name}': use 1-64 of [A-Za-z0-9_.-]", value=name
        )


def netns_exists(name: str) -> bool:
    check_netns_name(name)
    return (NETNS_DIR / name).exists()


def list_netns() -> list[str]:
    from pyroute2 import netns as pyroute2_netns

    return sorted(str(n) for n in pyroute2_netns.listnetns())


def create_netns(name: str) -> None:
    if netns_exists(name):
        raise Conflict("netns", name, f"namespace '{name}' already exists")
    from pyroute2 import netns as pyroute2_netns

    try:
        pyroute2_netns.create(name)
    except OSError as e:
        raise NetworkError(f"cannot create namespace '{name}': {e.strerror or e}") from e


def delete_netns(name: str) -> None:
    """Remove the namespace; its links go with it (processes inside keep it alive)."""
    if not netns_exists(name):
        raise NotFound("netns", name, f"namespace not found: no namespace named '{name}'")
    from pyroute2 import netns as pyroute2_netns

    try:
        pyroute2_netns.remove(name)
    except OSError as e:
        raise NetworkError(f"cannot delete namespace '{name}': {e.strerror or e}") from e


def netns_argv(netns: str | None, argv: Sequence[str]) -> list[str]:
    """`argv`, run inside `netns` when one is given."""
    if netns is None:
        return list(argv)
    check_netns_name(netns)
    return ["ip", "netns", "exec", netns, *argv]


def exec_in_netns(
    netns: str | None,
    argv: Sequence[str],
    *,
    input: str | None = None,
    timeout: float = 30,
) -> subprocess.CompletedProcess[str]:
    """Run a command (in `netns`) to completion and return its result; never raises on rc."""
    full = netns_argv(netns, argv)
    try:
        return subprocess.run(  # noqa: S603 - argv list, validated names
            full, input=input, capture_output=True, text=True, timeout=timeout, check=False
        )
    except FileNotFoundError as e:
        raise NetworkError(f"cannot run {full[0]}: not installed") from e
    except subprocess.TimeoutExpired as e:
        raise NetworkError(f"{' '.join(full)} did not finish within {timeout} s") from e


def _setns(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.setns(fd, _CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err))
    finally:
        os.close(fd)


def run_in_netns(netns: str | None, fn: Callable[[], _T]) -> _T:
    """Call `fn` inside `netns` (in a forked child) and return its result or raise its error."""
    if netns is None:
        return fn()
    if not netns_exists(netns):
        raise NotFound("netns", netns, f"namespace not found: no namespace named '{netns}'")
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: join, call, send the outcome back, leave without cleanup handlers
        os.close(read_fd)
        outcome: tuple[bool, object]
        try:
            _setns(NETNS_DIR / netns)
            outcome = (True, fn())
        except BaseException as e:
            outcome = (False, e)
        try:
            data = pickle.dumps(outcome)
        except Exception as e:
            data = pickle.dumps((False, NetworkError(f"unpicklable result: {e!r}")))
        with os.fdopen(write_fd, "wb") as out:
            out.write(data)
        os._exit(0)
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as inp:
        data = inp.read()
    os.waitpid(pid, 0)
    if not data:
        raise NetworkError(f"child in namespace '{netns}' died without an answer")
    ok, value = pickle.loads(data)
    if ok:
        return value  # type: ignore[no-any-return]
    raise value
