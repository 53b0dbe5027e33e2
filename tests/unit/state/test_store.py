"""The store's API in one process: definitions, lookups, conflicts, runtime records, events."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from vmkit.errors import Conflict, InvalidConfig, NotFound, VmkitError, WrongState
from vmkit.state.paths import Paths
from vmkit.state.records import DomainRuntime
from vmkit.state.store import Store

U1 = "aa8b98ba-4f83-4340-b32d-ba0d04126ce9"
U2 = "03719e0f-e97e-4215-9e30-a2c7ae15882f"
U3 = "e11ada97-e3ae-4776-9759-cb0ce766bdb8"


def xml(name: str, uuid: str = U1) -> str:
    return f"<domain type='kvm'><name>{name}</name><uuid>{uuid}</uuid></domain>"


def running(store: Store, uuid: str, **changes: object) -> DomainRuntime:
    """Give a defined domain a runtime record with a fresh id."""
    rt = DomainRuntime(uuid=uuid, domain_id=store.next_domain_id(), state="running")
    return store.put_runtime(rt.replace(**changes))


# -- opening ------------------------------------------------------------------------------------


def test_open_creates_a_wal_database_with_foreign_keys(paths: Paths) -> None:
    with Store.open(paths) as store:
        assert store.path == paths.db_file
        assert paths.db_file.exists()
    db = sqlite3.connect(paths.db_file)
    try:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        db.close()
    with Store.open(paths) as store:
        assert store._db.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        assert store._db.execute("PRAGMA busy_timeout").fetchone()[0] > 0


def test_open_of_an_unusable_file_is_a_clear_error(paths: Paths) -> None:
    paths.data_dir.mkdir(parents=True)
    paths.db_file.write_bytes(b"this is not a database" * 100)
    with pytest.raises(VmkitError, match=r"cannot open state store .*vmkit\.db"):
        Store.open(paths)


# -- definitions --------------------------------------------------------------------------------


def test_define_then_get_by_name_and_uuid(store: Store) -> None:
    made = store.define("domain", U1, "vm1", xml("vm1"))
    assert (made.kind, made.uuid, made.name, made.xml) == ("domain", U1, "vm1", xml("vm1"))
    assert made.persistent and not made.autostart
    assert made.created == made.updated > 0
    assert store.get("domain", "vm1") == made
    assert store.get("domain", U1) == made
    assert store.get("domain", U1.upper()) == made
    assert store.get("domain", U1.replace("-", "")) == made


def test_define_again_with_same_name_and_uuid_updates_the_xml(store: Store) -> None:
    first = store.define("domain", U1, "vm1", xml("vm1"))
    second = store.define(
        "domain", U1, "vm1", "<domain><name>vm1</name><memory>2</memory></domain>"
    )
    assert second.xml.endswith("<memory>2</memory></domain>")
    assert second.created == first.created
    assert second.updated >= first.updated
    assert [d.name for d in store.list("domain")] == ["vm1"]


def test_name_taken_by_another_uuid_is_a_conflict_in_libvirt_words(store: Store) -> None:
    store.define("domain", U1, "vm1", xml("vm1"))
    with pytest.raises(Conflict) as err:
        store.define("domain", U2, "vm1", xml("vm1", U2))
    assert str(err.value) == f"domain 'vm1' already exists with uuid {U1}"
    assert (err.value.kind, err.value.name, err.value.exit_code) == ("domain", "vm1", 4)
    assert store.get("domain", "vm1").uuid == U1


def test_uuid_taken_under_another_name_is_a_conflict(store: Store) -> None:
    store.define("domain", U1, "vm1", xml("vm1"))
    with pytest.raises(Conflict, match=f"^domain 'vm1' is already defined with uuid {U1}$"):
        store.define("domain", U1, "vm2", xml("vm2"))
    assert store.find("domain", "vm2") is None


def test_names_are_unique_per_kind_not_across_kinds(store: Store) -> None:
    store.define("domain", U1, "default", "<domain/>")
    store.define("network", U2, "default", "<network/>")
    assert store.get("network", "default").uuid == U2
    assert store.get("domain", "default").uuid == U1
    with pytest.raises(NotFound):
        store.get("network", U1)


def test_names_are_unique_per_parent(store: Store) -> None:
    store.define("snapshot", U1, "before", "<domainsnapshot/>", parent=U3)
    store.define("snapshot", U2, "before", "<domainsnapshot/>", parent="another")
    assert store.get("snapshot", "before", parent=U3).uuid == U1
    assert store.get("snapshot", "before", parent=U3).parent == U3
    assert [d.uuid for d in store.list("snapshot", parent="another")] == [U2]
    assert len(store.list("snapshot")) == 2
    with pytest.raises(Conflict):
        store.define("snapshot", U3, "before", "<domainsnapshot/>", parent=U3)


def test_missing_object_is_not_found_like_virsh(store: Store) -> None:
    with pytest.raises(NotFound) as err:
        store.get("domain", "nosuchdomain")
    assert str(err.value).startswith("failed to get domain 'nosuchdomain'")
    assert (err.value.kind, err.value.name, err.value.exit_code) == ("domain", "nosuchdomain", 3)
    assert store.find("domain", "nosuchdomain") is None
    with pytest.raises(NotFound, match="failed to get network 'x'"):
        store.undefine("network", "x")


def test_bad_input_is_refused(store: Store) -> None:
    with pytest.raises(InvalidConfig, match="malformed uuid 'nope'"):
        store.define("domain", "nope", "vm1", "<domain/>")
    with pytest.raises(InvalidConfig, match="name must not be empty"):
        store.define("domain", U1, "", "<domain/>")
    with pytest.raises(ValueError, match="unknown object kind"):
        store.define("domian", U1, "vm1", "<domain/>")
    assert store.list("domain") == []


def test_list_is_sorted_by_name(store: Store) -> None:
    for uuid, name in ((U1, "b"), (U2, "a"), (U3, "c")):
        store.define("domain", uuid, name, xml(name, uuid))
    assert [d.name for d in store.list("domain")] == ["a", "b", "c"]
    assert store.list("network") == []


def test_undefine_without_runtime_removes_it(store: Store) -> None:
    store.define("domain", U1, "vm1", xml("vm1"))
    assert store.undefine("domain", "vm1") is True
    assert store.find("domain", U1) is None
    store.define("domain", U2, "vm1", xml("vm1", U2))  # the name is free again


def test_autostart(store: Store) -> None:
    store.define("domain", U1, "vm1", xml("vm1"))
    assert store.set_autostart("domain", "vm1", True).autostart
    assert store.get("domain", U1).autostart
    assert not store.set_autostart("domain", U1, False).autostart


def test_rename(store: Store) -> None:
    store.define("domain", U1, "vm1", xml("vm1"))
    store.define("domain", U2, "vm2", xml("vm2", U2))
    renamed = store.rename("domain", "vm1", "vm3", xml=xml("vm3"))
    assert (renamed.uuid, renamed.name, renamed.xml) == (U1, "vm3", xml("vm3"))
    assert store.find("domain", "vm1") is None
    with pytest.raises(Conflict, match=f"domain 'vm2' already exists with uuid {U2}"):
        store.rename("domain", "vm3", "vm2")
    assert store.get("domain", U1).name == "vm3"


# -- lookups by id, transient objects, runtime records ------------------------------------------


def test_lookup_by_id_then_uuid_then_name(store: Store) -> None:
    store.define("domain", U1, "vm1", xml("vm1"))
    store.define("domain", U2, "1", xml("1", U2))  # a domain whose name looks like an id
    assert store.get("domain", "1").uuid == U2  # no domain has id 1 yet: the name matches
    rt = running(store, U1)
    assert rt.domain_id == 1
    assert store.get("domain", "1").uuid == U1  # ids come first, as in virsh
    entry = store.lookup_domain("1")
    assert (entry.name, entry.domain_id, entry.runtime) == ("vm1", 1, rt)
    assert store.lookup_domain("vm1") == entry
    assert store.lookup_domain(U1) == entry
    with pytest.raises(NotFound, match="failed to get domain '7'"):
        store.lookup_domain("7")
    with pytest.raises(NotFound):
        store.get("network", "1")  # ids are for domains only


def test_domain_ids_increase_and_are_never_reused(paths: Paths) -> None:
    with Store.open(paths) as store:
        store.define("domain", U1, "vm1", xml("vm1"))
        ids = [store.next_domain_id() for _ in range(3)]
        running(store, U1)
        store.clear_runtime("domain", U1)
    with Store.open(paths) as store:
        assert store.next_domain_id() == 5
    assert ids == [1, 2, 3]


def test_runtime_put_get_update_clear(store: Store, tmp_path: Path) -> None:
    store.define("domain", U1, "vm1", xml("vm1"))
    assert store.get_runtime(U1) is None
    rt = DomainRuntime(
        uuid=U1,
        domain_id=store.next_domain_id(),
        state="running",
        reason="booted",
        pid=4242,
        pid_start=123456,
        qmp_socket=tmp_path / "qmp.sock",
        console_socket=tmp_path / "console.sock",
        run_dir=tmp_path,
        started=1700000000.5,
        live_xml=xml("vm1"),
        extras={"taps": ["vk-tap1"], "accel": "tcg"},
    )
    stored = store.put_runtime(rt)
    assert stored == rt.replace(updated=stored.updated)
    assert store.get_runtime(U1) == stored
    store.set_state(U1, "paused", "user")
    paused = store.get_runtime(U1)
    assert paused is not None
    assert (paused.state, paused.reason, paused.pid) == ("paused", "user", 4242)
    emptied = store.put_runtime(paused.replace(extras={}))
    assert emptied == paused.replace(extras={}, updated=emptied.updated)
    assert store.clear_runtime("domain", U1) is False  # persistent: the definition stays
    assert store.get_runtime(U1) is None
    assert store.get("domain", "vm1").persistent


def test_runtime_needs_a_definition_and_a_free_id(store: Store) -> None:
    with pytest.raises(NotFound):
        store.put_runtime(DomainRuntime(uuid=U1, domain_id=1, state="running"))
    store.define("domain", U1, "vm1", xml("vm1"))
    store.define("domain", U2, "vm2", xml("vm2", U2))
    running(store, U1)
    with pytest.raises(Conflict, match="domain id 1 is already used"):
        store.put_runtime(DomainRuntime(uuid=U2, domain_id=1, state="running"))
    with pytest.raises(NotFound):
        store.set_state(U2, "paused")


def test_transient_domain_lives_as_long_as_its_runtime(store: Store) -> None:
    made = store.define("domain", U1, "tmp", xml("tmp"), persistent=False)
    assert not made.persistent
    running(store, U1, live_xml=xml("tmp"))
    assert [(e.name, e.definition.persistent) for e in store.domains()] == [("tmp", False)]
    with pytest.raises(WrongState, match="cannot set autostart for transient domain 'tmp'"):
        store.set_autostart("domain", "tmp", True)
    with pytest.raises(WrongState, match="cannot undefine transient domain 'tmp'"):
        store.undefine("domain", "tmp")
    assert store.clear_runtime("domain", U1) is True  # stopping it removes it
    assert store.find("domain", "tmp") is None


def test_undefine_of_a_running_domain_makes_it_transient(store: Store) -> None:
    store.define("domain", U1, "vm1", "<domain>persistent</domain>")
    store.set_autostart("domain", "vm1", True)
    running(store, U1, live_xml="<domain>live</domain>")
    assert store.undefine("domain", "vm1") is False
    now = store.get("domain", "vm1")
    assert (now.persistent, now.autostart, now.xml) == (False, False, "<domain>live</domain>")
    # defining it again makes it persistent again, with the new definition
    again = store.define("domain", U1, "vm1", "<domain>next boot</domain>")
    assert (again.persistent, again.xml) == (True, "<domain>next boot</domain>")
    assert store.clear_runtime("domain", U1) is False
    assert store.get("domain", "vm1").persistent


def test_create_never_replaces_a_persistent_definition(store: Store) -> None:
    store.define("domain", U1, "vm1", "<domain>persistent</domain>")
    same = store.define("domain", U1, "vm1", "<domain>live</domain>", persistent=False)
    assert (same.persistent, same.xml) == (True, "<domain>persistent</domain>")


def test_domains_lists_definitions_with_their_runtime(store: Store) -> None:
    for uuid, name in ((U1, "b"), (U2, "a"), (U3, "c")):
        store.define("domain", uuid, name, xml(name, uuid))
    rt = running(store, U1, pid=10)
    store.define("network", "00000000-0000-0000-0000-000000000001", "a", "<network/>")
    entries = store.domains()
    assert [(e.name, e.domain_id) for e in entries] == [("a", None), ("b", 1), ("c", None)]
    assert entries[1].runtime == rt


def test_listing_200_domains_is_one_query(store: Store) -> None:
    with store.transaction():
        for i in range(200):
            uuid = f"{i:08x}-0000-4000-8000-000000000000"
            store.define("domain", uuid, f"vm{i:03d}", xml(f"vm{i:03d}", uuid))
            if i % 2:
                running(store, uuid)
    statements: list[str] = []
    store._db.set_trace_callback(statements.append)
    entries = store.domains()
    store._db.set_trace_callback(None)
    assert len(entries) == 200
    assert sum(e.runtime is not None for e in entries) == 100
    assert len(statements) == 1


def test_object_runtime_for_other_kinds(store: Store) -> None:
    net = "00000000-0000-0000-0000-0000000000aa"
    with pytest.raises(NotFound):
        store.put_object_runtime("network", net, {"dnsmasq_pid": 1})
    store.define("network", net, "default", "<network/>", persistent=False)
    stored = store.put_object_runtime("network", net, {"dnsmasq_pid": 77, "nft": ["vmkit-nat"]})
    assert stored.payload == {"dnsmasq_pid": 77, "nft": ["vmkit-nat"]}
    assert store.get_object_runtime("network", net) == stored
    with pytest.raises(WrongState, match="cannot undefine transient network 'default'"):
        store.undefine("network", "default")
    assert store.clear_runtime("network", net) is True  # transient network goes with its runtime
    assert store.get_object_runtime("network", net) is None
    assert store.find("network", net) is None
    with pytest.raises(ValueError, match="put_runtime"):
        store.put_object_runtime("domain", U1, {})


# -- transactions -------------------------------------------------------------------------------


def test_transaction_is_all_or_nothing(store: Store) -> None:
    with pytest.raises(Conflict), store.transaction():
        store.define("domain", U1, "vm1", xml("vm1"))
        store.log_event("domain", U1, "vm1", "defined")
        store.define("domain", U2, "vm1", xml("vm1", U2))  # conflicts: everything is undone
    assert store.list("domain") == []
    assert store.events() == []


def test_nested_transaction_rolls_back_only_its_part(store: Store) -> None:
    with store.transaction():
        store.define("domain", U1, "vm1", xml("vm1"))
        with pytest.raises(Conflict):
            store.define("domain", U2, "vm1", xml("vm1", U2))
        try:
            with store.transaction():
                store.define("domain", U3, "vm3", xml("vm3", U3))
                raise RuntimeError("inner")
        except RuntimeError:
            pass
    assert [d.name for d in store.list("domain")] == ["vm1"]


# -- events -------------------------------------------------------------------------------------


def test_events_are_logged_and_read_with_a_cursor(store: Store) -> None:
    first = store.log_event("domain", U1, "vm1", "defined", "added")
    second = store.log_event("domain", U1, "vm1", "started", "booted")
    store.log_event("network", U2, "default", "started")
    assert second > first
    everything = store.events()
    assert [e.event for e in everything] == ["defined", "started", "started"]
    assert (everything[0].kind, everything[0].uuid, everything[0].detail) == ("domain", U1, "added")
    assert [e.seq for e in store.events(after=first)] == [second, second + 1]
    assert [e.name for e in store.events(kind="network")] == ["default"]
    assert [e.event for e in store.events(uuid=U1, limit=1)] == ["defined"]
    assert store.events(since=everything[-1].time + 10) == []


def test_events_are_pruned_to_a_bound(paths: Paths) -> None:
    with Store.open(paths, max_events=5) as store:
        seqs = [store.log_event("domain", U1, "vm1", f"e{i}") for i in range(12)]
        kept = store.events()
    assert [e.seq for e in kept] == seqs[-5:]
    assert [e.event for e in kept] == [f"e{i}" for i in range(7, 12)]


def test_events_filtered_by_event_and_the_last_ones(store: Store) -> None:
    for reason in ("shutdown", "destroyed", "crashed"):
        store.log_event("domain", U1, "vm1", "started", "booted")
        store.log_event("domain", U1, "vm1", "stopped", reason)
    store.log_event("domain", U2, "vm2", "stopped", "other domain")
    last = store.events(uuid=U1, event="stopped", last=1)
    assert [e.detail for e in last] == ["crashed"]
    two = store.events(uuid=U1, event="stopped", last=2)
    assert [e.detail for e in two] == ["destroyed", "crashed"]
    assert [e.detail for e in store.events(event="stopped", limit=1)] == ["shutdown"]


def test_make_persistent_keeps_a_transient_domain_after_it_stops(store: Store) -> None:
    store.define("domain", U1, "tmp", xml("tmp"), persistent=False)
    running(store, U1)
    assert store.make_persistent("domain", "tmp").persistent
    assert store.clear_runtime("domain", U1) is False
    assert store.get("domain", "tmp").xml == xml("tmp")


def test_undefine_while_starting_keeps_the_definition_text(store: Store) -> None:
    store.define("domain", U1, "vm1", "<domain>persistent</domain>")
    running(store, U1, state="starting")  # no live XML recorded yet
    assert store.undefine("domain", "vm1") is False
    assert store.get("domain", "vm1").xml == "<domain>persistent</domain>"


def test_huge_numbers_are_names_not_ids(store: Store) -> None:
    assert store.find("domain", "9" * 40) is None
