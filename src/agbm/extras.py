"""Optional libraries: imported when a feature that needs them runs, or named with the
`pip install` of the extra that brings them.

The core install (train, predict, predict-scene) needs none of them; `compose` (STAC
search and loading), `region` (vector files, Dask), `labels` (GEDI HDF5, points files,
zonal means) and `gedi` (NASA Earthdata downloads) are extras in pyproject.toml.
"""

from __future__ import annotations

import importlib
from typing import Any

from agbm.errors import DependencyError

#: Each extra and the commands that need it, for the message.
EXTRAS = {
    "compose": "agbm compose and agbm map",
    "region": "agbm map-region and region files",
    "labels": "agbm labels, agbm chips, agbm evaluate --labels and sparse-label training",
    "gedi": "agbm labels --download (NASA Earthdata)",
}


def require(module: str, extra: str) -> Any:
    """Import `module`, or raise a `DependencyError` naming the `pip install` of `extra`."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise DependencyError(
            f"{EXTRAS[extra]} need {module.split('.')[0]}: pip install 'agbm[{extra}]'"
        ) from None
