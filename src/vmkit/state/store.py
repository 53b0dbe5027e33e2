"""The state store: definitions, runtime records and the event log, in one SQLite file.

vmkit has no daemon: every command opens the store, takes its object locks (locks.py), reads and
writes here, and exits. This module owns the SQL; the engine owns the meaning of states, the XML
and the processes. It must not import lxml, QEMU or anything slow: `vmkit list` opens it.
The tables (one `definitions` table for every kind, typed runtime rows for domains, JSON ones for
other kinds, a bounded event log) and why they are so: schema.py.

- File: `Paths.db_file`, WAL mode (readers never wait for a writer), `busy_timeout` so writers
  queue instead of failing, foreign keys on, `synchronous = FULL` (a commit survives a power
  loss; ~0.4 ms per commit here, and reads pay nothing).
- Every write runs in a `BEGIN IMMEDIATE` transaction: the write lock is taken before the first
  read, so a check-then-write (is this name free?) cannot be raced by another process and a
  transaction never fails half-way with "database is locked". This is also the store-level lock
  for name and uuid uniqueness: no separate lock file is needed for `define`.
- `transaction()` groups several calls into one atomic change; nested calls become savepoints. A
  process killed inside one leaves the database as it was before it (SQLite's WAL guarantees).
  Keep transactions short: never launch a process or wait for a guest inside one.
- Lookups follow virsh: for domains an all-digit key is tried as an id first, then a uuid, then a
  name. Missing objects raise `NotFound`, name or uuid clashes `Conflict`, with libvirt's words.
- Transient objects: a definition with `persistent = False` exists only while it has a runtime
  record. `undefine` of an object with a runtime record makes it transient (as libvirt does);
  `clear_runtime` of a transient object removes its definition too, in the same transaction.
"""

from __future__ import annotations

import sqlite3
import time
from contextlib import contextmanager

from vmkit.errors import Conflict, InvalidConfig, NotFound, VmkitError, WrongState
from vmkit.state.paths import Paths
from vmkit.state.records import (
    DOMAIN,
    KINDS,
    Definition,
    DomainEntry,
    DomainRuntime,
    Event,
    JsonDict,
    ObjectRuntime,
)
from vmkit.state.rows import (
    DEF_COLS,
    EVENT_COLS,
    PUT_RUNTIME,
    RT_COLS,
    as_uuid,
    canonical_uuid,
    definition_from_row,
    runtime_from_row,
    runtime_params,
)
from vmkit.state.schema import MIGRATIONS, enable_wal, migrate

TYPE_CHECKING = False  # typing, json: imported only where needed (start-up cost of `vmkit list`)
if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence
    from pathlib import Path
    from types import TracebackType
    from typing import Any

    from vmkit.state.schema import Step

MAX_EVENTS = 10_000
"""The event log keeps this many most recent events."""

BUSY_TIMEOUT = 30.0
"""Seconds a writer waits for another process's write transaction before giving up."""

Definitions = list[Definition]
DomainEntries = list[DomainEntry]
Events = list[Event]


class Store:
    """An open state store. Use `Store.open(paths)`; close it (or use `with`) when done."""

    def __init__(self, db: sqlite3.Connection, path: Path, *, max_events: int = MAX_EVENTS) -> None:
        self._db = db
        self.path = path
        self.max_events = max_events
        self._depth = 0

    @classmethod
    def open(
        cls,
        paths: Paths,
        *,
        timeout: float = BUSY_TIMEOUT,
        max_events: int = MAX_EVENTS,
        migrations: Sequence[Step] = MIGRATIONS,
    ) -> Store:
        """Open (creating and migrating as needed) the store at `paths.db_file`."""
        path = paths.db_file
        try:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            db = sqlite3.connect(path, timeout=timeout, isolation_level=None)
        except (OSError, sqlite3.Error) as e:
            raise VmkitError(f"cannot open state store {path}: {e}") from e
        try:
            enable_wal(db, where=str(path), timeout=timeout)
            db.execute("PRAGMA foreign_keys = ON")
            db.execute("PRAGMA synchronous = FULL")
            migrate(db, migrations, where=str(path))
        except sqlite3.Error as e:
            db.close()
            raise VmkitError(f"cannot open state store {path}: {e}") from e
        except BaseException:
            db.close()
            raise
        return cls(db, path, max_events=max_events)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- transactions -------------------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[Store]:
        """One atomic change: BEGIN IMMEDIATE at the outside, a savepoint when nested."""
        depth = self._depth
        self._sql("BEGIN IMMEDIATE" if depth == 0 else f"SAVEPOINT s{depth}")
        self._depth += 1
        try:
            yield self
        except BaseException:
            self._depth = depth
            self._undo(depth)
            raise
        self._depth = depth
        try:
            self._sql("COMMIT" if depth == 0 else f"RELEASE s{depth}")
        except BaseException:
            self._undo(depth)
            raise

    def _undo(self, depth: int) -> None:
        if not self._db.in_transaction:
            return
        if depth == 0:
            self._db.execute("ROLLBACK")
        else:
            self._db.execute(f"ROLLBACK TO s{depth}")
            self._db.execute(f"RELEASE s{depth}")

    def _sql(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> sqlite3.Cursor:
        """Run one statement; SQLite's errors become VmkitError naming the store."""
        try:
            return self._db.execute(sql, params)
        except sqlite3.Error as e:
            raise VmkitError(f"state store {self.path}: {e}") from e

    # -- definitions --------------------------------------------------------------------------

    def define(
        self,
        kind: str,
        uuid: str,
        name: str,
        xml: str,
        *,
        persistent: bool = True,
        parent: str = "",
    ) -> Definition:
        """Add an object, or update the definition of the one with this uuid and name.

        A name used by another uuid, or this uuid used under another name, is a `Conflict`.
        `persistent=False` (libvirt's create) never replaces a persistent definition: the XML a
        domain runs with belongs in its runtime record.
        """
        _check_kind(kind)
        uuid = canonical_uuid(uuid)
        if not name:
            raise InvalidConfig(f"{kind} name must not be empty", value=name)
        with self.transaction():
            old = self._one_definition("d.kind = ? AND d.uuid = ?", (kind, uuid))
            if old is not None and (old.name != name or old.parent != parent):
                raise Conflict(
                    kind, old.name, f"{kind} '{old.name}' is already defined with uuid {uuid}"
                )
            self._check_name_free(kind, parent, name, uuid)
            now = time.time()
            if old is None:
                self._sql(
                    "INSERT INTO definitions (kind, uuid, parent, name, xml, persistent, autostart,"
                    " created, updated) VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?)",
                    (kind, uuid, parent, name, xml, int(persistent), now, now),
                )
            elif persistent or not old.persistent:
                self._sql(
                    "UPDATE definitions SET xml = ?, persistent = ?, updated = ?"
                    " WHERE kind = ? AND uuid = ?",
                    (xml, int(persistent or old.persistent), now, kind, uuid),
                )
            return self._definition_by_uuid(kind, uuid)

    def find(self, kind: str, key: str, *, parent: str = "") -> Definition | None:
        """The object whose id (domains), uuid or name is `key`, else None."""
        _check_kind(kind)
        uuid = self._resolve(kind, key, parent)
        return None if uuid is None else self._definition_by_uuid(kind, uuid)

    def get(self, kind: str, key: str, *, parent: str = "") -> Definition:
        """Like `find`, but a missing object raises `NotFound`."""
        found = self.find(kind, key, parent=parent)
        if found is None:
            raise _not_found(kind, key)
        return found

    def list(self, kind: str, *, parent: str | None = None) -> Definitions:
        """Every object of `kind` (under `parent` when given), by name, in one query."""
        _check_kind(kind)
        where, params = "d.kind = ?", [kind]
        if parent is not None:
            where, params = where + " AND d.parent = ?", [*params, parent]
        rows = self._sql(
            f"SELECT {DEF_COLS} FROM definitions d WHERE {where} ORDER BY d.name", params
        )
        return [definition_from_row(row) for row in rows]

    def undefine(self, kind: str, key: str, *, parent: str = "") -> bool:
        """Remove an object's definition; True if it is gone.

        An object with a runtime record stays, transient (False is returned): as in libvirt, a
        running domain loses its persistent definition and disappears when it stops. Undefining
        an object that is already transient is `WrongState`.
        """
        with self.transaction():
            found = self.get(kind, key, parent=parent)
            if not self._has_runtime(kind, found.uuid):
                self._sql("DELETE FROM definitions WHERE kind = ? AND uuid = ?", (kind, found.uuid))
                return True
            if not found.persistent:
                raise WrongState(
                    f"cannot undefine transient {kind} '{found.name}'",
                    state="transient",
                    required="persistent",
                )
            live = "(SELECT NULLIF(live_xml, '') FROM domain_runtime WHERE uuid = ?)"
            self._sql(
                "UPDATE definitions SET persistent = 0, autostart = 0,"
                f" xml = COALESCE({live}, xml), updated = ? WHERE kind = ? AND uuid = ?",
                (found.uuid, time.time(), kind, found.uuid),
            )
            return False

    def make_persistent(self, kind: str, key: str, *, parent: str = "") -> Definition:
        """Keep a transient object's current definition after its runtime record is cleared."""
        with self.transaction():
            found = self.get(kind, key, parent=parent)
            if not found.persistent:
                self._sql(
                    "UPDATE definitions SET persistent = 1, updated = ?"
                    " WHERE kind = ? AND uuid = ?",
                    (time.time(), kind, found.uuid),
                )
            return self._definition_by_uuid(kind, found.uuid)

    def set_autostart(
        self, kind: str, key: str, autostart: bool, *, parent: str = ""
    ) -> Definition:
        """Mark an object to be started by `vmkit start-autostart`; transient ones cannot be."""
        with self.transaction():
            found = self.get(kind, key, parent=parent)
            if autostart and not found.persistent:
                raise WrongState(
                    f"cannot set autostart for transient {kind} '{found.name}'",
                    state="transient",
                    required="persistent",
                )
            self._sql(
                "UPDATE definitions SET autostart = ?, updated = ? WHERE kind = ? AND uuid = ?",
                (int(autostart), time.time(), kind, found.uuid),
            )
            return self._definition_by_uuid(kind, found.uuid)

    def rename(
        self, kind: str, key: str, new_name: str, *, xml: str | None = None, parent: str = ""
    ) -> Definition:
        """Give an object a new name (and the XML that says so); a taken name is `Conflict`."""
        if not new_name:
            raise InvalidConfig(f"{kind} name must not be empty", value=new_name)
        with self.transaction():
            found = self.get(kind, key, parent=parent)
            self._check_name_free(kind, found.parent, new_name, found.uuid)
            self._sql(
                "UPDATE definitions SET name = ?, xml = ?, updated = ? WHERE kind = ? AND uuid = ?",
                (new_name, found.xml if xml is None else xml, time.time(), kind, found.uuid),
            )
            return self._definition_by_uuid(kind, found.uuid)

    # -- domains ------------------------------------------------------------------------------

    def lookup_domain(self, key: str) -> DomainEntry:
        """The domain whose id, uuid or name is `key`, with its runtime record; or `NotFound`."""
        uuid = self._resolve(DOMAIN, key, "")
        entries = [] if uuid is None else self._domain_entries("d.uuid = ?", [uuid])
        if not entries:
            raise _not_found(DOMAIN, key)
        return entries[0]

    def domains(self) -> DomainEntries:
        """Every domain with its runtime record, by name: one query, whatever their number."""
        return self._domain_entries("1", [])

    def next_domain_id(self) -> int:
        """A new domain id: 1, 2, 3, ... never reused within this store."""
        with self.transaction():
            row = self._sql(
                "UPDATE meta SET value = value + 1 WHERE key = 'last_domain_id' RETURNING value"
            ).fetchone()
            return int(row[0])

    def put_runtime(self, runtime: DomainRuntime) -> DomainRuntime:
        """Insert or replace the runtime record of a defined domain; returns it as stored."""
        uuid = canonical_uuid(runtime.uuid)
        with self.transaction():
            if not self._exists(DOMAIN, uuid):
                raise _not_found(DOMAIN, uuid)
            other = self._sql(
                "SELECT uuid FROM domain_runtime WHERE domain_id = ? AND uuid <> ?",
                (runtime.domain_id, uuid),
            ).fetchone()
            if other is not None:
                raise Conflict(
                    DOMAIN, uuid, f"domain id {runtime.domain_id} is already used by {other[0]}"
                )
            self._sql(PUT_RUNTIME, runtime_params(runtime, uuid, time.time()))
            stored = self.get_runtime(uuid)
            assert stored is not None
            return stored

    def get_runtime(self, uuid: str) -> DomainRuntime | None:
        row = self._sql(
            f"SELECT {RT_COLS} FROM domain_runtime r WHERE r.uuid = ?", (canonical_uuid(uuid),)
        ).fetchone()
        return None if row is None else runtime_from_row(row)

    def set_state(self, uuid: str, state: str, reason: str = "") -> None:
        """Change only the state and reason of a runtime record (one cheap UPDATE)."""
        cur = self._sql(
            "UPDATE domain_runtime SET state = ?, reason = ?, updated = ? WHERE uuid = ?",
            (state, reason, time.time(), canonical_uuid(uuid)),
        )
        if cur.rowcount == 0:
            raise NotFound(DOMAIN, uuid, f"domain {uuid} has no runtime record")

    def clear_runtime(self, kind: str, uuid: str) -> bool:
        """Drop the runtime record of an object; a transient object goes too (True then)."""
        _check_kind(kind)
        uuid = canonical_uuid(uuid)
        table = "domain_runtime" if kind == DOMAIN else "object_runtime"
        with self.transaction():
            self._sql(f"DELETE FROM {table} WHERE kind = ? AND uuid = ?", (kind, uuid))
            cur = self._sql(
                "DELETE FROM definitions WHERE kind = ? AND uuid = ? AND persistent = 0",
                (kind, uuid),
            )
            return cur.rowcount > 0

    # -- other kinds' runtime -----------------------------------------------------------------

    def put_object_runtime(self, kind: str, uuid: str, payload: JsonDict) -> ObjectRuntime:
        """Insert or replace the runtime record of a defined non-domain object."""
        _check_kind(kind)
        if kind == DOMAIN:
            raise ValueError("domains have typed runtime records: use put_runtime")
        import json

        uuid = canonical_uuid(uuid)
        with self.transaction():
            if not self._exists(kind, uuid):
                raise _not_found(kind, uuid)
            self._sql(
                "INSERT OR REPLACE INTO object_runtime (kind, uuid, payload, updated)"
                " VALUES (?, ?, ?, ?)",
                (kind, uuid, json.dumps(payload, sort_keys=True), time.time()),
            )
            stored = self.get_object_runtime(kind, uuid)
            assert stored is not None
            return stored

    def get_object_runtime(self, kind: str, uuid: str) -> ObjectRuntime | None:
        row = self._sql(
            "SELECT kind, uuid, payload, updated FROM object_runtime WHERE kind = ? AND uuid = ?",
            (kind, canonical_uuid(uuid)),
        ).fetchone()
        if row is None:
            return None
        import json

        return ObjectRuntime(row[0], row[1], json.loads(row[2]), row[3])

    # -- events -------------------------------------------------------------------------------

    def log_event(self, kind: str, uuid: str, name: str, event: str, detail: str = "") -> int:
        """Append an event, dropping the oldest beyond `max_events`; returns its `seq`."""
        with self.transaction():
            cur = self._sql(
                "INSERT INTO events (time, kind, uuid, name, event, detail)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (time.time(), kind, uuid, name, event, detail),
            )
            seq = cur.lastrowid
            assert seq is not None
            self._sql("DELETE FROM events WHERE seq <= ?", (seq - self.max_events,))
            return seq

    def events(
        self,
        *,
        after: int = 0,
        since: float | None = None,
        kind: str | None = None,
        uuid: str | None = None,
        event: str | None = None,
        limit: int | None = None,
        last: int | None = None,
    ) -> Events:
        """Matching events, oldest first: `seq > after` (a reader's cursor), `time >= since`.

        `limit` keeps the first ones (paging forward), `last` the most recent ones.
        """
        where: list[str] = ["seq > ?"]
        params: list[Any] = [after]
        filters = (("time >=", since), ("kind =", kind), ("uuid =", uuid), ("event =", event))
        for column, value in filters:
            if value is not None:
                where.append(f"{column} ?")
                params.append(value)
        sql = f"SELECT {EVENT_COLS} FROM events WHERE {' AND '.join(where)}"
        if last is not None:
            sql = f"SELECT * FROM ({sql} ORDER BY seq DESC LIMIT {int(last):d})"
        sql += " ORDER BY seq"
        if limit is not None:
            sql += f" LIMIT {int(limit):d}"
        return [Event(*row) for row in self._sql(sql, params)]

    # -- helpers ------------------------------------------------------------------------------

    def _resolve(self, kind: str, key: str, parent: str) -> str | None:
        """The uuid of the object `key` names: id (domains), then uuid, then name (as virsh)."""
        if kind == DOMAIN and key.isascii() and key.isdigit() and len(key) < 19:
            row = self._sql("SELECT uuid FROM domain_runtime WHERE domain_id = ?", (int(key),))
            if (found := row.fetchone()) is not None:
                return str(found[0])
        uuid = as_uuid(key)
        if uuid is not None:
            row = self._sql(
                "SELECT uuid FROM definitions WHERE kind = ? AND uuid = ?", (kind, uuid)
            ).fetchone()
            if row is not None:
                return str(row[0])
        row = self._sql(
            "SELECT uuid FROM definitions WHERE kind = ? AND parent = ? AND name = ?",
            (kind, parent, key),
        ).fetchone()
        return None if row is None else str(row[0])

    def _one_definition(self, where: str, params: Sequence[Any]) -> Definition | None:
        row = self._sql(f"SELECT {DEF_COLS} FROM definitions d WHERE {where}", params).fetchone()
        return None if row is None else definition_from_row(row)

    def _definition_by_uuid(self, kind: str, uuid: str) -> Definition:
        found = self._one_definition("d.kind = ? AND d.uuid = ?", (kind, uuid))
        if found is None:
            raise _not_found(kind, uuid)
        return found

    def _exists(self, kind: str, uuid: str) -> bool:
        sql = "SELECT 1 FROM definitions WHERE kind = ? AND uuid = ?"
        return self._sql(sql, (kind, uuid)).fetchone() is not None

    def _check_name_free(self, kind: str, parent: str, name: str, uuid: str) -> None:
        row = self._sql(
            "SELECT uuid FROM definitions WHERE kind = ? AND parent = ? AND name = ?",
            (kind, parent, name),
        ).fetchone()
        if row is not None and row[0] != uuid:
            raise Conflict(kind, name, f"{kind} '{name}' already exists with uuid {row[0]}")

    def _has_runtime(self, kind: str, uuid: str) -> bool:
        table = "domain_runtime" if kind == DOMAIN else "object_runtime"
        sql = f"SELECT 1 FROM {table} WHERE kind = ? AND uuid = ?"
        return self._sql(sql, (kind, uuid)).fetchone() is not None

    def _domain_entries(self, where: str, params: Sequence[Any]) -> DomainEntries:
        rows = self._sql(
            f"SELECT {DEF_COLS}, {RT_COLS} FROM definitions d"
            " LEFT JOIN domain_runtime r ON r.uuid = d.uuid"
            f" WHERE d.kind = 'domain' AND {where} ORDER BY d.name",
            params,
        )
        return [
            DomainEntry(
                definition_from_row(row[:9]), None if row[9] is None else runtime_from_row(row[9:])
            )
            for row in rows
        ]


def _not_found(kind: str, key: str) -> NotFound:
    what = "name, uuid or id" if kind == DOMAIN else "name or uuid"
    return NotFound(kind, key, f"failed to get {kind} '{key}': no {kind} with matching {what}")


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"unknown object kind {kind!r}")
