"""The `edit` / `net-edit` flow: an XML document opened in the user's editor ($VISUAL, $EDITOR,
else vi) in a private temporary file, and the edited text read back.

Must not: parse or apply the result (the engine's edit_xml does that).
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

from vmkit.errors import VmkitError


def edit_in_editor(name: str, xml: str, *, prefix: str) -> str:
    """Let the user edit `xml` as `<name>.xml` in a directory named `<prefix>...`; the new text.
    An editor that fails (non-zero exit) changes nothing: VmkitError."""
    editor = os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi"
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        path = Path(tmp) / f"{name}.xml"
        path.write_text(xml)
        rc = subprocess.call([editor, str(path)])  # noqa: S603 - the user's own editor
        if rc != 0:
            raise VmkitError(f"editor '{editor}' exited with code {rc}; nothing changed")
        return path.read_text()
