"""The one error tree of vmkit; every user-facing failure is a subclass of VmkitError.

    VmkitError                  exit 1
    +-- InvalidConfig           xpath/line, value          exit 2
    +-- NotFound                kind, name                 exit 3
    +-- Conflict                kind, name                 exit 4
    +-- WrongState              state, required            exit 5
    +-- QemuError
    |   +-- LaunchFailed        argv, rc, stderr tail
    |   +-- QmpError            class, desc
    +-- StorageError
    |   +-- CommandFailed       argv, rc, stderr
    +-- NetworkError
        +-- NetlinkFailed       op, errno
        +-- FirewallFailed      ruleset, stderr

This module owns only the classes; it imports nothing from vmkit, so every layer may use it.
"""

from __future__ import annotations

from collections.abc import Sequence


class VmkitError(Exception):
    """Root of all vmkit errors; `exit_code` is what the CLI returns."""

    exit_code = 1
    http_status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class InvalidConfig(VmkitError):
    """A definition or argument is wrong; names where (xpath, line) and what (value)."""

    exit_code = 2
    http_status = 400

    def __init__(
        self,
        message: str,
        *,
        xpath: str | None = None,
        line: int | None = None,
        value: object = None,
    ) -> None:
        where = []
        if line is not None:
            where.append(f"line {line}")
        if xpath:
            where.append(xpath)
        full = f"{message} ({', '.join(where)})" if where else message
        super().__init__(full)
        self.xpath = xpath
        self.line = line
        self.value = value


class NotFound(VmkitError):
    """An object of `kind` named `name` does not exist."""

    exit_code = 3
    http_status = 404

    def __init__(self, kind: str, name: str, message: str | None = None) -> None:
        super().__init__(message or f"{kind} not found: no {kind} with matching name '{name}'")
        self.kind = kind
        self.name = name


class Conflict(VmkitError):
    """An object of `kind` named `name` is in the way (already exists, in use, ...)."""

    exit_code = 4
    http_status = 409

    def __init__(self, kind: str, name: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.name = name


class WrongState(VmkitError):
    """The object is in `state`; the operation needs `required`."""

    exit_code = 5
    http_status = 409

    def __init__(self, message: str, *, state: str = "", required: str = "") -> None:
        super().__init__(message)
        self.state = state
        self.required = required


class QemuError(VmkitError):
    """QEMU failed or refused."""


class LaunchFailed(QemuError):
    """QEMU exited at launch; carries its argv, exit code and the tail of stderr."""

    def __init__(self, argv: Sequence[str], rc: int | None, stderr: str) -> None:
        tail = "\n".join(stderr.strip().splitlines()[-10:])
        super().__init__(f"QEMU failed to start (exit code {rc}): {tail or 'no message'}")
        self.argv = list(argv)
        self.rc = rc
        self.stderr = stderr


class QmpError(QemuError):
    """A QMP command failed; `error_class` and `desc` are QEMU's."""

    def __init__(self, command: str, error_class: str, desc: str) -> None:
        super().__init__(f"QMP command '{command}' failed: {error_class}: {desc}")
        self.command = command
        self.error_class = error_class
        self.desc = desc


class StorageError(VmkitError):
    """A storage operation failed."""


class CommandFailed(StorageError):
    """An external storage command (qemu-img, ...) exited non-zero."""

    def __init__(self, argv: Sequence[str], rc: int, stderr: str, *, what: str = "") -> None:
        """`what` names the operation for the user ("clone volume 'a' into 'b'"): the message
        is then "cannot WHAT: " and stderr's last line instead of the whole command's."""
        if what:
            why = stderr.strip().splitlines()[-1:] or [f"{argv[0]} exit code {rc}"]
            super().__init__(f"cannot {what}: {why[0]}")
        else:
            super().__init__(f"{argv[0]} failed (exit code {rc}): {stderr.strip()}")
        self.argv = list(argv)
        self.rc = rc
        self.stderr = stderr


class NetworkError(VmkitError):
    """A network operation failed."""


class NetlinkFailed(NetworkError):
    """A netlink request failed with the kernel's errno."""

    def __init__(self, op: str, errno: int, detail: str = "") -> None:
        super().__init__(f"netlink {op} failed (errno {errno}){': ' + detail if detail else ''}")
        self.op = op
        self.errno = errno


class FirewallFailed(NetworkError):
    """nft refused a ruleset."""

    def __init__(self, ruleset: str, stderr: str) -> None:
        super().__init__(f"nft failed: {stderr.strip()}")
        self.ruleset = ruleset
        self.stderr = stderr
