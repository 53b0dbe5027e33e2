"""Who uses a volume (domains, overlays), and the formats vmkit remembers of the volumes it made.

- `domain_users(ctx, path)`: the domains whose disks name the file, in their definition or, for a
  running domain, in the XML it runs with. `running_only` keeps only domains whose QEMU is alive.
- Format records: a pool's volumes are its directory's files (as in libvirt, which keeps no
  volume definitions and scans). vmkit only remembers, per volume it created, cloned, imported or
  wiped, the format it wrote, as a VOLUME definition under the pool (parent = pool uuid, a uuid
  derived from pool and name). A raw volume is then never probed: a guest that writes a qcow2
  header with a backing file into its raw disk cannot make vmkit read a host file through it.
  Files vmkit did not make are probed, like libvirt does. A record whose file is gone is dropped
  on the next scan.

Reads the store; writes only format records. Callers hold whatever lock their operation needs.
"""

from __future__ import annotations

import os
import uuid as uuid_mod
import xml.etree.ElementTree as ET  # only domain XML that vmkit rendered itself
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from vmkit.engine.context import Context
from vmkit.errors import InvalidConfig
from vmkit.state.records import POOL, VOLUME

_RECORD_NS = uuid_mod.UUID("6f1f6d1e-5c4a-4f59-9d0e-2b7f3c1a9e42")


# ---------------------------------------------------------------------------------------------
# domains


@dataclass(frozen=True)
class DomainUse:
    """A domain that names a file among its disks; `running` when its QEMU is alive."""

    name: str
    running: bool


def disk_files(xml: str, pool_dirs: Mapping[str, str] | None = None) -> set[str]:
    """The files and devices the disks of a domain XML read (sources and backing stores); a
    `<source pool= volume=>` is found in `pool_dirs` (pool name -> directory)."""
    try:
        root = ET.fromstring(xml)
    except ET.ParseError:
        return set()
    found: set[str] = set()
    for disk in root.iterfind("devices/disk"):
        for src in disk.iter("source"):
            value = src.get("file") or src.get("dev")
            pool, vol = src.get("pool"), src.get("volume")
            if not value and pool and vol and pool_dirs and pool in pool_dirs:
                value = os.path.join(pool_dirs[pool], vol)
            if value:
                found.add(os.path.realpath(value))
    return found


def domain_users(ctx: Context, path: str | Path, *, running_only: bool = False) -> list[DomainUse]:
    """Domains whose disks use `path`, by name; running ones are checked against their QEMU."""
    real = os.path.realpath(path)
    users: list[DomainUse] = []
    pool_dirs: dict[str, str] | None = None
    for entry in ctx.store.domains():
        rt = entry.runtime
        running = rt is not None and _alive(rt.pid, rt.pid_start)
        if running_only and not running:
            continue
        xmls = [entry.definition.xml]
        if running and rt is not None and rt.live_xml:
            xmls.append(rt.live_xml)
        if pool_dirs is None and any("volume=" in x for x in xmls):
            pool_dirs = _pool_dirs(ctx)
        if any(real in disk_files(x, pool_dirs) for x in xmls):
            users.append(DomainUse(entry.name, running))
    return users


def _pool_dirs(ctx: Context) -> dict[str, str]:
    from vmkit.xml.storage import parse_pool

    dirs = {}
    for d in ctx.store.list(POOL):
        try:
            dirs[d.name] = parse_pool(d.xml, strict=False).target_path
        except InvalidConfig:
            continue
    return dirs


def _alive(pid: int | None, pid_start: int | None) -> bool:
    if pid is None or pid_start is None:
        return False
    from vmkit.qemu.process import process_state

    return process_state(pid, pid_start) == "running"


def names(users: Iterable[DomainUse]) -> list[str]:
    return [u.name for u in users]


# ---------------------------------------------------------------------------------------------
# format records


def record_uuid(pool_uuid: str, name: str) -> str:
    """The uuid of the format record of volume `name` in the pool: derived, never stored apart."""
    return str(uuid_mod.uuid5(_RECORD_NS, f"{pool_uuid}/{name}"))


def _record_xml(name: str, fmt: str) -> str:
    from vmkit.model.storage import Volume
    from vmkit.xml.storage import render_volume

    return render_volume(Volume(name=name, target_format=fmt))


def recorded_formats(ctx: Context, pool_uuid: str) -> dict[str, str]:
    """Volume name -> format, for the volumes of the pool that vmkit wrote."""
    from vmkit.xml.storage import parse_volume

    formats: dict[str, str] = {}
    for d in ctx.store.list(VOLUME, parent=pool_uuid):
        try:
            fmt = parse_volume(d.xml, strict=False).target_format
        except InvalidConfig:  # an unreadable record is no record
            continue
        if fmt:
            formats[d.name] = fmt
    return formats


def recorded_format(ctx: Context, pool_uuid: str, name: str) -> str | None:
    return recorded_formats(ctx, pool_uuid).get(name)


def remember_format(ctx: Context, pool_uuid: str, name: str, fmt: str) -> None:
    """Record (or update) the format of a volume vmkit wrote."""
    store = ctx.store
    with store.transaction():
        old = store.find(VOLUME, name, parent=pool_uuid)
        if old is not None and old.uuid != record_uuid(pool_uuid, name):
            store.undefine(VOLUME, old.uuid, parent=pool_uuid)
        store.define(
            VOLUME, record_uuid(pool_uuid, name), name, _record_xml(name, fmt), parent=pool_uuid
        )


def forget_format(ctx: Context, pool_uuid: str, name: str) -> None:
    """Drop the record of a volume that is gone."""
    store = ctx.store
    with store.transaction():
        if store.find(VOLUME, name, parent=pool_uuid) is not None:
            store.undefine(VOLUME, name, parent=pool_uuid)


def prune_formats(ctx: Context, pool_uuid: str, present: Iterable[str]) -> None:
    """Drop the records of volumes whose files are no longer in the pool."""
    keep = set(present)
    store = ctx.store
    stale = [d for d in store.list(VOLUME, parent=pool_uuid) if d.name not in keep]
    if not stale:
        return
    with store.transaction():
        for d in stale:
            store.undefine(VOLUME, d.uuid, parent=pool_uuid)


def forget_pool_formats(ctx: Context, pool_uuid: str) -> None:
    """Drop every record of a pool whose definition is gone."""
    prune_formats(ctx, pool_uuid, ())
