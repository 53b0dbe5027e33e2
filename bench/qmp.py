"""A minimal synchronous QMP client: what a person driving bare QEMU by hand would use.

It is the floor of the lifecycle rows, so it stays as thin as possible: one unix socket, JSON
lines, events skipped, file descriptors sent with SCM_RIGHTS (for `getfd`). Not a general QMP
library: vmkit's own client lives in vmkit.qemu.qmp.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any


class QmpFailed(RuntimeError):
    """QEMU answered a command with an error, or the connection broke."""


class Qmp:
    """One QMP connection; `command()` returns the "return" value."""

    def __init__(self, path: Path, timeout: float = 10.0) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self._buf = b""
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.sock.connect(str(path))
                break
            except (FileNotFoundError, ConnectionRefusedError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.002)
        self._read_message()  # greeting
        self.command("qmp_capabilities")

    def __enter__(self) -> Qmp:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.sock.close()

    def _read_message(self) -> dict[str, Any]:
        while b"\n" not in self._buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise QmpFailed("QMP connection closed")
            self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        message: dict[str, Any] = json.loads(line)
        return message

    def command(
        self, name: str, arguments: dict[str, Any] | None = None, fds: Sequence[int] = ()
    ) -> Any:
        """Send one command (with `fds` attached) and wait for its answer; events are skipped."""
        payload: dict[str, Any] = {"execute": name}
        if arguments:
            payload["arguments"] = arguments
        data = json.dumps(payload).encode() + b"\n"
        if fds:
            socket.send_fds(self.sock, [data], list(fds))
        else:
            self.sock.sendall(data)
        while True:
            message = self._read_message()
            if "return" in message:
                return message["return"]
            if "error" in message:
                error = message["error"]
                raise QmpFailed(f"{name}: {error.get('class')}: {error.get('desc')}")
