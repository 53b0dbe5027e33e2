"""Per-object locks across processes and threads: serialise one object, never block another."""

from __future__ import annotations

import os
import signal
import threading
import time
from typing import Any

import pytest

from vmkit.errors import Conflict
from vmkit.state.locks import lock_path, object_lock
from vmkit.state.paths import Paths

HOLDER = """
with object_lock(paths, "domain", sys.argv[4], name="vm1"):
    print("locked", flush=True)
    sys.stdin.readline()
print("released", flush=True)
"""


def test_one_object_serialises_and_others_do_not_wait(paths: Paths, procs: Any) -> None:
    holder = procs.start(HOLDER, "uuid-1")
    procs.expect(holder, "locked")
    started = time.monotonic()
    with (
        pytest.raises(Conflict) as err,
        object_lock(paths, "domain", "uuid-1", name="vm1", timeout=0.2),
    ):
        pass
    assert time.monotonic() - started >= 0.2
    assert str(err.value).startswith("domain 'vm1' is busy: another vmkit command holds its lock")
    assert (err.value.kind, err.value.name) == ("domain", "vm1")
    started = time.monotonic()
    with object_lock(paths, "domain", "uuid-2", timeout=0):
        pass  # another domain: no wait at all
    with object_lock(paths, "network", "uuid-1", timeout=0):
        pass  # same key, another kind
    assert time.monotonic() - started < 0.2
    procs.say(holder, "go")
    with object_lock(paths, "domain", "uuid-1", timeout=10):
        procs.expect(holder, "released")


COUNTER = """
counter = paths.run_dir / "counter"
print("ready", flush=True)
sys.stdin.readline()
for _ in range(int(sys.argv[4])):
    with object_lock(paths, "domain", "shared", timeout=60):
        value = int(counter.read_text()) if counter.exists() else 0
        time.sleep(0.001)  # widen the window a lost update would need
        counter.write_text(str(value + 1))
print("done", flush=True)
"""


@pytest.mark.timeout(120)
def test_read_modify_write_under_the_lock_loses_nothing(paths: Paths, procs: Any) -> None:
    paths.ensure()
    workers = [procs.start(COUNTER, "40") for _ in range(4)]
    for proc in workers:
        procs.expect(proc, "ready")
    for proc in workers:
        procs.say(proc, "go")
    for proc in workers:
        out, err = proc.communicate(timeout=100)
        assert (proc.returncode, out.strip()) == (0, "done"), err
    assert (paths.run_dir / "counter").read_text() == "160"


def test_the_kernel_drops_the_lock_of_a_process_killed_by_sigkill(paths: Paths, procs: Any) -> None:
    holder = procs.start(HOLDER, "uuid-1")
    procs.expect(holder, "locked")
    with pytest.raises(Conflict), object_lock(paths, "domain", "uuid-1", timeout=0):
        pass
    os.kill(holder.pid, signal.SIGKILL)
    holder.communicate()
    with object_lock(paths, "domain", "uuid-1", timeout=0):
        pass


def test_reentrant_in_one_thread_exclusive_between_threads(paths: Paths) -> None:
    seen: list[str] = []

    def other_thread() -> None:
        try:
            with object_lock(paths, "domain", "uuid-1", name="vm1", timeout=0):
                seen.append("got it")
        except Conflict as e:
            seen.append(str(e))

    with object_lock(paths, "domain", "uuid-1"):
        with object_lock(paths, "domain", "uuid-1", timeout=0):  # the engine calling itself
            pass
        thread = threading.Thread(target=other_thread)
        thread.start()
        thread.join()
    assert seen[0].startswith("domain 'vm1' is busy")
    thread = threading.Thread(target=other_thread)
    thread.start()
    thread.join()
    assert seen[1] == "got it"


def test_lock_file_names_are_safe_for_any_name(paths: Paths) -> None:
    assert lock_path(paths, "domain", "vm-1.a_b") == paths.locks_dir / "domain-vm-1.a_b.lock"
    odd = lock_path(paths, "domain", "../../etc/passwd x")
    assert odd.parent == paths.locks_dir
    assert odd.name == "domain-..%2F..%2Fetc%2Fpasswd%20x.lock"
    assert lock_path(paths, "domain", "a/b") != lock_path(paths, "domain", "a%2Fb")
    long = lock_path(paths, "domain", "x" * 300)
    assert long.parent == paths.locks_dir and len(long.name) < 100
    with object_lock(paths, "domain", "é/ü"):
        assert lock_path(paths, "domain", "é/ü").exists()
