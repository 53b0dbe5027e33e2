"""Imports point down the layers of DESIGN.md only (lazy imports inside functions count too)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "vmkit"

RANK = {
    "errors": 0,
    "lazy": 0,
    "model": 1,
    "xml": 2,
    "qemu": 3,
    "storage": 3,
    "net": 3,
    "host": 3,
    "state": 3,
    "guest": 3,
    "engine": 4,
    "cli": 5,
    "api": 5,
    "web": 5,
}


def _layer(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "vmkit" or len(parts) < 2:
        return None
    return parts[1] if parts[1] in RANK else None


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
    return found


FILES = sorted(p for p in SRC.rglob("*.py") if p.relative_to(SRC).parts[0] in RANK)


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(SRC)))
def test_imports_point_down(path: Path) -> None:
    own = path.relative_to(SRC).parts[0]
    bad = []
    for line, module in _imports(path):
        other = _layer(module)
        if other is None or other == own:
            continue
        if RANK[other] >= RANK[own]:
            bad.append(
                f"line {line}: {own} (rank {RANK[own]}) imports {module} (rank {RANK[other]})"
            )
    assert not bad, "\n".join(bad)


def test_every_package_has_a_rank() -> None:
    packages = {p.name for p in SRC.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert packages <= set(RANK), packages - set(RANK)
