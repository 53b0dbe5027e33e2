"""Errors of the guest builder, both under `vmkit.errors.VmkitError`.

    VmkitError
    +-- GuestBuildError         what failed, with the tool's stderr tail
        +-- PackageFetchFailed  package, argv, rc, stderr tail

This module owns only the classes.
"""

from __future__ import annotations

from collections.abc import Sequence

from vmkit.errors import VmkitError


def tail(text: str, lines: int = 10) -> str:
    """The last `lines` non-empty lines of a tool's output, for an error message."""
    kept = [line for line in text.strip().splitlines() if line.strip()]
    return "\n".join(kept[-lines:])


class GuestBuildError(VmkitError):
    """Building the tiny test guest failed."""


class PackageFetchFailed(GuestBuildError):
    """`apt-get download PACKAGE` failed; carries the package, argv, exit code and stderr."""

    def __init__(self, package: str, argv: Sequence[str], rc: int, stderr: str) -> None:
        super().__init__(
            f"cannot download Debian package {package} (apt-get exit code {rc}): "
            f"{tail(stderr) or 'no message'}"
        )
        self.package = package
        self.argv = list(argv)
        self.rc = rc
        self.stderr = stderr
