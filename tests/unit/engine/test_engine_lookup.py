"""`lookup` reconciles under the domain lock: a start in progress is never taken for dead."""

from __future__ import annotations

import os
import threading

from vmkit.engine import domains, states
from vmkit.engine.context import Context
from vmkit.qemu.process import read_stat
from vmkit.state.locks import object_lock
from vmkit.state.paths import Paths
from vmkit.state.records import DOMAIN, DomainRuntime
from vmkit.state.store import Store

UUID = "3f0e3c52-2f6e-4d7b-9a4e-0c1d2e3f4a5b"


def running_record(paths: Paths) -> DomainRuntime:
    """A record of a finished start whose 'QEMU' is this test process (alive)."""
    me = read_stat(os.getpid())
    assert me is not None
    return DomainRuntime(
        uuid=UUID,
        domain_id=1,
        state=states.DomainState.RUNNING,
        reason=states.BOOTED,
        pid=me.pid,
        pid_start=me.start_time,
        run_dir=paths.domain_run_dir(1),
    )


def lookup_during_start(ctx: Context) -> DomainRuntime | None:
    """Another thread holds the lock (a start), finishes it and lets go; we look up meanwhile."""
    holding = threading.Event()
    release = threading.Event()

    def start() -> None:
        with object_lock(ctx.paths, DOMAIN, UUID):
            holding.set()
            release.wait(10)
            with Store.open(ctx.paths) as store:
                store.put_runtime(running_record(ctx.paths))

    thread = threading.Thread(target=start)
    thread.start()
    holding.wait(10)
    timer = threading.Timer(0.3, release.set)  # the lookup below blocks until then
    timer.start()
    try:
        entry = domains.lookup(ctx, "vm")
    finally:
        release.set()
        thread.join()
        timer.cancel()
    return entry.runtime


def test_lookup_waits_for_a_start_in_progress(ctx: Context) -> None:
    ctx.store.define(DOMAIN, UUID, "vm", "<domain/>")
    starting = DomainRuntime(UUID, 1, states.STARTING, run_dir=ctx.paths.domain_run_dir(1))
    ctx.store.put_runtime(starting)
    rt = lookup_during_start(ctx)
    assert rt is not None and rt.state == states.DomainState.RUNNING


def test_lookup_waits_for_a_create_in_progress(ctx: Context) -> None:
    ctx.store.define(DOMAIN, UUID, "vm", "<domain/>", persistent=False)  # no run yet
    rt = lookup_during_start(ctx)
    assert rt is not None and rt.state == states.DomainState.RUNNING


def test_lookup_repairs_a_dead_start(ctx: Context) -> None:
    """Nobody holds the lock: the `starting` record is of a start that died; it is cleared."""
    ctx.store.define(DOMAIN, UUID, "vm", "<domain/>")
    ctx.store.put_runtime(
        DomainRuntime(UUID, 1, states.STARTING, run_dir=ctx.paths.domain_run_dir(1))
    )
    entry = domains.lookup(ctx, "vm")
    assert entry.runtime is None
    assert domains.state_of(ctx, entry) == (states.DomainState.SHUTOFF, states.FAILED)
