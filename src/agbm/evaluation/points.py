"""Any biomass map scored against labelled points (`agbm evaluate --labels --map`).

Each label is compared with the map's mean over its footprint disc (`radius_m` around the
point), weighted by the fraction of each pixel the disc covers: the map backend of the
footprint mean (`agbm.labels.footprints.footprint_means_on_map`, exactextract's `mean`),
the same mean calibration and training take on chips. The map may be agbm's GeoTIFF, a
region's VRT or another product (ESA CCI Biomass, in degrees). Pixels without data (NaN or
the no-data value) take no part; a label with none under its disc is left out of the
scores and counted apart, and so is a label without a value (an agbd of NaN), so that one
cannot turn every score into NaN.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from agbm.errors import DataError
from agbm.io import replacing
from agbm.labels.footprints import footprint_means_on_map
from agbm.labels.frame import read_labels


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
    predicted = footprint_means_on_map(map_path, labels)
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
