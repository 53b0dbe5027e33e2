"""Small JSON cache files of the host layer (QEMU introspection, KVM verdict).

A cache entry is `{"key": {...}, "value": {...}}`; it is used only when its key equals the key
the caller computes now (kernel release, binary mtime, ...), so a stale entry is never believed.
Caches are best effort: an unreadable or unwritable file means "not cached", never an error.
Writes are atomic (temporary file + rename) so concurrent vmkit processes never read half a file.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

FORMAT = 1


def load_entry(path: Path | None, key: dict[str, Any], section: str = "") -> dict[str, Any] | None:
    """The cached value stored under `key` (in `section` of the file), or None."""
    if path is None:
        return None
    try:
        with path.open(encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        return None
    entry = data.get("entries", {}).get(section) if isinstance(data.get("entries"), dict) else None
    if not isinstance(entry, dict) or entry.get("key") != key:
        return None
    value = entry.get("value")
    return value if isinstance(value, dict) else None


def store_entry(
    path: Path | None, key: dict[str, Any], value: dict[str, Any], section: str = ""
) -> None:
    """Remember `value` under `key` in `section`, keeping the file's other sections."""
    if path is None:
        return
    entries: dict[str, Any] = {}
    try:
        with path.open(encoding="utf-8") as f:
            old = json.load(f)
        if isinstance(old, dict) and old.get("format") == FORMAT:
            entries = dict(old.get("entries") or {})
    except (OSError, ValueError):
        pass
    entries[section] = {"key": key, "value": value}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump({"format": FORMAT, "entries": entries}, f, separators=(",", ":"))
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise
    except OSError:
        return
