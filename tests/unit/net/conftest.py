"""Fixtures of the net unit tests: golden files."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest


@pytest.fixture
def golden(request: pytest.FixtureRequest) -> Callable[[Path, str], None]:
    """golden(path, text): compare with the file; `--regen-golden` or VMKIT_REGEN_GOLDEN=1
    rewrites it instead (review the diff like code)."""
    regen = bool(request.config.getoption("--regen-golden", default=False))
    regen = regen or os.environ.get("VMKIT_REGEN_GOLDEN") == "1"

    def check(path: Path, text: str) -> None:
        if regen:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        assert path.exists(), f"{path} is missing; create it with VMKIT_REGEN_GOLDEN=1"
        assert text == path.read_text(), f"{path} differs; rerun with VMKIT_REGEN_GOLDEN=1"

    return check
