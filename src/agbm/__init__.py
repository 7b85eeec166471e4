"""agbm: forest above-ground biomass maps from Sentinel-1 + Sentinel-2 time series.

`agbm.estimate(...)` (design-based estimates from a map and field plots) is loaded when
first used, so that `import agbm` stays light.
"""

from typing import Any

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    """The lazily loaded public API: `estimate`."""
    if name == "estimate":
        from agbm.evaluation.estimate import estimate

        return estimate
    raise AttributeError(f"module 'agbm' has no attribute {name!r}")
