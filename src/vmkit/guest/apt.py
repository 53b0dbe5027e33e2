"""Fetching Debian packages for the guest: choosing the cloud kernel, `apt-get download`, unpacking.

Owns the calls to apt-cache, apt-get and dpkg-deb, behind the one-method `CommandRunner` seam so
that the retry logic is tested with a fake. It installs nothing on the host: packages are
downloaded into a folder and unpacked there. It must not know what goes into the guest.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote

from vmkit.guest.errors import GuestBuildError, PackageFetchFailed, tail

# The Debian 12 cloud kernel series the guest was measured with (PLATFORM.md); the ABI number
# (the 56 of linux-image-6.1.0-56-cloud-amd64) grows with every security update.
KERNEL_PREFIX = "linux-image-6.1.0-"
_KERNEL_NAME = re.compile(r"^linux-image-(6\.1\.0-(\d+)-cloud-amd64)$")
# apt-get's words for "my package lists are missing or stale": worth one `apt-get update`.
_STALE_LISTS = re.compile(
    r"unable to locate package|has no installation candidate|404\s+not found", re.I
)
# apt-get download as root into a folder _apt cannot read warns; downloading as root is fine.
_APT_OPTIONS = ("-q", "-o", "APT::Sandbox::User=root")


@dataclass(frozen=True)
class CommandResult:
    """What a finished command left: exit code, stdout, stderr (text)."""

    rc: int
    stdout: str
    stderr: str


class CommandRunner(Protocol):
    """Runs one argv (never through a shell) to completion and returns its result."""

    def __call__(self, argv: Sequence[str], *, cwd: Path | None = None) -> CommandResult: ...


def run_command(argv: Sequence[str], *, cwd: Path | None = None) -> CommandResult:
    """The real `CommandRunner`: subprocess with the C locale, so messages are parsable."""
    env = dict(os.environ, LC_ALL="C", DEBIAN_FRONTEND="noninteractive")
    try:
        done = subprocess.run(  # noqa: S603 - argv list built by this package
            list(argv), cwd=cwd, env=env, capture_output=True, text=True, check=False
        )
    except OSError as exc:
        raise GuestBuildError(f"cannot run {argv[0]}: {exc.strerror or exc}") from exc
    return CommandResult(done.returncode, done.stdout, done.stderr)


@dataclass(frozen=True)
class KernelPackage:
    """A cloud kernel package apt can download."""

    name: str  # linux-image-6.1.0-56-cloud-amd64
    release: str  # 6.1.0-56-cloud-amd64 (uname -r, the folder under /lib/modules)
    abi: int  # 56
    version: str  # 6.1.192-2 (apt's candidate)


def parse_policy(text: str) -> dict[str, str | None]:
    """Package name -> candidate version (None for `(none)`) from `apt-cache policy` output."""
    candidates: dict[str, str | None] = {}
    name: str | None = None
    for line in text.splitlines():
        if line and not line[0].isspace() and line.endswith(":"):
            name = line[:-1]
            candidates[name] = None
        elif name is not None and line.strip().startswith("Candidate:"):
            value = line.split(":", 1)[1].strip()
            candidates[name] = None if value == "(none)" else value
    return candidates


def choose_kernel(candidates: Mapping[str, str | None]) -> KernelPackage | None:
    """The cloud kernel with the highest ABI number that has a candidate version, if any."""
    best: KernelPackage | None = None
    for name, version in candidates.items():
        match = _KERNEL_NAME.match(name)
        if match is None or version is None:
            continue
        found = KernelPackage(name, match.group(1), int(match.group(2)), version)
        if best is None or found.abi > best.abi:
            best = found
    return best


def kernel_names(pkgnames: Iterable[str]) -> list[str]:
    """The cloud kernel image names among `apt-cache pkgnames` lines (no -dbg, -unsigned)."""
    return [name for name in (line.strip() for line in pkgnames) if _KERNEL_NAME.match(name)]


def deb_version(deb: Path) -> str:
    """The version in a .deb file name as apt-get download writes it (`1%3a1.35.0-4_amd64.deb`)."""
    parts = deb.name.split("_")
    return unquote(parts[1]) if len(parts) == 3 else ""


class Apt:
    """apt-cache and apt-get download; runs `apt-get update` at most once, when lists are stale."""

    def __init__(
        self, run: CommandRunner = run_command, progress: Callable[[str], None] | None = None
    ) -> None:
        self._run = run
        self._progress = progress or (lambda _message: None)
        self._updated = False

    def find_kernel(self) -> KernelPackage:
        """The newest downloadable linux-image-6.1.0-N-cloud-amd64."""
        for attempt in range(2):
            listed = self._checked(["apt-cache", "pkgnames", KERNEL_PREFIX])
            names = kernel_names(listed.stdout.splitlines())
            if names:
                policy = self._checked(["apt-cache", "policy", *sorted(names)])
                kernel = choose_kernel(parse_policy(policy.stdout))
                if kernel is not None:
                    return kernel
            if attempt == 0 and not self._update():
                break
        raise GuestBuildError(
            f"apt knows no downloadable {KERNEL_PREFIX}N-cloud-amd64 package "
            "(is deb.debian.org bookworm or bookworm-security in the apt sources?)"
        )

    def download(self, package: str, dest: Path) -> Path:
        """Download `package` (its candidate version) into `dest`; the path of the .deb."""
        argv = ["apt-get", *_APT_OPTIONS, "download", package]
        self._progress(f"downloading {package}")
        result = self._run(argv, cwd=dest)
        if result.rc != 0 and _STALE_LISTS.search(result.stderr) and self._update():
            result = self._run(argv, cwd=dest)
        if result.rc != 0:
            raise PackageFetchFailed(package, argv, result.rc, result.stderr)
        debs = sorted(dest.glob(f"{package}_*.deb"))
        if len(debs) != 1:
            raise GuestBuildError(f"apt-get download {package} left no single .deb in {dest}")
        return debs[0]

    def unpack(self, deb: Path, dest: Path) -> None:
        """Unpack the files of `deb` under `dest` (dpkg-deb -x: no install, no scripts)."""
        self._checked(["dpkg-deb", "-x", str(deb), str(dest)])

    def _update(self) -> bool:
        """Run `apt-get update` once per Apt; False if it already ran."""
        if self._updated:
            return False
        self._updated = True
        self._progress("package lists are missing or stale: running apt-get update")
        self._checked(["apt-get", "-q", "update"])
        return True

    def _checked(self, argv: Sequence[str]) -> CommandResult:
        result = self._run(argv)
        if result.rc != 0:
            raise GuestBuildError(
                f"{' '.join(argv[:3])} failed (exit code {result.rc}): "
                f"{tail(result.stderr) or 'no message'}"
            )
        return result
