"""The disk work of snapshots: over QMP for a running domain, with qemu-img for a stopped one.

Internal: QEMU 7.2's job commands `snapshot-save` / `snapshot-load` / `snapshot-delete` (errors
come back in the job, not as a QMP error), `qemu-img snapshot -c/-a/-d` offline.
External: a `transaction` of `blockdev-snapshot-sync` (all disks or none) live, `qemu-img create
-b` offline. Merging an overlay back: `block-commit` / `qemu-img commit` (the base keeps its
name), or pulling a base into its overlays: `block-stream` / `qemu-img rebase`.

Images are found in QEMU's graph by file name (`query-named-block-nodes`), never by assumed node
names: after an external snapshot a disk's top node is the overlay's. Every step that creates a
file removes it again when the step fails. Callers hold the domain's lock.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from vmkit.engine.snapshot_plan import DiskStep
from vmkit.errors import CommandFailed, QemuError, StorageError
from vmkit.qemu.qmp import QmpSession
from vmkit.storage.qemuimg import QEMU_IMG, QemuImg

_PROTOCOL_DRIVERS = ("file", "host_device", "host_cdrom")
_POLL = 0.01


# -- QMP helpers ------------------------------------------------------------------------------


def run_job(qmp: QmpSession, command: str, args: dict[str, Any], *, timeout: float = 600.0) -> None:
    """Run a job command to its end (completing it when it waits to be); QemuError on failure."""
    job = f"vmkit-{command}-{os.urandom(3).hex()}"
    qmp.execute(command, {"job-id": job, **args, **_JOB_DEFAULTS.get(command, {})})
    deadline = time.monotonic() + timeout
    while True:
        jobs = {j["id"]: j for j in qmp.execute("query-jobs")}
        info = jobs.get(job)
        if info is None:
            return  # dismissed by QEMU itself: finished without error
        if info["status"] == "ready":
            qmp.execute("job-complete", {"id": job})
        elif info["status"] == "concluded":
            qmp.execute("job-dismiss", {"id": job})
            if info.get("error"):
                raise QemuError(f"{command} failed: {info['error']}")
            return
        if time.monotonic() > deadline:
            with contextlib.suppress(QemuError):
                qmp.execute("job-cancel", {"id": job})
            raise QemuError(f"{command} did not finish within {timeout:g} s")
        time.sleep(_POLL)


_BLOCK_JOB = {"auto-finalize": True, "auto-dismiss": False}
_JOB_DEFAULTS: dict[str, dict[str, Any]] = {"block-commit": _BLOCK_JOB, "block-stream": _BLOCK_JOB}


def nodes_by_file(qmp: QmpSession) -> dict[str, str]:
    """Image file -> the node name of its format layer, for every image QEMU has open."""
    found: dict[str, str] = {}
    for node in qmp.execute("query-named-block-nodes", {"flat": True}):
        if node.get("drv") not in _PROTOCOL_DRIVERS and node.get("file"):
            found.setdefault(str(node["file"]), str(node["node-name"]))
    return found


def _node(nodes: dict[str, str], path: str) -> str:
    try:
        return nodes[path]
    except KeyError:
        raise QemuError(f"image {path} is not open in the domain's QEMU") from None


def _node_name(target: str) -> str:
    return f"{target}-snap-{os.urandom(3).hex()}"


# -- qemu-img helpers -------------------------------------------------------------------------


def _img_run(img: QemuImg, argv: Sequence[str]) -> None:
    done = img.runner.run(argv)
    if done.rc != 0:
        raise CommandFailed(list(argv), done.rc, done.stderr or done.stdout)


def has_internal(img: QemuImg, path: str, name: str) -> bool:
    return any(s.name == name for s in img.snapshot_list(path))


# -- internal snapshots -----------------------------------------------------------------------


def take_internal_live(qmp: QmpSession, name: str, steps: Sequence[DiskStep]) -> None:
    """Disks and memory into the images (memory into the first); the guest pauses meanwhile."""
    nodes = nodes_by_file(qmp)
    devices = [_node(nodes, s.source) for s in steps]
    run_job(qmp, "snapshot-save", {"tag": name, "vmstate": devices[0], "devices": devices})


def load_internal_live(qmp: QmpSession, name: str, files: Sequence[str]) -> None:
    nodes = nodes_by_file(qmp)
    devices = [_node(nodes, f) for f in files]
    run_job(qmp, "snapshot-load", {"tag": name, "vmstate": devices[0], "devices": devices})


def delete_internal_live(qmp: QmpSession, name: str, files: Sequence[str]) -> None:
    nodes = nodes_by_file(qmp)
    devices = [_node(nodes, f) for f in files]
    run_job(qmp, "snapshot-delete", {"tag": name, "devices": devices})


def take_internal_offline(img: QemuImg, name: str, steps: Sequence[DiskStep]) -> None:
    """`qemu-img snapshot -c` on each image; the ones made are deleted if one fails."""
    done: list[str] = []
    try:
        for step in steps:
            img.snapshot_create(step.source, name)
            done.append(step.source)
    except BaseException:
        for path in done:
            with contextlib.suppress(StorageError):
                img.snapshot_delete(path, name)
        raise


def apply_internal_offline(img: QemuImg, name: str, files: Iterable[str]) -> None:
    for path in files:
        img.snapshot_apply(path, name)


def delete_internal_offline(img: QemuImg, name: str, files: Iterable[str]) -> None:
    """Delete the internal snapshot from each image that still has it."""
    for path in files:
        if Path(path).exists() and has_internal(img, path, name):
            img.snapshot_delete(path, name)


# -- external snapshots -----------------------------------------------------------------------


def take_external_live(qmp: QmpSession, steps: Sequence[DiskStep]) -> None:
    """New overlays for all disks in one transaction; created files are removed on failure."""
    nodes = nodes_by_file(qmp)
    actions = []
    for s in steps:
        assert s.overlay is not None
        data = {
            "node-name": _node(nodes, s.source),
            "snapshot-file": s.overlay,
            "snapshot-node-name": _node_name(s.target),
            "format": "qcow2",
            "mode": "absolute-paths",
        }
        actions.append({"type": "blockdev-snapshot-sync", "data": data})
    with _removed_on_failure([s.overlay for s in steps if s.overlay]):
        qmp.execute("transaction", {"actions": actions})


def take_external_offline(img: QemuImg, steps: Sequence[DiskStep]) -> None:
    with _removed_on_failure([s.overlay for s in steps if s.overlay]):
        for s in steps:
            assert s.overlay is not None
            img.create(s.overlay, "qcow2", None, backing=s.source, backing_format=s.fmt)


def create_overlays(img: QemuImg, bases: Sequence[tuple[str, str, str]]) -> None:
    """(base, base format, overlay) -> qcow2 overlays; all or none."""
    with _removed_on_failure([o for _, _, o in bases]):
        for base, fmt, overlay in bases:
            img.create(overlay, "qcow2", None, backing=base, backing_format=fmt)


@contextlib.contextmanager
def _removed_on_failure(paths: Sequence[str]) -> Any:
    fresh = [p for p in paths if not Path(p).exists()]
    try:
        yield
    except BaseException:
        for p in fresh:
            Path(p).unlink(missing_ok=True)
        raise


# -- merging ----------------------------------------------------------------------------------


def commit_live(qmp: QmpSession, top: str, base: str) -> None:
    """Write `top`'s data into its backing `base`; QEMU drops `top` from the chain."""
    nodes = nodes_by_file(qmp)
    top_node, base_node = _node(nodes, top), _node(nodes, base)
    device = _root_of(qmp, top_node)
    args: dict[str, Any] = {"device": device, "base-node": base_node}
    if device != top_node:
        args["top-node"] = top_node
    run_job(qmp, "block-commit", args)


def commit_offline(img: QemuImg, top: str) -> None:
    _img_run(img, [QEMU_IMG, "commit", "-q", "-f", "qcow2", top])


def stream_live(qmp: QmpSession, top: str, new_base: str | None) -> None:
    """Copy into `top` what its backing image holds above `new_base` (None: all of it)."""
    nodes = nodes_by_file(qmp)
    args: dict[str, Any] = {"device": _node(nodes, top)}
    if new_base is not None:
        args["base-node"] = _node(nodes, new_base)
    run_job(qmp, "block-stream", args)


def rebase_offline(
    img: QemuImg, path: str, new_base: str | None, new_fmt: str | None, *, unsafe: bool = False
) -> None:
    """Point `path` at `new_base` (None: no backing); safe mode copies what differs."""
    argv = [QEMU_IMG, "rebase", "-q", "-f", "qcow2"] + (["-u"] if unsafe else [])
    if new_base is None:
        argv += ["-b", ""]
    else:
        argv += ["-b", new_base, "-F", new_fmt or "qcow2"]
    _img_run(img, [*argv, path])


def _root_of(qmp: QmpSession, node: str) -> str:
    """The top node of the device whose chain contains `node`."""
    nodes = nodes_by_file(qmp)
    for block in qmp.execute("query-block"):
        inserted = block.get("inserted") or {}
        image = inserted.get("image") or {}
        while image:
            if nodes.get(str(image.get("filename"))) == node:
                return str(inserted["node-name"])
            image = image.get("backing-image") or {}
    raise QemuError(f"block node {node} belongs to no disk")


def drop_unused_nodes(qmp: QmpSession, files: Iterable[str]) -> None:
    """Close images QEMU keeps open although no disk uses them any more (best effort)."""
    wanted = set(files)
    found = [n for n in qmp.execute("query-named-block-nodes") if n.get("file") in wanted]
    found.sort(key=lambda n: n.get("drv") in _PROTOCOL_DRIVERS)  # format layers first
    for node in found:
        with contextlib.suppress(QemuError):
            qmp.execute("blockdev-del", {"node-name": node["node-name"]})
