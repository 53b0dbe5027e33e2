"""Lazy package facades (PEP 562): a package's public names, imported on first use.

A facade that imports every module of its package makes importing any one of them pay for all
(the CLI's start-up); `lazy_getattr` gives the package a `__getattr__` that imports only the
module a name lives in. Imports nothing of vmkit.
"""

from __future__ import annotations

import importlib

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping


def lazy_getattr(package: str, homes: Mapping[str, str]) -> Callable[[str], object]:
    """A module `__getattr__` for `package`: name -> getattr(package.homes[name], name)."""

    def __getattr__(name: str) -> object:
        home = homes.get(name)
        if home is None:
            raise AttributeError(f"module '{package}' has no attribute '{name}'")
        return getattr(importlib.import_module(f"{package}.{home}"), name)

    return __getattr__
