"""Any biomass map scored against labelled points (`agbm evaluate --labels --map`).

Each label is compared with the map's mean over its footprint disc (`radius_m` around the
point), weighted by the fraction of each pixel the disc covers: exactextract's `mean`, so
a disc across pixel edges takes each pixel by its share. The map may be agbm's GeoTIFF, a
region's VRT or another product (ESA CCI Biomass, in degrees): the discs are drawn in
metres, in the map's CRS when it is projected, else in the labels' UTM zone and then
reprojected onto the map. Pixels without data (NaN or the no-data value) take no part; a
label with none under its disc is left out of the scores and counted apart, and so is a
label without a value (an agbd of NaN), so that one cannot turn every score into NaN.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from rasterio.errors import RasterioError

from agbm.compose.grid import utm_epsg
from agbm.data.geotiff import open_map
from agbm.errors import DataError, reason
from agbm.extras import require
from agbm.io import replacing
from agbm.labels.frame import read_labels

#: Vertices per quarter circle of a footprint disc: its area is within 1e-4 of pi r^2.
QUAD_SEGMENTS = 32


@dataclass(frozen=True)
class PointScores:
    """A map against labels: RMSE, bias (map minus label) and R^2 of the footprint means, in
    t/ha, over the `n` labels the map covers (`missing` more it does not; `unlabelled` more
    have no value, an agbd of NaN)."""

    rmse: float
    bias: float
    r2: float
    n: int
    missing: int
    unlabelled: int = 0


def footprints(labels: Any, crs: Any) -> Any:
    """The labels' footprint discs (GeoSeries) in `crs`, drawn in metres (module docstring)."""
    pyproj = require("pyproj", "labels")
    target = pyproj.CRS.from_user_input(crs)
    if target.is_projected:
        return labels.to_crs(target).buffer(labels["radius_m"].to_numpy(), QUAD_SEGMENTS)
    centre = labels.geometry.union_all().centroid
    local = labels.to_crs(f"EPSG:{utm_epsg(centre.x, centre.y)}")
    discs = local.buffer(labels["radius_m"].to_numpy(), QUAD_SEGMENTS)
    return discs.to_crs(target)


def footprint_means(map_path: Path | str, labels: Any) -> np.ndarray:
    """The map's coverage-weighted mean over each label's footprint (NaN where it has no
    data there), in the labels' order."""
    exactextract = require("exactextract", "labels")
    geopandas = require("geopandas", "labels")
    with open_map(map_path) as src:
        if src.crs is None:
            raise DataError(f"{map_path}: the map has no CRS, so the labels cannot be placed on it")
        crs = src.crs.to_wkt()
        discs = geopandas.GeoDataFrame(geometry=footprints(labels, crs), crs=crs)
        if discs.empty:
            return np.zeros(0)
        table = exactextract.exact_extract(agbm_band(src), discs, ["mean"], output="pandas")
    return table["mean"].to_numpy(np.float64)


def agbm_band(src: Any) -> Any:
    """The AGBM band (band 1) of an open map as exactextract's raster: a map with bounds or
    the spread has more bands, which exactextract would otherwise sum each. A read that
    fails (a truncated file) is a one-line `DataError` naming the map."""
    exactextract = require("exactextract", "labels")

    class Band(exactextract.raster.RasterioRasterSource):
        def read_window(self, x0: int, y0: int, nx: int, ny: int) -> Any:
            try:
                return super().read_window(x0, y0, nx, ny)
            except RasterioError as exc:
                fault = f"{src.name}: unreadable or truncated map ({reason(exc)})"
                raise DataError(fault) from None

    return Band(src, band_idx=1)


def score(agbd: np.ndarray, predicted: np.ndarray) -> PointScores:
    """`PointScores` of `predicted` footprint means against the labels' `agbd` (a NaN agbd:
    skipped and counted as `unlabelled`)."""
    labelled = ~np.isnan(agbd)
    valid = labelled & np.isfinite(predicted)
    truth, error = agbd[valid], predicted[valid] - agbd[valid]
    n, missing, unlabelled = (
        int(valid.sum()),
        int((labelled & ~valid).sum()),
        int((~labelled).sum()),
    )
    if n == 0:
        return PointScores(math.nan, math.nan, math.nan, 0, missing, unlabelled)
    spread = float(((truth - truth.mean()) ** 2).sum())
    r2 = 1 - float((error**2).sum()) / spread if spread > 0 else math.nan
    rmse = math.sqrt(float((error**2).mean()))
    return PointScores(rmse, float(error.mean()), r2, n, missing, unlabelled)


def evaluate_points(
    map_path: Path | str, labels_path: Path | str, per_point: Path | str | None = None
) -> PointScores:
    """Score the map at `map_path` against the labels file at `labels_path`; `per_point`, if
    given, is a CSV written with one row per label (its columns, `predicted`, `error`)."""
    labels = read_labels(labels_path, skip_missing_agbd=True)
    predicted = footprint_means(map_path, labels)
    scores = score(labels["agbd"].to_numpy(np.float64), predicted)
    if scores.n == 0:  # every score would be NaN: say why instead
        raise DataError(
            f"{map_path}: none of the {scores.missing:,} labels of {labels_path} falls on the "
            "map's data (outside it or on no-data: are they of this place?)"
        )
    if per_point is not None:
        table = labels.drop(columns="geometry").assign(
            lon=labels.geometry.x, lat=labels.geometry.y, predicted=predicted,
            error=predicted - labels["agbd"].to_numpy(),
        )  # fmt: skip
        with replacing(Path(per_point)) as tmp:
            table.to_csv(tmp, index=False, float_format="%.4f")
    return scores
