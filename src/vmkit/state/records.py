"""The typed records the store takes and gives: definitions, runtime records, events.

Plain frozen dataclasses, no I/O and no vmkit imports. States and reasons are strings here: the
engine owns their enums and converts at its boundary, so the store never changes when a state is
added. Times are seconds since the epoch (`time.time()`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

TYPE_CHECKING = False  # typing costs `vmkit list` ~3 ms at start-up: only for the type checker
if TYPE_CHECKING:
    from typing import Any

    JsonDict = dict[str, Any]
else:
    JsonDict = dict

DOMAIN = "domain"
NETWORK = "network"
POOL = "pool"
VOLUME = "volume"
SNAPSHOT = "snapshot"
SWITCH = "switch"
KINDS = frozenset({DOMAIN, NETWORK, POOL, VOLUME, SNAPSHOT, SWITCH})


@dataclass(frozen=True, slots=True)
class Definition:
    """An object's definition: its XML, and whether it outlives its runtime record.

    A transient object (`persistent` false) exists only while it has a runtime record: the store
    removes its definition when the runtime record is cleared.
    """

    kind: str
    uuid: str
    name: str
    xml: str
    persistent: bool = True
    autostart: bool = False
    created: float = 0.0
    updated: float = 0.0
    parent: str = ""  # the owner's uuid: a volume's pool, a snapshot's domain; '' at top level


@dataclass(frozen=True, slots=True)
class DomainRuntime:
    """What the store knows about a domain that has (or had until the next reconcile) a QEMU.

    `pid_start` is the process start time as /proc/PID/stat field 22 gives it (clock ticks after
    boot), so that a reused pid is never taken for our QEMU. `live_xml` is the definition the
    domain was started with; `extras` is free JSON (taps, ...), owned by the engine.
    """

    uuid: str
    domain_id: int
    state: str
    reason: str = ""
    pid: int | None = None
    pid_start: int | None = None
    qmp_socket: Path | None = None
    console_socket: Path | None = None
    run_dir: Path | None = None
    started: float = 0.0
    live_xml: str = ""
    extras: JsonDict = field(default_factory=dict)
    updated: float = 0.0


@dataclass(frozen=True, slots=True)
class ObjectRuntime:
    """The runtime record of a non-domain object (a network's dnsmasq pid, its nft table, ...)."""

    kind: str
    uuid: str
    payload: JsonDict = field(default_factory=dict)
    updated: float = 0.0


@dataclass(frozen=True, slots=True)
class DomainEntry:
    """A domain's definition and, when it has one, its runtime record (what `list` shows)."""

    definition: Definition
    runtime: DomainRuntime | None

    @property
    def name(self) -> str:
        return self.definition.name

    @property
    def uuid(self) -> str:
        return self.definition.uuid

    @property
    def domain_id(self) -> int | None:
        """The id of a domain with a runtime record, else None (virsh prints '-')."""
        return self.runtime.domain_id if self.runtime else None


@dataclass(frozen=True, slots=True)
class Event:
    """One line of the event log; `seq` increases with every event and is never reused."""

    seq: int
    time: float
    kind: str
    uuid: str
    name: str
    event: str
    detail: str = ""
