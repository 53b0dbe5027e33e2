"""A recording fake of qemu-img's runner seam, for unit tests of storage logic (imported by the
test modules of this folder; a module, not a conftest, so that its name is unique)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from vmkit.storage.qemuimg import Completed

Handler = Callable[[list[str]], Completed]


@dataclass
class FakeRunner:
    """Records every argv; answers with `handler` (default: success, empty output)."""

    handler: Handler | None = None
    calls: list[list[str]] = field(default_factory=list)
    stdout_chunks: list[str] = field(default_factory=list)

    def run(
        self, argv: Sequence[str], *, on_stdout: Callable[[str], None] | None = None
    ) -> Completed:
        args = [str(a) for a in argv]
        self.calls.append(args)
        if on_stdout is not None:
            for chunk in self.stdout_chunks:
                on_stdout(chunk)
        if self.handler is not None:
            return self.handler(args)
        return Completed(tuple(args), 0, "", "")
