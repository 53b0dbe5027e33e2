"""The typed records the store takes and gives: definitions, runtime records, events.

Small frozen records (state/frozen.py: like frozen dataclasses, without importing
`dataclasses`, which costs the CLI ~10 ms at start-up), no I/O and no other vmkit imports.
States and reasons are strings here: the engine owns their enums and converts at its boundary,
so the store never changes when a state is added. Times are seconds since the epoch (`time.time()`).
"""

from __future__ import annotations

from pathlib import Path

from vmkit.state.frozen import Frozen

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


class Definition(Frozen):
    """An object's definition: its XML, and whether it outlives its runtime record.

    A transient object (`persistent` false) exists only while it has a runtime record: the store
    removes its definition when the runtime record is cleared.
    """

    _fields: tuple[str, ...] = ("kind", "uuid", "name", "xml", "persistent", "autostart")
    _fields += ("created", "updated", "parent")
    __slots__ = _fields
    kind: str
    uuid: str
    name: str
    xml: str
    persistent: bool
    autostart: bool
    created: float
    updated: float
    parent: str  # the owner's uuid: a volume's pool, a snapshot's domain; '' at top level

    def __init__(
        self,
        kind: str,
        uuid: str,
        name: str,
        xml: str,
        persistent: bool = True,
        autostart: bool = False,
        created: float = 0.0,
        updated: float = 0.0,
        parent: str = "",
    ) -> None:
        self._init(kind, uuid, name, xml, persistent, autostart, created, updated, parent)


class DomainRuntime(Frozen):
    """What the store knows about a domain that has (or had until the next reconcile) a QEMU.

    `pid_start` is the process start time as /proc/PID/stat field 22 gives it (clock ticks after
    boot), so that a reused pid is never taken for our QEMU. `live_xml` is the definition the
    domain was started with; `extras` is free JSON (taps, ...), owned by the engine.
    """

    _fields: tuple[str, ...] = ("uuid", "domain_id", "state", "reason", "pid", "pid_start")
    _fields += ("qmp_socket",)
    _fields += ("console_socket", "run_dir", "started", "live_xml", "extras", "updated")
    __slots__ = _fields
    uuid: str
    domain_id: int
    state: str
    reason: str
    pid: int | None
    pid_start: int | None
    qmp_socket: Path | None
    console_socket: Path | None
    run_dir: Path | None
    started: float
    live_xml: str
    extras: JsonDict
    updated: float

    def __init__(
        self,
        uuid: str,
        domain_id: int,
        state: str,
        reason: str = "",
        pid: int | None = None,
        pid_start: int | None = None,
        qmp_socket: Path | None = None,
        console_socket: Path | None = None,
        run_dir: Path | None = None,
        started: float = 0.0,
        live_xml: str = "",
        extras: JsonDict | None = None,
        updated: float = 0.0,
    ) -> None:
        self._init(
            uuid,
            domain_id,
            state,
            reason,
            pid,
            pid_start,
            qmp_socket,
            console_socket,
            run_dir,
            started,
            live_xml,
            {} if extras is None else extras,
            updated,
        )


class ObjectRuntime(Frozen):
    """The runtime record of a non-domain object (a network's dnsmasq pid, its nft table, ...)."""

    _fields = ("kind", "uuid", "payload", "updated")
    __slots__ = _fields
    kind: str
    uuid: str
    payload: JsonDict
    updated: float

    def __init__(
        self, kind: str, uuid: str, payload: JsonDict | None = None, updated: float = 0.0
    ) -> None:
        self._init(kind, uuid, {} if payload is None else payload, updated)


class DomainEntry(Frozen):
    """A domain's definition and, when it has one, its runtime record (what `list` shows)."""

    _fields = ("definition", "runtime")
    __slots__ = _fields
    definition: Definition
    runtime: DomainRuntime | None

    def __init__(self, definition: Definition, runtime: DomainRuntime | None) -> None:
        self._init(definition, runtime)

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


class Event(Frozen):
    """One line of the event log; `seq` increases with every event and is never reused."""

    _fields = ("seq", "time", "kind", "uuid", "name", "event", "detail")
    __slots__ = _fields
    seq: int
    time: float
    kind: str
    uuid: str
    name: str
    event: str
    detail: str

    def __init__(
        self,
        seq: int,
        time: float,
        kind: str,
        uuid: str,
        name: str,
        event: str,
        detail: str = "",
    ) -> None:
        self._init(seq, time, kind, uuid, name, event, detail)
