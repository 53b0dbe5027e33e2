"""Schema migrations: old databases are brought up to date once, atomically, keeping their data."""

from __future__ import annotations

import sqlite3

import pytest

from vmkit.errors import VmkitError
from vmkit.state.paths import Paths
from vmkit.state.schema import MIGRATIONS, Step, migrate, user_version
from vmkit.state.store import Store

U1 = "aa8b98ba-4f83-4340-b32d-ba0d04126ce9"


def make_db(paths: Paths, steps: tuple[Step, ...]) -> None:
    """A database as an older vmkit, which knew only `steps`, left it."""
    paths.data_dir.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(paths.db_file, isolation_level=None)
    try:
        db.execute("PRAGMA journal_mode = WAL")
        assert migrate(db, steps) == len(steps)
    finally:
        db.close()


def version_of(paths: Paths) -> int:
    db = sqlite3.connect(paths.db_file)
    try:
        return user_version(db)
    finally:
        db.close()


def add_tags(db: sqlite3.Connection) -> None:
    """A future step, as a test stand-in: a new column with a default, and a data change."""
    db.execute("ALTER TABLE definitions ADD COLUMN tags TEXT NOT NULL DEFAULT ''")
    db.execute("UPDATE definitions SET tags = 'migrated'")


def test_a_new_database_gets_the_current_version(paths: Paths) -> None:
    Store.open(paths).close()
    assert version_of(paths) == len(MIGRATIONS) >= 1


@pytest.mark.parametrize("old", range(len(MIGRATIONS)))
def test_every_older_version_migrates_to_the_current_one(paths: Paths, old: int) -> None:
    make_db(paths, MIGRATIONS[:old])
    assert version_of(paths) == old
    with Store.open(paths) as store:
        store.define("domain", U1, "vm1", "<domain/>")
        assert store.next_domain_id() == 1
    assert version_of(paths) == len(MIGRATIONS)


def test_opening_an_old_database_migrates_it_and_keeps_its_data(paths: Paths) -> None:
    with Store.open(paths) as store:  # today's schema, with data
        store.define("domain", U1, "vm1", "<domain/>")
        store.log_event("domain", U1, "vm1", "defined")
    newer = (*MIGRATIONS, add_tags)
    with Store.open(paths, migrations=newer) as store:
        assert store.get("domain", "vm1").xml == "<domain/>"
        assert [e.event for e in store.events()] == ["defined"]
        tags = store._db.execute("SELECT tags FROM definitions").fetchall()
    assert tags == [("migrated",)]
    assert version_of(paths) == len(newer)


def test_a_current_database_runs_no_step(paths: Paths) -> None:
    def boom(db: sqlite3.Connection) -> None:
        raise AssertionError("a step ran on a current database")

    make_db(paths, (*MIGRATIONS, add_tags))
    Store.open(paths, migrations=(*MIGRATIONS[:-1], boom, boom)).close()


def test_a_failing_step_leaves_the_previous_version(paths: Paths) -> None:
    def half_done(db: sqlite3.Connection) -> None:
        db.execute("CREATE TABLE half (x)")
        raise RuntimeError("step failed")

    with Store.open(paths) as store:
        store.define("domain", U1, "vm1", "<domain/>")
    with pytest.raises(RuntimeError, match="step failed"):
        Store.open(paths, migrations=(*MIGRATIONS, half_done))
    assert version_of(paths) == len(MIGRATIONS)
    with Store.open(paths) as store:
        assert store.get("domain", "vm1").name == "vm1"
        found = store._db.execute("SELECT name FROM sqlite_master WHERE name = 'half'").fetchall()
    assert found == []


def test_a_database_from_a_newer_vmkit_is_refused(paths: Paths) -> None:
    make_db(paths, (*MIGRATIONS, add_tags))
    with pytest.raises(VmkitError, match=r"schema version \d+, newer than this vmkit knows"):
        Store.open(paths)
