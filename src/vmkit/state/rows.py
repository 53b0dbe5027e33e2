"""How records are stored: the column lists of the store's SELECTs and row <-> record conversion.

Pure functions over tuples and the uuid canonical form; the SQL that runs lives in store.py.
"""

from __future__ import annotations

from pathlib import Path

from vmkit.errors import InvalidConfig
from vmkit.state.records import Definition, DomainRuntime

TYPE_CHECKING = False  # typing and json cost start-up time: imported only where needed
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any

DEF_COLS = (
    "d.kind, d.uuid, d.name, d.xml, d.persistent, d.autostart, d.created, d.updated, d.parent"
)
RT_COLS = (
    "r.uuid, r.domain_id, r.state, r.reason, r.pid, r.pid_start, r.qmp_socket, r.console_socket,"
    " r.run_dir, r.started, r.live_xml, r.extras, r.updated"
)
EVENT_COLS = "seq, time, kind, uuid, name, event, detail"


PUT_RUNTIME = """
INSERT INTO domain_runtime (uuid, domain_id, state, reason, pid, pid_start, qmp_socket,
    console_socket, run_dir, started, live_xml, extras, updated)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (uuid) DO UPDATE SET domain_id = excluded.domain_id, state = excluded.state,
    reason = excluded.reason, pid = excluded.pid, pid_start = excluded.pid_start,
    qmp_socket = excluded.qmp_socket, console_socket = excluded.console_socket,
    run_dir = excluded.run_dir, started = excluded.started, live_xml = excluded.live_xml,
    extras = excluded.extras, updated = excluded.updated
"""


def runtime_params(rt: DomainRuntime, uuid: str, now: float) -> tuple[Any, ...]:
    import json

    paths = (rt.qmp_socket, rt.console_socket, rt.run_dir)
    return (
        uuid,
        rt.domain_id,
        rt.state,
        rt.reason,
        rt.pid,
        rt.pid_start,
        *(None if p is None else str(p) for p in paths),
        rt.started,
        rt.live_xml,
        json.dumps(rt.extras, sort_keys=True),
        now,
    )


def definition_from_row(row: Sequence[Any]) -> Definition:
    kind, uuid, name, xml, persistent, autostart, created, updated, parent = row
    return Definition(
        kind, uuid, name, xml, bool(persistent), bool(autostart), created, updated, parent
    )


def runtime_from_row(row: Sequence[Any]) -> DomainRuntime:
    uuid, domain_id, state, reason, pid, pid_start, qmp, console, run_dir, *rest = row
    started, live_xml, extras, updated = rest
    return DomainRuntime(
        uuid=uuid,
        domain_id=domain_id,
        state=state,
        reason=reason,
        pid=pid,
        pid_start=pid_start,
        qmp_socket=None if qmp is None else Path(qmp),
        console_socket=None if console is None else Path(console),
        run_dir=None if run_dir is None else Path(run_dir),
        started=started,
        live_xml=live_xml,
        extras=_json_loads(extras) if extras != "{}" else {},
        updated=updated,
    )


def _json_loads(text: str) -> Any:
    import json

    return json.loads(text)


_HEX = frozenset("0123456789abcdef")


def as_uuid(text: str) -> str | None:
    """`text` as a canonical lower-case uuid (libvirt also accepts it without dashes), or None."""
    digits = text.replace("-", "").lower()
    if len(digits) != 32 or not _HEX.issuperset(digits):
        return None
    d = digits
    return f"{d[:8]}-{d[8:12]}-{d[12:16]}-{d[16:20]}-{d[20:]}"


def canonical_uuid(text: str) -> str:
    uuid = as_uuid(text)
    if uuid is None:
        raise InvalidConfig(f"malformed uuid '{text}'", value=text)
    return uuid
