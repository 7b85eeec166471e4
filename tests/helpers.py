"""Helpers shared by the tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio


def write_tif(path: Path, array: np.ndarray, nodata: float | None = None) -> None:
    """Write `[bands, H, W]` as an (ungeoreferenced) GeoTIFF."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=array.shape[2],
        height=array.shape[1],
        count=array.shape[0],
        dtype=array.dtype.name,
        nodata=nodata,
    ) as dst:
        dst.write(array)
