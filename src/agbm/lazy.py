"""Packages whose names are imported when first used (PEP 562), so that importing one
module of a package does not load what its siblings need (torch above all): `import
agbm.labels.frame` reads no chip tensors, and a compose worker loads no model code.

A package's `__init__` lists its public names by module (`lazy_package`); `from agbm.data
import ChipDataset` and `agbm.data.ChipDataset` work as with eager imports, and each name is
imported once.
"""

from __future__ import annotations

import importlib
import sys
import types
from collections.abc import Iterable, Mapping
from typing import Any


class _LazyPackage(types.ModuleType):
    """A package whose exports (`_exports`: name -> module) are imported on first use.

    The import system binds a submodule to its package under its name when it first loads
    it. Where an export has a submodule's name (the function `agbm.data.normalise` of the
    module `agbm.data.normalise`), the export keeps that name, as an eager `from
    agbm.data.normalise import normalise` in the package would: a sibling that imports the
    module first does not change what the package's name means."""

    def __getattr__(self, name: str) -> Any:
        exports = self.__dict__.get("_exports", {})
        if name not in exports:
            raise AttributeError(f"module {self.__name__!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(exports[name]), name)
        setattr(self, name, value)  # imported once: later reads find it
        return value

    def __setattr__(self, name: str, value: Any) -> None:
        module = f"{self.__name__}.{name}"
        if isinstance(value, types.ModuleType) and value.__name__ == module:
            if self.__dict__.get("_exports", {}).get(name) == module:
                return  # the submodule's binding: the export of its name stands
        super().__setattr__(name, value)

    def __dir__(self) -> list[str]:
        return sorted({*self.__dict__, *self.__dict__.get("_exports", {})})


def lazy_package(package: str, exports: Mapping[str, Iterable[str]]) -> list[str]:
    """Make `package` import its public names on first use; returns its `__all__`.

    package: the package's `__name__` (its `__init__` calls this).
    exports: each submodule's name, relative to `package`, and the names it gives, e.g.
        `{"dataset": ["ChipDataset", "Sample"], ...}`.
    """
    module = sys.modules[package]
    module.__class__ = _LazyPackage
    where = {name: f"{package}.{sub}" for sub, names in exports.items() for name in names}
    module.__dict__["_exports"] = where
    return sorted(where)
