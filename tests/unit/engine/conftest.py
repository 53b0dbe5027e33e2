"""Fixtures shared by the engine unit tests.

ctx    a Context on an empty store under tmp_path, closed afterwards (a test module may define
       its own `ctx`, which wins)
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from vmkit.engine import pools
from vmkit.engine.context import Context
from vmkit.state.paths import Paths


@pytest.fixture
def ctx(tmp_path: Path) -> Iterator[Context]:
    ctx = Context.open(Paths(tmp_path / "lib", tmp_path / "run", tmp_path / "cache"))
    yield ctx
    ctx.close()


@pytest.fixture
def pool(ctx: Context, tmp_path: Path) -> Path:
    """Active dir pool 'p' at tmp_path/p."""
    pools.define_pool(ctx, pools.pool_from_args("p", "dir", str(tmp_path / "p")))
    pools.start(ctx, "p", build=True)
    return tmp_path / "p"
