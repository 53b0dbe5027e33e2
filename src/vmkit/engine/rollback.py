"""All-or-nothing host changes: do steps one by one, each with its undo; on a failure undo the
ones done, last first, and re-raise the failure (with any failed undo attached as a note).

    with Rollback() as rb:
        links.add_bridge("br0");  rb.push("delete bridge br0", lambda: links.delete("br0"))
        links.set_master("eth0", "br0");  rb.push(...)

Used by iface-bridge / iface-unbridge and router add / delete.
"""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType


class Rollback:
    """A stack of undo actions, run in reverse when the `with` block raises."""

    def __init__(self) -> None:
        self._undo: list[tuple[str, Callable[[], object]]] = []

    def push(self, what: str, undo: Callable[[], object]) -> None:
        self._undo.append((what, undo))

    def __enter__(self) -> Rollback:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None:
            return
        for what, undo in reversed(self._undo):
            try:
                undo()
            except Exception as failure:  # keep undoing; the first error is the one to report
                exc.add_note(f"rollback step '{what}' failed too: {failure}")
        self._undo.clear()
