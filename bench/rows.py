"""Every row of issue 6, with its target. The JSON and the table always list all of them, so a
row that could not run says why ("not available yet", "not installed", "skipped")."""

from __future__ import annotations

from bench.model import Row, Target, TargetKind, Unit

CLI = "CLI latency"
LIFE = "lifecycle"
SCALE = "10 domains"
MEM = "memory"
NET = "network"
STORE = "storage"

PY = "python3 -c pass"
BARE = "bare QEMU"
QIMG = "qemu-img by hand"

S = Unit.SECONDS
B = Unit.BYTES


def _overhead(limit: float, against: str, text: str) -> Target:
    return Target(TargetKind.OVERHEAD, limit, against, text)


def _ratio(limit: float, against: str, text: str) -> Target:
    return Target(TargetKind.RATIO, limit, against, text)


CLI_ROWS = [
    Row("cli.list1", "list --all (1 domain)", S, PY, CLI, _overhead(0.025, "floor", "<= +25 ms")),
    Row(
        "cli.list200",
        "list --all (200 domains)",
        S,
        PY,
        CLI,
        Target(TargetKind.DELTA_ROW, 0.010, "cli.list1", "<= +10 ms vs 1 domain"),
    ),
    Row("cli.dominfo", "dominfo", S, PY, CLI, _overhead(0.025, "floor", "<= +25 ms")),
    Row("cli.dumpxml", "dumpxml", S, PY, CLI),
    Row("cli.define_undefine", "define + undefine", S, "2 x " + PY, CLI),
]

LIFE_ROWS = [
    Row("life.boot", "start -> boot marker", S, BARE, LIFE, _overhead(0.050, "floor", "<= +50 ms")),
    Row("life.start", "start (command returns)", S, BARE, LIFE),
    Row("life.destroy", "destroy", S, BARE, LIFE, _ratio(0.5, "libvirt", "<= 0.5 x libvirt")),
    Row("life.start_destroy", "start + destroy", S, BARE, LIFE),
    Row(
        "life.shutdown",
        "ACPI shutdown -> shut off",
        S,
        BARE,
        LIFE,
        _ratio(1.1, "libvirt", "<= 1.1 x libvirt"),
    ),
    Row("life.suspend_resume", "suspend + resume", S, BARE + " (QMP)", LIFE),
    Row(
        "life.save", "save", S, "QEMU migrate to file", LIFE, _ratio(1.1, "floor", "<= 1.1 x QEMU")
    ),
    Row("life.save_size", "save: state file size", B, "QEMU migrate to file", LIFE),
    Row(
        "life.restore",
        "restore -> running",
        S,
        "QEMU -incoming file",
        LIFE,
        _ratio(1.1, "floor", "<= 1.1 x QEMU"),
    ),
]

SCALE_ROWS = [
    Row("scale.seq", "10 starts one after another -> all booted", S, BARE, SCALE),
    Row(
        "scale.par",
        "10 starts in parallel -> all booted",
        S,
        BARE,
        SCALE,
        _ratio(1.0, "libvirt", "<= libvirt"),
    ),
]

MEM_ROWS = [
    Row(
        "mem.idle",
        "idle manager RSS",
        B,
        "no manager",
        MEM,
        Target(TargetKind.MAXIMUM, 0.0, "", "0 (no resident process)"),
    ),
    Row("mem.domain_qemu", "per domain: QEMU RSS", B, BARE, MEM),
    Row(
        "mem.domain_extra",
        "per domain: manager processes RSS",
        B,
        BARE,
        MEM,
        Target(TargetKind.MAXIMUM, 0.0, "", "bare + 0"),
    ),
]

NET_MODELS = ("bridge", "hostonly", "route", "nat", "isolated")
NET_ROWS = [
    Row(
        "net.veth_pair", "TCP: plain veth pair", Unit.BITS_PER_SECOND, "veth pair", NET, None, True
    ),
    Row(
        "net.plain_bridge",
        "TCP: plain bridge",
        Unit.BITS_PER_SECOND,
        "plain bridge",
        NET,
        None,
        True,
    ),
] + [
    Row(
        f"net.vmkit_{model}",
        f"TCP: vmkit network '{model}'",
        Unit.BITS_PER_SECOND,
        "plain bridge",
        NET,
        None,
        True,
    )
    for model in NET_MODELS
]

STORE_ROWS = [
    Row("store.vol_clone", "vol-clone (qcow2)", S, QIMG, STORE),
    Row("store.snapshot_create", "snapshot-create", S, QIMG, STORE),
    Row("store.snapshot_revert", "snapshot-revert", S, QIMG, STORE),
]

ALL_ROWS: list[Row] = [*CLI_ROWS, *LIFE_ROWS, *SCALE_ROWS, *MEM_ROWS, *NET_ROWS, *STORE_ROWS]
BY_KEY = {row.key: row for row in ALL_ROWS}
