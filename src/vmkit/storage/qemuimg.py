"""A thin wrapper over qemu-img: argv built by pure functions, run behind a one-method seam.

`QemuImg` creates, inspects (`info --output=json`, never screen-scraped), converts (with `-p`
progress parsed into a callback), resizes, checks and manages internal snapshots of images.
Every failure is a vmkit.errors.CommandFailed(argv, rc, stderr). `create` and `convert` remove
their output file when they fail and the file did not exist before the call (disk full, ...).

The seam is `Runner.run(argv, on_stdout=None)`: `SubprocessRunner` runs the real program (list
argv, never a shell); unit tests pass a recording fake. This module knows nothing of pools,
volumes or the model: callers validate names and paths before they reach argv.
"""

from __future__ import annotations

import json
import os
import re
import selectors
import subprocess
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from vmkit.errors import CommandFailed, InvalidConfig

QEMU_IMG = "qemu-img"
CHECK_NOT_SUPPORTED = 63  # qemu-img check: "This image format does not support checks"
_PROGRESS_RE = re.compile(r"\((\d+(?:\.\d+)?)/100%\)")

ProgressCallback = Callable[[float], None]


# ---------------------------------------------------------------------------------------------
# the seam


@dataclass(frozen=True)
class Completed:
    """What a finished command left: exit code and both outputs."""

    argv: tuple[str, ...]
    rc: int
    stdout: str
    stderr: str


class Runner(Protocol):
    """Runs one argv to completion; `on_stdout` (if given) gets stdout chunks as they come."""

    def run(
        self, argv: Sequence[str], *, on_stdout: Callable[[str], None] | None = None
    ) -> Completed: ...


class SubprocessRunner:
    """The real runner: list argv, no shell, stdin closed, outputs captured (and streamed)."""

    def run(
        self, argv: Sequence[str], *, on_stdout: Callable[[str], None] | None = None
    ) -> Completed:
        args = [str(a) for a in argv]
        try:
            proc = subprocess.Popen(  # noqa: S603 - list argv built by this module, no shell
                args,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
        except OSError as e:
            raise CommandFailed(args, 127, f"cannot run {args[0]}: {e.strerror}") from e
        out, err = _drain(proc, on_stdout)
        rc = proc.wait()
        return Completed(tuple(args), rc, out, err)


def _drain(
    proc: subprocess.Popen[bytes], on_stdout: Callable[[str], None] | None
) -> tuple[str, str]:
    """Read stdout and stderr together (no pipe can fill up and stall the child)."""
    assert proc.stdout is not None and proc.stderr is not None
    chunks: dict[int, list[bytes]] = {1: [], 2: []}
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ, 1)
        sel.register(proc.stderr, selectors.EVENT_READ, 2)
        while sel.get_map():
            for key, _ in sel.select():
                data = os.read(key.fd, 65536)
                if not data:
                    sel.unregister(key.fileobj)
                    continue
                chunks[key.data].append(data)
                if key.data == 1 and on_stdout is not None:
                    on_stdout(data.decode(errors="replace"))
    proc.stdout.close()
    proc.stderr.close()
    return (
        b"".join(chunks[1]).decode(errors="replace"),
        b"".join(chunks[2]).decode(errors="replace"),
    )


# ---------------------------------------------------------------------------------------------
# what qemu-img reports


@dataclass(frozen=True)
class ImageSnapshot:
    """One internal snapshot of an image (`snapshots` of `qemu-img info --output=json`)."""

    id: str
    name: str
    vm_state_size: int
    date_sec: int
    date_nsec: int
    vm_clock_nsec: int
    icount: int | None = None


@dataclass(frozen=True)
class ImageInfo:
    """`qemu-img info --output=json` of one image, the fields vmkit uses."""

    filename: str
    format: str
    virtual_size: int
    actual_size: int | None = None
    cluster_size: int | None = None
    dirty: bool = False
    encrypted: bool = False
    backing_filename: str | None = None
    full_backing_filename: str | None = None
    backing_format: str | None = None
    compat: str | None = None  # qcow2 format-specific
    lazy_refcounts: bool | None = None  # qcow2 format-specific
    extended_l2: bool | None = None  # qcow2 format-specific
    corrupt: bool | None = None  # qcow2 format-specific
    snapshots: tuple[ImageSnapshot, ...] = ()
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class CheckResult:
    """`qemu-img check --output=json`; `supported` is False for formats without checks (raw)."""

    supported: bool = True
    check_errors: int = 0
    corruptions: int = 0
    leaks: int = 0
    image_end_offset: int | None = None
    total_clusters: int | None = None
    allocated_clusters: int | None = None

    @property
    def clean(self) -> bool:
        return self.check_errors == 0 and self.corruptions == 0 and self.leaks == 0


def parse_info(data: Mapping[str, Any]) -> ImageInfo:
    """One image object of `qemu-img info --output=json`."""
    specific = data.get("format-specific") or {}
    fs = specific.get("data") or {} if specific.get("type") == "qcow2" else {}
    snaps = tuple(
        ImageSnapshot(
            id=str(s["id"]),
            name=str(s["name"]),
            vm_state_size=int(s.get("vm-state-size", 0)),
            date_sec=int(s.get("date-sec", 0)),
            date_nsec=int(s.get("date-nsec", 0)),
            vm_clock_nsec=int(s.get("vm-clock-sec", 0)) * 10**9 + int(s.get("vm-clock-nsec", 0)),
            icount=int(s["icount"]) if "icount" in s else None,
        )
        for s in data.get("snapshots", [])
    )
    return ImageInfo(
        filename=str(data["filename"]),
        format=str(data["format"]),
        virtual_size=int(data["virtual-size"]),
        actual_size=_opt_int(data.get("actual-size")),
        cluster_size=_opt_int(data.get("cluster-size")),
        dirty=bool(data.get("dirty-flag", False)),
        encrypted=bool(data.get("encrypted", False)),
        backing_filename=_opt_str(data.get("backing-filename")),
        full_backing_filename=_opt_str(data.get("full-backing-filename")),
        backing_format=_opt_str(data.get("backing-filename-format")),
        compat=_opt_str(fs.get("compat")),
        lazy_refcounts=_opt_bool(fs.get("lazy-refcounts")),
        extended_l2=_opt_bool(fs.get("extended-l2")),
        corrupt=_opt_bool(fs.get("corrupt")),
        snapshots=snaps,
        raw=dict(data),
    )


def parse_check(data: Mapping[str, Any]) -> CheckResult:
    """The object printed by `qemu-img check --output=json`."""
    return CheckResult(
        check_errors=int(data.get("check-errors", 0)),
        corruptions=int(data.get("corruptions", 0)),
        leaks=int(data.get("leaks", 0)),
        image_end_offset=_opt_int(data.get("image-end-offset")),
        total_clusters=_opt_int(data.get("total-clusters")),
        allocated_clusters=_opt_int(data.get("allocated-clusters")),
    )


def _opt_int(v: Any) -> int | None:
    return None if v is None else int(v)


def _opt_str(v: Any) -> str | None:
    return None if v is None else str(v)


def _opt_bool(v: Any) -> bool | None:
    return None if v is None else bool(v)


class ProgressParser:
    """Turns `qemu-img -p` output ('    (12.00/100%)\\r' ...) into percentages, chunk by chunk."""

    def __init__(self, callback: ProgressCallback) -> None:
        self._callback = callback
        self._buf = ""
        self.last: float | None = None

    def feed(self, chunk: str) -> None:
        self._buf += chunk
        *done, self._buf = re.split(r"[\r\n]", self._buf)
        for piece in done:
            m = _PROGRESS_RE.search(piece)
            if m:
                pct = float(m.group(1))
                if pct != self.last:
                    self.last = pct
                    self._callback(pct)


# ---------------------------------------------------------------------------------------------
# argv (pure)


def _opts(options: Mapping[str, str]) -> list[str]:
    if not options:
        return []
    for k, v in options.items():
        if not re.fullmatch(r"[a-z0-9_.-]+", k) or "," in v or "\x00" in v:
            raise InvalidConfig(f"invalid qemu-img option {k}={v!r}", value=v)
    return ["-o", ",".join(f"{k}={v}" for k, v in options.items())]


def create_argv(
    path: str | Path,
    fmt: str,
    size: int | None,
    *,
    backing: str | Path | None = None,
    backing_format: str | None = None,
    options: Mapping[str, str] | None = None,
) -> list[str]:
    argv = [QEMU_IMG, "create", "-q", "-f", fmt, *_opts(options or {})]
    if backing is not None:
        if backing_format is None:
            raise InvalidConfig("a backing file needs its format", value=str(backing))
        argv += ["-b", str(backing), "-F", backing_format]
    argv.append(str(path))
    if size is not None:
        argv.append(str(size))
    return argv


def info_argv(
    path: str | Path, *, fmt: str | None = None, chain: bool = False, force_share: bool = True
) -> list[str]:
    argv = [QEMU_IMG, "info", "--output=json"]
    if fmt is not None:
        argv += ["-f", fmt]
    if chain:
        argv.append("--backing-chain")
    if force_share:
        argv.append("-U")
    return [*argv, str(path)]


def convert_argv(
    src: str | Path,
    dst: str | Path,
    *,
    dst_format: str,
    src_format: str | None = None,
    options: Mapping[str, str] | None = None,
    progress: bool = False,
    force_share: bool = False,
) -> list[str]:
    argv = [QEMU_IMG, "convert", "-p" if progress else "-q"]
    if force_share:
        argv.append("-U")
    if src_format is not None:
        argv += ["-f", src_format]
    argv += ["-O", dst_format, *_opts(options or {}), str(src), str(dst)]
    return argv


def resize_argv(
    path: str | Path, size: int, *, fmt: str | None = None, shrink: bool = False
) -> list[str]:
    argv = [QEMU_IMG, "resize", "-q"]
    if fmt is not None:
        argv += ["-f", fmt]
    if shrink:
        argv.append("--shrink")
    return [*argv, str(path), str(size)]


def check_argv(path: str | Path, *, fmt: str | None = None) -> list[str]:
    argv = [QEMU_IMG, "check", "--output=json"]
    if fmt is not None:
        argv += ["-f", fmt]
    return [*argv, str(path)]


def snapshot_argv(path: str | Path, op: str, name: str, *, fmt: str | None = None) -> list[str]:
    """`op` is 'c' (create), 'a' (apply) or 'd' (delete)."""
    if op not in ("c", "a", "d"):
        raise ValueError(f"snapshot op {op!r}")
    if not name or "\x00" in name:
        raise InvalidConfig(f"invalid snapshot name {name!r}", value=name)
    argv = [QEMU_IMG, "snapshot", "-q", f"-{op}", name]
    if fmt is not None:
        argv += ["-f", fmt]
    return [*argv, str(path)]


# ---------------------------------------------------------------------------------------------
# the wrapper


class QemuImg:
    """qemu-img operations; `runner` is the seam (SubprocessRunner by default)."""

    def __init__(self, runner: Runner | None = None) -> None:
        self.runner: Runner = runner or SubprocessRunner()

    def _run(
        self,
        argv: Sequence[str],
        *,
        ok: Sequence[int] = (0,),
        on_stdout: Callable[[str], None] | None = None,
    ) -> Completed:
        done = self.runner.run(argv, on_stdout=on_stdout)
        if done.rc not in ok:
            raise CommandFailed(list(argv), done.rc, done.stderr or done.stdout)
        return done

    def create(
        self,
        path: str | Path,
        fmt: str,
        size: int | None,
        *,
        backing: str | Path | None = None,
        backing_format: str | None = None,
        options: Mapping[str, str] | None = None,
    ) -> None:
        """Create an image (size None: the backing file's); removes a partial output on failure."""
        argv = create_argv(
            path, fmt, size, backing=backing, backing_format=backing_format, options=options
        )
        with remove_on_failure(path):
            self._run(argv)

    def info(self, path: str | Path, *, fmt: str | None = None) -> ImageInfo:
        """`qemu-img info` of one image (-U: also while a running QEMU holds it)."""
        return parse_info(self._json(info_argv(path, fmt=fmt)))

    def info_chain(self, path: str | Path, *, fmt: str | None = None) -> list[ImageInfo]:
        """The image and its backing files, top first (`--backing-chain`)."""
        data = self._json(info_argv(path, fmt=fmt, chain=True))
        items = data if isinstance(data, list) else [data]
        return [parse_info(item) for item in items]

    def convert(
        self,
        src: str | Path,
        dst: str | Path,
        *,
        dst_format: str,
        src_format: str | None = None,
        options: Mapping[str, str] | None = None,
        progress: ProgressCallback | None = None,
    ) -> None:
        """Copy/convert `src` into a new `dst`; `progress` gets percentages (0.0 .. 100.0)."""
        argv = convert_argv(
            src,
            dst,
            dst_format=dst_format,
            src_format=src_format,
            options=options,
            progress=progress is not None,
        )
        parser = ProgressParser(progress) if progress is not None else None
        with remove_on_failure(dst):
            self._run(argv, on_stdout=parser.feed if parser else None)

    def resize(
        self, path: str | Path, size: int, *, fmt: str | None = None, shrink: bool = False
    ) -> None:
        """Set the virtual size to `size` bytes; shrinking needs shrink=True (`--shrink`)."""
        self._run(resize_argv(path, size, fmt=fmt, shrink=shrink))

    def check(self, path: str | Path, *, fmt: str | None = None) -> CheckResult:
        """Consistency check; corruptions (rc 2) and leaks (rc 3) are results, not failures."""
        argv = check_argv(path, fmt=fmt)
        done = self._run(argv, ok=(0, 2, 3, CHECK_NOT_SUPPORTED))
        if done.rc == CHECK_NOT_SUPPORTED:
            return CheckResult(supported=False)
        return parse_check(self._decode(argv, done))

    def snapshot_list(self, path: str | Path, *, fmt: str | None = None) -> list[ImageSnapshot]:
        """Internal snapshots (from `info --output=json`; `snapshot -l` has no JSON in 7.2)."""
        return list(self.info(path, fmt=fmt).snapshots)

    def snapshot_create(self, path: str | Path, name: str, *, fmt: str | None = None) -> None:
        self._run(snapshot_argv(path, "c", name, fmt=fmt))

    def snapshot_apply(self, path: str | Path, name: str, *, fmt: str | None = None) -> None:
        self._run(snapshot_argv(path, "a", name, fmt=fmt))

    def snapshot_delete(self, path: str | Path, name: str, *, fmt: str | None = None) -> None:
        self._run(snapshot_argv(path, "d", name, fmt=fmt))

    def _json(self, argv: list[str]) -> Any:
        return self._decode(argv, self._run(argv))

    @staticmethod
    def _decode(argv: list[str], done: Completed) -> Any:
        try:
            return json.loads(done.stdout)
        except ValueError as e:
            raise CommandFailed(argv, done.rc, f"unreadable JSON output: {e}") from e


@contextmanager
def remove_on_failure(path: str | Path) -> Iterator[None]:
    """Remove `path` if the block fails and `path` did not exist when it started."""
    existed = os.path.lexists(path)
    try:
        yield
    except BaseException:
        if not existed:
            Path(path).unlink(missing_ok=True)
        raise
