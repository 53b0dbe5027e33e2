"""The store shared by processes: SIGKILL inside a transaction, and many writers at once."""

from __future__ import annotations

import os
import signal
from typing import Any

import pytest

from vmkit.errors import Conflict
from vmkit.state.paths import Paths
from vmkit.state.store import Store

U1 = "aa8b98ba-4f83-4340-b32d-ba0d04126ce9"


def test_sigkill_inside_a_transaction_leaves_the_old_state(paths: Paths, procs: Any) -> None:
    with Store.open(paths) as store:
        store.define("domain", U1, "vm1", "<domain>old</domain>")
        store.log_event("domain", U1, "vm1", "defined")
    child = procs.start(
        """
store = Store.open(paths)
with store.transaction():
    store.define("domain", sys.argv[4], "vm1", "<domain>new</domain>")
    store.undefine("domain", "vm1")
    for i in range(50):
        uuid = f"{i:08x}-0000-4000-8000-000000000000"
        store.define("domain", uuid, f"half{i}", "<domain/>")
        store.put_runtime(DomainRuntime(uuid, store.next_domain_id(), "running"))
        store.log_event("domain", uuid, f"half{i}", "defined")
    print("inside", flush=True)
    time.sleep(60)
""",
        U1,
    )
    procs.expect(child, "inside")
    os.kill(child.pid, signal.SIGKILL)
    child.communicate()
    assert child.returncode == -signal.SIGKILL
    with Store.open(paths, timeout=2) as store:
        assert [(d.name, d.xml) for d in store.list("domain")] == [("vm1", "<domain>old</domain>")]
        assert [e.event for e in store.events()] == ["defined"]
        assert store.next_domain_id() == 1  # the dead transaction's ids were never taken
        store.define("domain", U1, "vm1", "<domain>newer</domain>")  # and nothing is locked


def test_sigkill_after_commit_keeps_the_commit(paths: Paths, procs: Any) -> None:
    child = procs.start(
        """
store = Store.open(paths)
store.define("domain", sys.argv[4], "vm1", "<domain/>")
print("committed", flush=True)
time.sleep(60)
""",
        U1,
    )
    procs.expect(child, "committed")
    os.kill(child.pid, signal.SIGKILL)
    child.communicate()
    with Store.open(paths) as store:
        assert store.get("domain", U1).name == "vm1"


WORKER = """
import random
index, rounds = int(sys.argv[4]), int(sys.argv[5])
store = Store.open(paths)
print("ready", flush=True)
sys.stdin.readline()
for r in range(rounds):
    uuid = f"{index:08x}-{r:04x}-4000-8000-000000000000"
    name = f"w{index}-{r % 3}"
    with object_lock(paths, "domain", uuid, name=name):
        store.define("domain", uuid, name, "<domain/>")
        if random.random() < 0.5:
            store.put_runtime(DomainRuntime(uuid, store.next_domain_id(), "running"))
            store.clear_runtime("domain", uuid)
        store.log_event("domain", uuid, name, "defined")
        assert store.get("domain", name).uuid == uuid
        store.domains()
        assert store.undefine("domain", uuid)
print("done", flush=True)
"""


@pytest.mark.timeout(120)
def test_eight_processes_define_and_undefine_concurrently(paths: Paths, procs: Any) -> None:
    Store.open(paths).close()
    workers = [procs.start(WORKER, str(index), "60") for index in range(8)]
    _run_together(procs, workers)
    with Store.open(paths) as store:
        assert store.list("domain") == []
        assert len(store.events()) == 8 * 60
        ids = store.next_domain_id()
    assert ids > 8 * 10  # about half the rounds took an id; none failed


def _run_together(procs: Any, workers: list) -> None:  # type: ignore[type-arg]
    for proc in workers:
        procs.expect(proc, "ready")
    for proc in workers:
        procs.say(proc, "go")
    for proc in workers:
        out, err = proc.communicate(timeout=100)
        assert proc.returncode == 0, err
        assert "locked" not in err
        assert out.strip() == "done"


RACER = """
store = Store.open(paths)
uuid = f"{int(sys.argv[4]):08x}-0000-4000-8000-000000000000"
print("ready", flush=True)
sys.stdin.readline()
try:
    store.define("domain", uuid, "contested", "<domain/>")
    print("won", flush=True)
except Exception as e:
    print(type(e).__name__, e, flush=True)
"""


def test_eight_processes_racing_for_one_name_exactly_one_wins(paths: Paths, procs: Any) -> None:
    Store.open(paths).close()
    racers = [procs.start(RACER, str(i + 1)) for i in range(8)]
    for proc in racers:
        procs.expect(proc, "ready")
    for proc in racers:
        procs.say(proc, "go")
    outcomes = []
    for proc in racers:
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        outcomes.append(out.strip())
    assert outcomes.count("won") == 1, outcomes
    losers = [o for o in outcomes if o != "won"]
    assert all(
        o.startswith(Conflict.__name__ + " domain 'contested' already exists") for o in losers
    )


OPENER = """
print("ready", flush=True)
sys.stdin.readline()
with Store.open(paths) as store:
    uuid = f"{int(sys.argv[4]):08x}-0000-4000-8000-000000000000"
    store.define("domain", uuid, f"first{sys.argv[4]}", "<domain/>")
print("done", flush=True)
"""


def test_eight_first_commands_create_the_store_together(paths: Paths, procs: Any) -> None:
    openers = [procs.start(OPENER, str(i)) for i in range(8)]
    _run_together(procs, openers)
    with Store.open(paths) as store:
        assert len(store.list("domain")) == 8
