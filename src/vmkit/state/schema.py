"""The store's SQL schema, as an ordered list of migration steps tracked by `PRAGMA user_version`.

Step N (0-based) turns a schema of version N into version N + 1. Each step runs in its own
`BEGIN IMMEDIATE` transaction together with the `user_version` bump, so a process killed during a
migration leaves the previous version, and two processes opening an old database migrate it once
(the second one re-reads the version inside its transaction and finds nothing to do). Foreign keys
are off while steps run (SQLite ignores that pragma inside a transaction, and table rebuilds need
it off) and `PRAGMA foreign_key_check` must pass before a step commits.

Rules for new steps: append, never edit a released step; keep data (rebuild a table by
create-copy-drop-rename); a test in tests/unit/state/ migrates every older version to the newest.

Layout (version 1), and why:
- `definitions` is one table for every kind of object (domain, network, pool, volume, snapshot,
  ...): they all have the same life (define, lookup by name or uuid, rename, autostart, undefine,
  transient while running), so one table gives one set of queries and one set of conflict rules.
  Names are unique per (kind, parent): `parent` is '' for top-level objects and the uuid of the
  owner for volumes (their pool) and snapshots (their domain), so two domains may each have a
  snapshot called "before-upgrade".
- `domain_runtime` has typed columns: the engine reads pid, sockets and state on every command.
- `object_runtime` is the runtime record of the other kinds, a JSON payload (a network's dnsmasq
  pid, its nft table, ...), until one of them needs typed columns.
- Runtime rows reference their definition (ON DELETE CASCADE): a runtime record never outlives
  its object, so a transient object is a definition with `persistent = 0` plus its runtime row.
- `meta` holds counters; `last_domain_id` makes domain ids increase and never be reused.
- `events` is the bounded event log; `seq` is AUTOINCREMENT so pruned numbers are never reused
  and a reader's cursor stays valid.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Sequence

from vmkit.errors import VmkitError

Step = Callable[[sqlite3.Connection], None]

_V1 = (
    """CREATE TABLE meta (
        key TEXT PRIMARY KEY,
        value INTEGER NOT NULL
    ) WITHOUT ROWID""",
    "INSERT INTO meta (key, value) VALUES ('last_domain_id', 0)",
    """CREATE TABLE definitions (
        kind TEXT NOT NULL,
        uuid TEXT NOT NULL,
        parent TEXT NOT NULL DEFAULT '',
        name TEXT NOT NULL CHECK (name <> ''),
        xml TEXT NOT NULL,
        persistent INTEGER NOT NULL DEFAULT 1 CHECK (persistent IN (0, 1)),
        autostart INTEGER NOT NULL DEFAULT 0 CHECK (autostart IN (0, 1)),
        created REAL NOT NULL,
        updated REAL NOT NULL,
        PRIMARY KEY (kind, uuid),
        UNIQUE (kind, parent, name)
    )""",
    """CREATE TABLE domain_runtime (
        kind TEXT NOT NULL DEFAULT 'domain' CHECK (kind = 'domain'),
        uuid TEXT NOT NULL PRIMARY KEY,
        domain_id INTEGER NOT NULL UNIQUE CHECK (domain_id > 0),
        state TEXT NOT NULL,
        reason TEXT NOT NULL DEFAULT '',
        pid INTEGER,
        pid_start INTEGER,
        qmp_socket TEXT,
        console_socket TEXT,
        run_dir TEXT,
        started REAL NOT NULL,
        live_xml TEXT NOT NULL DEFAULT '',
        extras TEXT NOT NULL DEFAULT '{}',
        updated REAL NOT NULL,
        FOREIGN KEY (kind, uuid) REFERENCES definitions (kind, uuid) ON DELETE CASCADE
    )""",
    """CREATE TABLE object_runtime (
        kind TEXT NOT NULL CHECK (kind <> 'domain'),
        uuid TEXT NOT NULL,
        payload TEXT NOT NULL DEFAULT '{}',
        updated REAL NOT NULL,
        PRIMARY KEY (kind, uuid),
        FOREIGN KEY (kind, uuid) REFERENCES definitions (kind, uuid) ON DELETE CASCADE
    )""",
    """CREATE TABLE events (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        time REAL NOT NULL,
        kind TEXT NOT NULL,
        uuid TEXT NOT NULL,
        name TEXT NOT NULL,
        event TEXT NOT NULL,
        detail TEXT NOT NULL DEFAULT ''
    )""",
    "CREATE INDEX events_by_object ON events (uuid, seq)",
)


def _v1(db: sqlite3.Connection) -> None:
    for statement in _V1:
        db.execute(statement)


MIGRATIONS: tuple[Step, ...] = (_v1,)
"""The steps, oldest first; `len(MIGRATIONS)` is the current schema version."""


def enable_wal(db: sqlite3.Connection, *, where: str, timeout: float) -> None:
    """Put the database in WAL mode (a persistent setting: a no-op read once it is).

    Switching needs the database to itself, and SQLite answers "database is locked" at once,
    without waiting, when several processes open a new database together: retry until
    `timeout`.
    """
    if db.execute("PRAGMA journal_mode").fetchone()[0] == "wal":
        return
    deadline = time.monotonic() + timeout
    while True:
        try:
            mode = db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            break
        except sqlite3.OperationalError as e:
            if e.sqlite_errorcode != sqlite3.SQLITE_BUSY or time.monotonic() > deadline:
                raise
            time.sleep(0.005)
    if mode != "wal":
        raise VmkitError(f"state store {where}: cannot use WAL mode (journal mode is {mode})")


def user_version(db: sqlite3.Connection) -> int:
    row = db.execute("PRAGMA user_version").fetchone()
    return int(row[0])


def migrate(db: sqlite3.Connection, steps: Sequence[Step] = MIGRATIONS, *, where: str = "") -> int:
    """Bring `db` (autocommit mode) to version `len(steps)`; return it. Cheap when current."""
    target = len(steps)
    version = user_version(db)
    if version == target:
        return version
    _refuse_newer(version, target, where)
    db.execute("PRAGMA foreign_keys = OFF")
    try:
        while (version := _apply_next(db, steps, where)) < target:
            pass
    finally:
        db.execute("PRAGMA foreign_keys = ON")
    return version


def _apply_next(db: sqlite3.Connection, steps: Sequence[Step], where: str) -> int:
    """Apply one step in its own transaction; return the version the database has after it."""
    db.execute("BEGIN IMMEDIATE")
    try:
        version = user_version(db)
        _refuse_newer(version, len(steps), where)
        if version < len(steps):
            steps[version](db)
            broken = db.execute("PRAGMA foreign_key_check").fetchall()
            if broken:
                raise VmkitError(f"state store {where}: migration {version + 1} broke {broken}")
            version += 1
            db.execute(f"PRAGMA user_version = {version:d}")
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
    return version


def _refuse_newer(version: int, target: int, where: str) -> None:
    if version > target:
        raise VmkitError(
            f"state store {where} has schema version {version}, newer than this vmkit knows "
            f"({target}): upgrade vmkit"
        )
