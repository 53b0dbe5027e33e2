"""The data of a benchmark run: rows, targets, cells of samples. Pure; no I/O.

A *row* is one measured quantity (e.g. "start -> boot marker"). Each row has one *cell* per
system compared: `floor` (the least any manager could do: bare QEMU running the same argv,
`python3 -c pass`, qemu-img by hand, a plain veth pair), `vmkit` and `libvirt`. A cell holds the
counted samples (warm-up samples are kept apart) and a status that says why it may be empty.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

SYSTEMS = ("floor", "vmkit", "libvirt")


class Unit(Enum):
    SECONDS = "s"
    BYTES = "bytes"
    BITS_PER_SECOND = "bit/s"


class Status(Enum):
    OK = "ok"
    NOT_INSTALLED = "not installed"  # libvirt absent or --no-libvirt
    NOT_AVAILABLE = "not available"  # vmkit lacks the command (yet)
    SKIPPED = "skipped"  # not part of this mode (--quick, --selftest, --only)
    ERROR = "error"
    PENDING = "pending"  # not run yet


class TargetKind(Enum):
    RATIO = "ratio"  # vmkit / against <= limit
    OVERHEAD = "overhead"  # vmkit - against <= limit (row unit)
    DELTA_ROW = "delta_row"  # vmkit(this row) - vmkit(row `against`) <= limit
    MAXIMUM = "max"  # vmkit <= limit


@dataclass(frozen=True)
class Target:
    """A target of issue 6 for vmkit's median; `text` is what the table prints."""

    kind: TargetKind
    limit: float
    against: str  # a system name, or a row key for DELTA_ROW, or "" for MAXIMUM
    text: str


@dataclass(frozen=True)
class Row:
    key: str  # "life.boot"
    title: str  # "start -> boot marker"
    unit: Unit
    floor_label: str  # what the floor column is for this row
    group: str  # "CLI latency", "lifecycle", ...
    target: Target | None = None
    higher_is_better: bool = False


@dataclass
class Cell:
    """One system in one row."""

    status: Status = Status.PENDING
    samples: list[float] = field(default_factory=list)
    warmup: list[float] = field(default_factory=list)
    note: str = ""

    def add(self, value: float, counted: bool) -> None:
        (self.samples if counted else self.warmup).append(value)
        if self.status in (Status.PENDING, Status.ERROR) and counted:
            self.status = Status.OK

    def fail(self, message: str) -> None:
        """Record an error; the cell keeps the samples it already has."""
        if not self.samples:
            self.status = Status.ERROR
        self.note = message if not self.note else f"{self.note}; {message}"


@dataclass
class RowResult:
    row: Row
    cells: dict[str, Cell] = field(default_factory=lambda: {s: Cell() for s in SYSTEMS})


@dataclass
class RunInfo:
    """What describes a whole run (goes into the JSON `meta`)."""

    mode: str  # full | quick | selftest
    counts: dict[str, list[int]]  # group -> [warm-up runs, counted runs]
    started: str
    host: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
