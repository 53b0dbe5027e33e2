"""Where a pool's volumes live, and the check that keeps every volume path inside its pool.

`volume_path(pool, name)` validates the name (one file name: no '/', '..', NUL, control
characters) and refuses a name that resolves outside the pool directory (a symlink pointing
elsewhere), so that no operation on a volume can reach a file the pool does not hold.
Pure apart from resolving symlinks; creates nothing.
"""

from __future__ import annotations

import os
from pathlib import Path

from vmkit.errors import InvalidConfig
from vmkit.model.storage import Pool, check_volume_name

DEFAULT_POOL_NAME = "default"
DEFAULT_POOL_DIR = "images"
DEFAULT_POOL_MODE = 0o711  # libvirt's default for a dir pool target
DEFAULT_VOLUME_MODE = 0o600  # libvirt's default for a new volume


def pool_dir(pool: Pool) -> Path:
    """The pool's target directory as written in its definition."""
    return Path(pool.target_path)


def volume_path(pool: Pool, name: str) -> Path:
    """The path of volume `name` in `pool`, refused when it would leave the pool directory."""
    check_volume_name(name)
    base = pool_dir(pool)
    path = base / name
    real_base = Path(os.path.realpath(base))
    real = Path(os.path.realpath(path))
    if real.parent != real_base:
        raise InvalidConfig(
            f"volume '{name}' resolves to '{real}', which is outside pool '{pool.name}' "
            f"({real_base}); vmkit does not follow links out of a pool",
            xpath="/volume/name",
            value=name,
        )
    return path


def is_in_pool(pool: Pool, path: str | Path) -> bool:
    """Whether `path` names a file directly inside the pool directory (after resolving)."""
    real_base = Path(os.path.realpath(pool_dir(pool)))
    return Path(os.path.realpath(path)).parent == real_base
