"""Storage pools: define (XML or arguments), create (transient), build, start, destroy, delete,
undefine, list, info, refresh, autostart, dumpxml, and the `default` pool.

A pool's definition (libvirt's pool XML) is a POOL definition in the store; an active pool has a
runtime record (`{"state": "running"}`), an inactive one none. A transient pool (pool-create)
exists only while active, as in libvirt. The host side (directories, sizes) is vmkit.storage's.
Messages follow libvirt's words ("storage pool 'x' is not active").

The `default` pool (directory `images` under vmkit's data dir, autostarted) is defined, built and
started by `ensure_default_pool` on the first pool or volume command of a vmkit root; a marker
file remembers that it was made, so a user who undefines it is not given it back.
"""

from __future__ import annotations

import contextlib
import os
import uuid as uuid_mod
from dataclasses import dataclass
from pathlib import Path

from vmkit.engine.context import Context
from vmkit.engine.storage_refs import forget_pool_formats
from vmkit.errors import Conflict, InvalidConfig, NotFound, StorageError, WrongState
from vmkit.model.storage import Pool, PoolSource, PoolState, PoolType, validate_pool
from vmkit.state.records import POOL, Definition
from vmkit.storage import (
    DEFAULT_POOL_NAME,
    PoolRow,
    RefreshResult,
    activate_pool,
    build_pool,
    check_pool_target,
    deactivate_pool,
    default_pool,
    delete_pool,
    pool_stats,
    with_stats,
)
from vmkit.xml.storage import parse_pool, render_pool

DEFAULT_MARKER = "default-pool.made"
_ACTIVE = {"state": "running"}


@dataclass(frozen=True)
class PoolEntry:
    """A pool's stored definition, its parsed model, and whether it is active."""

    definition: Definition
    pool: Pool
    active: bool

    @property
    def name(self) -> str:
        return self.definition.name

    @property
    def uuid(self) -> str:
        return self.definition.uuid


# ---------------------------------------------------------------------------------------------
# lookup


def _entry(ctx: Context, d: Definition) -> PoolEntry:
    pool = parse_pool(d.xml, strict=False)
    pool.uuid = d.uuid
    active = ctx.store.get_object_runtime(POOL, d.uuid) is not None
    return PoolEntry(d, pool, active)


def lookup_pool(ctx: Context, key: str) -> PoolEntry:
    """The pool named by uuid or name; NotFound in virsh's words."""
    found = ctx.store.find(POOL, key)
    if found is None:
        raise NotFound(
            "pool", key, f"failed to get pool '{key}': no storage pool with matching name or uuid"
        )
    return _entry(ctx, found)


def active_pool(ctx: Context, key: str) -> PoolEntry:
    """A pool that must be active (volume operations, refresh)."""
    entry = lookup_pool(ctx, key)
    require_active(entry)
    return entry


def require_active(entry: PoolEntry) -> None:
    if not entry.active:
        raise WrongState(
            f"Requested operation is not valid: storage pool '{entry.name}' is not active",
            state="inactive",
            required="running",
        )


def _require_inactive(entry: PoolEntry, what: str = "already") -> None:
    if entry.active:
        raise WrongState(
            f"Requested operation is not valid: storage pool '{entry.name}' is {what} active",
            state="running",
            required="inactive",
        )


def all_pools(ctx: Context) -> list[PoolEntry]:
    return [_entry(ctx, d) for d in ctx.store.list(POOL)]


def state_of(entry: PoolEntry) -> PoolState:
    """inactive, running, or inaccessible (active, but its directory is gone)."""
    if not entry.active:
        return PoolState.INACTIVE
    if not os.path.isdir(entry.pool.target_path):
        return PoolState.INACCESSIBLE
    return PoolState.RUNNING


# ---------------------------------------------------------------------------------------------
# define, create


def pool_from_args(
    name: str,
    pool_type: str,
    target: str | None,
    *,
    source_dev: str | None = None,
    source_format: str | None = None,
) -> Pool:
    """The pool pool-define-as / pool-create-as describe (validated)."""
    try:
        ptype = PoolType(pool_type)
    except ValueError:
        raise InvalidConfig(
            f"pool type '{pool_type}' is not supported (vmkit supports dir and fs)",
            xpath="/pool/@type",
            value=pool_type,
        ) from None
    if not target:
        raise InvalidConfig(
            f"pool '{name}' needs a target path (--target)", xpath="/pool/target/path"
        )
    source = PoolSource(device_path=source_dev, format_type=source_format)
    return validate_pool(Pool(name=name, target_path=target, type=ptype, source=source))


def parse_pool_xml(data: str | bytes, source: str, *, verb: str = "define") -> Pool:
    """A pool from an XML file; errors say which file, as virsh's "Failed to define pool"."""
    try:
        return parse_pool(data)
    except InvalidConfig as e:
        raise InvalidConfig(f"Failed to {verb} pool from {source}: {e}", value=e.value) from e


def define_pool(ctx: Context, pool: Pool) -> PoolEntry:
    """pool-define / pool-define-as: add or update a persistent definition."""
    validate_pool(pool)
    old = ctx.store.find(POOL, pool.uuid or pool.name)
    if pool.uuid is None:
        pool.uuid = str(uuid_mod.uuid4())
    _check_target(ctx, pool)
    with ctx.lock(POOL, pool.uuid):
        if old is not None and old.uuid == pool.uuid:
            _check_redefine(_entry(ctx, old), pool)
        store = ctx.store
        with store.transaction():
            d = store.define(POOL, pool.uuid, pool.name, render_pool(pool), persistent=True)
            store.log_event(POOL, d.uuid, d.name, "defined")
    _note_default(ctx, pool.name)
    return _entry(ctx, d)


def create_pool(
    ctx: Context, pool: Pool, *, build: bool = False, overwrite: bool | None = None
) -> PoolEntry:
    """pool-create / pool-create-as: a transient pool, started (built first with `build`)."""
    validate_pool(pool)
    existing = ctx.store.find(POOL, pool.name)
    if existing is not None:
        raise Conflict("pool", pool.name, f"operation failed: pool '{pool.name}' already exists")
    if pool.uuid is None:
        pool.uuid = str(uuid_mod.uuid4())
    _check_target(ctx, pool)
    with ctx.lock(POOL, pool.uuid):
        made = _build_if(pool, build, overwrite)
        try:
            _check_startable(pool)
            try:
                store = ctx.store
                with store.transaction():
                    d = store.define(
                        POOL, pool.uuid, pool.name, render_pool(pool), persistent=False
                    )
                    store.put_object_runtime(POOL, d.uuid, dict(_ACTIVE))
                    store.log_event(POOL, d.uuid, d.name, "started", "created")
            except BaseException:
                deactivate_pool(pool)
                raise
        except BaseException:
            if made is not None:
                _remove_empty_dir(made)
            raise
    _note_default(ctx, pool.name)
    return _entry(ctx, d)


def _check_startable(pool: Pool) -> None:
    try:
        activate_pool(pool)
    except NotFound as e:
        path = pool.target_path
        raise NotFound(
            "pool target",
            path,
            f"cannot create pool '{pool.name}': target directory '{path}' does not exist "
            "(--build creates it)",
        ) from e


def _build_if(pool: Pool, build: bool, overwrite: bool | None) -> Path | None:
    """Build the pool when asked; returns the directory if this call created it."""
    if not build:
        return None
    existed = os.path.lexists(pool.target_path)
    path = build_pool(pool, overwrite=overwrite)
    return None if existed else path


def _remove_empty_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.rmdir()


def _check_target(ctx: Context, pool: Pool) -> None:
    """The target must not be a file, nor the target of another pool."""
    path = pool.target_path
    if os.path.lexists(path) and not os.path.isdir(path):
        what = "a file" if os.path.isfile(path) else "not a directory"
        raise InvalidConfig(
            f"pool '{pool.name}' target path '{path}' exists and is {what}; "
            "a dir pool needs a directory",
            xpath="/pool/target/path",
            value=path,
        )
    real = os.path.realpath(path)
    for other in all_pools(ctx):
        if other.uuid == pool.uuid or other.name == pool.name:
            continue
        if os.path.realpath(other.pool.target_path) == real:
            raise Conflict(
                "pool",
                pool.name,
                f"storage source conflict: pool '{other.name}' already uses target path '{path}'",
            )


def _check_redefine(old: PoolEntry, new: Pool) -> None:
    """An active pool keeps its type and directory until it is stopped."""
    changed = old.pool.target_path != new.target_path or old.pool.type != new.type
    if old.active and changed:
        raise WrongState(
            f"Requested operation is not valid: storage pool '{old.name}' is active; "
            "destroy it before changing its type or target path",
            state="running",
            required="inactive",
        )


# ---------------------------------------------------------------------------------------------
# the default pool


def _marker(ctx: Context) -> Path:
    return ctx.paths.data_dir / DEFAULT_MARKER


def _note_default(ctx: Context, name: str) -> None:
    if name == DEFAULT_POOL_NAME:
        _marker(ctx).touch(exist_ok=True)


def ensure_default_pool(ctx: Context) -> PoolEntry | None:
    """Define, build, start and autostart the `default` pool once per vmkit root."""
    if _marker(ctx).exists():
        return None
    with ctx.lock(POOL, DEFAULT_POOL_NAME):
        if _marker(ctx).exists():
            return None
        found = ctx.store.find(POOL, DEFAULT_POOL_NAME)
        if found is not None:
            _note_default(ctx, DEFAULT_POOL_NAME)
            return None
        pool = default_pool(ctx.paths.data_dir)
        pool.uuid = str(uuid_mod.uuid4())
        _check_target(ctx, pool)
        build_pool(pool)
        check_pool_target(pool)
        store = ctx.store
        with store.transaction():
            d = store.define(POOL, pool.uuid, pool.name, render_pool(pool))
            store.set_autostart(POOL, d.uuid, True)
            store.put_object_runtime(POOL, d.uuid, dict(_ACTIVE))
            store.log_event(POOL, d.uuid, d.name, "defined", "default pool")
            store.log_event(POOL, d.uuid, d.name, "started")
        _note_default(ctx, DEFAULT_POOL_NAME)
        return lookup_pool(ctx, d.uuid)


# ---------------------------------------------------------------------------------------------
# lifecycle


def build(ctx: Context, key: str, *, overwrite: bool | None = None) -> PoolEntry:
    """pool-build: make the target directory of an inactive pool (and an fs pool's file
    system, with `overwrite` True or False: storage.pools.build_pool)."""
    uuid = lookup_pool(ctx, key).uuid
    with ctx.lock(POOL, uuid):
        entry = lookup_pool(ctx, uuid)
        _require_inactive(entry)
        build_pool(entry.pool, overwrite=overwrite)
        ctx.store.log_event(POOL, uuid, entry.name, "built")
        return entry


def start(
    ctx: Context, key: str, *, build: bool = False, overwrite: bool | None = None
) -> PoolEntry:
    """pool-start (building first with `build`); an fs pool's file system is mounted."""
    uuid = lookup_pool(ctx, key).uuid
    with ctx.lock(POOL, uuid):
        entry = lookup_pool(ctx, uuid)
        _require_inactive(entry)
        if build:
            build_pool(entry.pool, overwrite=overwrite)
        activate_pool(entry.pool)
        store = ctx.store
        try:
            with store.transaction():
                store.put_object_runtime(POOL, uuid, dict(_ACTIVE))
                store.log_event(POOL, uuid, entry.name, "started")
        except BaseException:
            deactivate_pool(entry.pool)
            raise
        return lookup_pool(ctx, uuid)


def destroy(ctx: Context, key: str) -> PoolEntry:
    """pool-destroy: stop the pool (its files stay; an fs pool is unmounted); a transient pool
    is gone afterwards."""
    uuid = lookup_pool(ctx, key).uuid
    with ctx.lock(POOL, uuid):
        entry = lookup_pool(ctx, uuid)
        require_active(entry)
        deactivate_pool(entry.pool)
        store = ctx.store
        with store.transaction():
            store.log_event(POOL, uuid, entry.name, "stopped", "destroyed")
            gone = store.clear_runtime(POOL, uuid)
            if gone:
                forget_pool_formats(ctx, uuid)
        return entry


def delete(ctx: Context, key: str) -> PoolEntry:
    """pool-delete: remove the (empty) target directory of an inactive pool."""
    uuid = lookup_pool(ctx, key).uuid
    with ctx.lock(POOL, uuid):
        entry = lookup_pool(ctx, uuid)
        _require_inactive(entry, "still")
        delete_pool(entry.pool)
        forget_pool_formats(ctx, uuid)
        ctx.store.log_event(POOL, uuid, entry.name, "deleted")
        return entry


def undefine(ctx: Context, key: str) -> PoolEntry:
    """pool-undefine: an inactive pool is gone; an active one becomes transient."""
    uuid = lookup_pool(ctx, key).uuid
    with ctx.lock(POOL, uuid):
        entry = lookup_pool(ctx, uuid)
        store = ctx.store
        with store.transaction():
            gone = store.undefine(POOL, uuid)
            if gone:
                forget_pool_formats(ctx, uuid)
            store.log_event(POOL, uuid, entry.name, "undefined")
        return entry


def set_autostart(ctx: Context, key: str, enable: bool) -> Definition:
    """pool-autostart [--disable]; a transient pool cannot be autostarted."""
    entry = lookup_pool(ctx, key)
    return ctx.store.set_autostart(POOL, entry.uuid, enable)


# ---------------------------------------------------------------------------------------------
# queries


def row_of(entry: PoolEntry) -> PoolRow:
    """What pool-list and pool-info show: sizes only for an active, reachable pool."""
    state = state_of(entry)
    sizes: tuple[int | None, int | None, int | None] = (None, None, None)
    if state is PoolState.RUNNING:
        try:
            st = pool_stats(entry.pool)
            sizes = (st.capacity, st.allocation, st.available)
        except StorageError:
            pass
    return PoolRow(
        name=entry.name,
        state=state,
        autostart=entry.definition.autostart,
        persistent=entry.definition.persistent,
        uuid=entry.uuid,
        capacity=sizes[0],
        allocation=sizes[1],
        available=sizes[2],
    )


def list_pools(ctx: Context) -> list[PoolRow]:
    return [row_of(e) for e in all_pools(ctx)]


def info(ctx: Context, key: str) -> PoolRow:
    return row_of(lookup_pool(ctx, key))


def dumpxml(ctx: Context, key: str, *, inactive: bool = False) -> str:
    """The pool's XML; an active pool's carries its current sizes (unless `inactive`)."""
    entry = lookup_pool(ctx, key)
    pool = entry.pool
    if entry.active and not inactive and state_of(entry) is PoolState.RUNNING:
        with contextlib.suppress(StorageError):
            pool = with_stats(pool)
    return render_pool(pool)


def refresh(ctx: Context, key: str) -> RefreshResult:
    """pool-refresh: rescan the directory (dropping records of volumes that are gone)."""
    from vmkit.engine.volumes import scan_pool

    entry = active_pool(ctx, key)
    with ctx.lock(POOL, entry.uuid):
        result = scan_pool(ctx, entry)
        ctx.store.log_event(POOL, entry.uuid, entry.name, "refreshed")
        return result
