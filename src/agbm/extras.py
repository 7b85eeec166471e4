"""Optional libraries: imported when a feature that needs them runs, or named with the
`pip install` of the extra that brings them.

The core install (train, predict, predict-scene) needs none of them; `compose` (STAC
search and loading) and `region` (vector files, Dask) are extras in pyproject.toml.
"""

from __future__ import annotations

import importlib
from typing import Any

from agbm.errors import DependencyError

#: Each extra and the commands that need it, for the message.
EXTRAS = {
    "compose": "agbm compose and agbm map",
    "region": "agbm map-region and region files",
}


def require(module: str, extra: str) -> Any:
    """Import `module`, or raise a `DependencyError` naming the `pip install` of `extra`."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise DependencyError(
            f"{EXTRAS[extra]} need {module.split('.')[0]}: pip install 'agbm[{extra}]'"
        ) from None
