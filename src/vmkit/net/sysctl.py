"""IP forwarding, shared by the networks of one namespace and put back as it was found.

A routed / NAT / open network needs net.ipv4.ip_forward (and IPv6 forwarding for IPv6 subnets)
while it runs. The first network to need a key records the value it found and turns it on; the
last one to stop writes the recorded value back (libvirt leaves forwarding on; vmkit does not).
Who needs what is kept in `<state_dir>/forwarding-<netns|host>.json`, which exists only while some
network needs forwarding, under an flock of `state_dir`. The bookkeeping (`plan_acquire`,
`plan_release`) is pure; `Forwarding` reads/writes /proc/sys inside the namespace.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from vmkit.errors import InvalidConfig, NetworkError
from vmkit.net.netns import check_netns_name, run_in_netns

IPV4_FORWARD = "net/ipv4/ip_forward"
IPV6_FORWARD = "net/ipv6/conf/all/forwarding"
KEYS = (IPV4_FORWARD, IPV6_FORWARD)


@dataclass(frozen=True)
class ForwardingState:
    prior: dict[str, str] = field(default_factory=dict)  # key -> value before the first user
    users: dict[str, tuple[str, ...]] = field(default_factory=dict)  # key -> networks


def plan_acquire(
    state: ForwardingState, user: str, key: str, current: str
) -> tuple[ForwardingState, str | None]:
    """Add `user` to `key`; returns the new state and the value to write (None: leave it)."""
    users = state.users.get(key, ())
    prior = dict(state.prior)
    if not users:
        prior[key] = current
    new_users = users if user in users else (*users, user)
    write = "1" if current != "1" else None
    return ForwardingState(prior, {**state.users, key: new_users}), write


def plan_release(state: ForwardingState, user: str, key: str) -> tuple[ForwardingState, str | None]:
    """Remove `user` from `key`; the last user gets the recorded value back."""
    users = tuple(u for u in state.users.get(key, ()) if u != user)
    all_users = dict(state.users)
    prior = dict(state.prior)
    if users:
        all_users[key] = users
        return ForwardingState(prior, all_users), None
    all_users.pop(key, None)
    before = prior.pop(key, None)
    write = before if before is not None and before != "1" else None
    return ForwardingState(prior, all_users), write


def _check_key(key: str) -> None:
    if key not in KEYS:
        raise InvalidConfig(f"unknown forwarding sysctl '{key}'", value=key)


def read_sysctl(key: str, netns: str | None = None) -> str:
    _check_key(key)
    path = Path("/proc/sys") / key
    try:
        return run_in_netns(netns, lambda: path.read_text().strip())
    except OSError as e:
        raise NetworkError(f"cannot read {path}: {e.strerror or e}") from e


def write_sysctl(key: str, value: str, netns: str | None = None) -> None:
    _check_key(key)
    if value not in ("0", "1"):
        raise InvalidConfig(f"invalid value '{value}' for {key}", value=value)
    path = Path("/proc/sys") / key
    try:
        run_in_netns(netns, lambda: path.write_text(value + "\n"))
    except OSError as e:
        raise NetworkError(f"cannot write {path}: {e.strerror or e}") from e


class Forwarding:
    """The forwarding users of one namespace, recorded under `state_dir`."""

    def __init__(self, state_dir: Path, netns: str | None = None) -> None:
        if netns is not None:
            check_netns_name(netns)
        self.state_dir = state_dir
        self.netns = netns
        self.path = state_dir / f"forwarding-{netns or 'host'}.json"

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.state_dir, os.O_RDONLY | os.O_DIRECTORY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _load(self) -> ForwardingState:
        if not self.path.exists():
            return ForwardingState()
        raw = json.loads(self.path.read_text())
        users = {k: tuple(v) for k, v in raw.get("users", {}).items()}
        return ForwardingState(dict(raw.get("prior", {})), users)

    def _save(self, state: ForwardingState) -> None:
        if not state.users:
            self.path.unlink(missing_ok=True)
            return
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"prior": state.prior, "users": state.users}, indent=1))
        tmp.replace(self.path)

    def acquire(self, user: str, keys: Sequence[str]) -> None:
        with self._locked():
            state = self._load()
            for key in keys:
                state, write = plan_acquire(state, user, key, read_sysctl(key, self.netns))
                if write is not None:
                    write_sysctl(key, write, self.netns)
                self._save(state)

    def release(self, user: str, keys: Sequence[str]) -> None:
        with self._locked():
            state = self._load()
            for key in keys:
                state, write = plan_release(state, user, key)
                if write is not None:
                    write_sysctl(key, write, self.netns)
                self._save(state)

    def users(self) -> dict[str, tuple[str, ...]]:
        with self._locked():
            return dict(self._load().users)
