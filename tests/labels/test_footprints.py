"""One footprint mean, two backends: on a chip tensor (training, calibration) and on a map
file (`evaluate --labels`) the same labels on the same pixels get the same means.

How close they must be is derived, not guessed. Both are weighted means of the pixels under
a disc, sum(w_i v_i) / sum(w_i); with the weights normalised, the chip's sub-sampled `ws`
and the map's exact `we` differ by `eps` = sum|ws - we| / 2, and then the means differ by at
most `eps` times the spread (max - min) of the values under the disc (the positive and the
negative weight errors each sum to `eps`). `eps` is the sub-sampling's error: measured
against discs 512 vertices a quarter round on 4,000 random centres, it was at most 0.047
for radii of 0.5 to 3 px (5 to 30 m plots on 10 m pixels; the smallest discs err most) and
0.017 for GEDI's 12.5 m (1.25 px); the map's polygon disc (`QUAD_SEGMENTS`) lacks 4e-4 of
the circle's area, which changes it by less than 0.001. `EPS` and `EPS_GEDI` hold it, a
little over, and `test_the_chip_backends_disc_weights_are_the_exact_shares_within_eps`
keeps it measured (on 400 discs).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
import shapely
import torch
from affine import Affine
from pyproj import Transformer

from agbm.data.geotiff import write_geotiff
from agbm.labels.chips import label_array, place_labels
from agbm.labels.footprints import disc_weights, footprint_means_on_chip, footprint_means_on_map
from agbm.labels.frame import labels_frame

UTM = "EPSG:32635"
X0, Y0 = 500000.0, 6800000.0  # the chip's top-left corner
PIXEL_M = 10.0
SIZE = 32
#: The sub-sampling's largest error of a disc's normalised weights (half their L1
#: distance), for radii of 0.5 to 3 px and for GEDI's 1.25 px (module docstring).
EPS, EPS_GEDI = 0.05, 0.02


def _discs(rng: np.random.Generator, n: int, radius_px: np.ndarray) -> np.ndarray:
    """`[n, 5]` labels (row, col, radius_px, agbd = their number, se) with centres at least
    3 px inside a `SIZE` chip, so every disc is on it."""
    rows, cols = rng.uniform(3, SIZE - 3, (2, n))
    return np.stack([rows, cols, radius_px, np.arange(n), np.ones(n)], -1)


def test_the_chip_backends_disc_weights_are_the_exact_shares_within_eps() -> None:
    rng = np.random.default_rng(0)
    radius = np.concatenate([rng.uniform(0.5, 3.0, 300), np.full(100, 1.25)])
    labels = torch.tensor(_discs(rng, len(radius), radius), dtype=torch.float32)[None]
    index, weight = (t[0].numpy() for t in disc_weights(labels, (SIZE, SIZE)))
    rows, cols = np.divmod(np.arange(SIZE * SIZE), SIZE)  # a flat index is row * SIZE + col
    pixels = shapely.box(cols, rows, cols + 1, rows + 1)
    eps = []
    for (row, col, r, *_), at, w in zip(labels[0].numpy(), index, weight, strict=True):
        sampled = np.bincount(at, w, SIZE * SIZE)
        exact = shapely.area(shapely.intersection(shapely.Point(col, row).buffer(r, 512), pixels))
        eps.append(np.abs(sampled / sampled.sum() - exact / exact.sum()).sum() / 2)
    eps = np.array(eps)
    assert eps[:300].max() <= EPS and eps[300:].max() <= EPS_GEDI


def _chip_map(path: Path, values: np.ndarray) -> Path:
    write_geotiff(path, values, UTM, Affine(PIXEL_M, 0, X0, 0, -PIXEL_M, Y0), np.nan, ["agbm"])
    return path


def _labels_at(discs: np.ndarray):
    """A labels frame (EPSG:4326) of `_discs`' centres and radii on the chip's grid."""
    x, y = X0 + discs[:, 1] * PIXEL_M, Y0 - discs[:, 0] * PIXEL_M
    lon, lat = Transformer.from_crs(UTM, "EPSG:4326", always_xy=True).transform(x, y)
    return labels_frame(lon, lat, discs[:, 3], 1.0, discs[:, 2] * PIXEL_M, None, "test")


@pytest.mark.parametrize(
    ("radius_m", "eps"), [((5.0, 30.0), EPS), ((12.5, 12.5), EPS_GEDI)], ids=["plots", "gedi"]
)
def test_the_chip_and_the_map_backends_agree_within_the_sub_sampling_error(
    tmp_path: Path, radius_m: tuple[float, float], eps: float
) -> None:
    """A chip's values written as a GeoTIFF; the labels placed on the chip by its grid (as
    `agbm chips` and `train --labels` do) and drawn on the map in metres (as `evaluate
    --labels` does). White noise is the hardest map: each pixel differs from its
    neighbours by up to the whole range."""
    rng = np.random.default_rng(1)
    values = rng.uniform(0, 300, (SIZE, SIZE)).astype(np.float32)
    discs = _discs(rng, 200, rng.uniform(*radius_m, 200) / PIXEL_M)
    on_chip, on_map = _both_backends(tmp_path, values, discs)
    assert np.isfinite(on_map).all()
    assert (np.abs(on_chip - on_map) <= eps * _spread(values, discs)).all()


def test_the_two_backends_leave_out_no_data_pixels_alike(tmp_path: Path) -> None:
    """A chip with a no-data (NaN) block, as a prediction has where nothing was observed and
    a region's map at its edges: discs across the block's edge average the pixels with data
    on both backends, and a disc wholly on the block is NaN on both. With its centre on the
    data side, at least half of a disc has data; there the two stay within `EPS` of the
    spread (measured: at most 0.022 over 1,000 such discs)."""
    rng = np.random.default_rng(2)
    values = rng.uniform(0, 300, (SIZE, SIZE)).astype(np.float32)
    values[:, : SIZE // 2] = np.nan
    discs = _discs(rng, 100, rng.uniform(0.5, 3.0, 100))
    discs[:80, 1] = SIZE / 2 + rng.uniform(0.0, 2.0, 80)  # across its edge, centre on data
    discs[80:, 1] = rng.uniform(4.0, SIZE / 2 - 4.0, 20)  # wholly on it (radius <= 3 px)
    on_chip, on_map = _both_backends(tmp_path, values, discs)
    both = np.isfinite(on_map)
    assert (np.isfinite(on_chip) == both).all() and both[:80].all() and not both[80:].any()
    assert (np.abs(on_chip[:80] - on_map[:80]) <= EPS * _spread(values, discs[:80])).all()


def _both_backends(tmp_path: Path, values: np.ndarray, discs: np.ndarray) -> tuple:
    """(chip backend's, map backend's) means of `values` (NaN: no data) over `discs`
    (`_discs`' rows), in their order: the labels placed on the chip by its grid (as `agbm
    chips` and `train --labels` do) and drawn on the map in metres (as `evaluate --labels`
    does)."""
    path = _chip_map(tmp_path / "chip.tif", values)
    labels = _labels_at(discs)
    with rasterio.open(path) as src:
        grids = {"chip": (src.crs, src.transform, src.shape)}
    placed = place_labels(labels, grids, "labels.gpkg")["chip"].sort_values("agbd")
    assert len(placed) == len(discs)
    on_chip = footprint_means_on_chip(
        torch.from_numpy(values)[None, None], torch.from_numpy(label_array(placed))[None]
    )[0].numpy()
    return on_chip, footprint_means_on_map(path, labels)


def _spread(values: np.ndarray, discs: np.ndarray) -> np.ndarray:
    """The spread (max - min) of the values with data that each disc may touch."""
    windows = [values[_window(*disc[:3])] for disc in discs]
    return np.array([np.nanmax(w) - np.nanmin(w) for w in windows])


def _window(row: float, col: float, radius: float) -> tuple[slice, slice]:
    """The pixels a disc of `radius` px centred at (`row`, `col`) may touch."""
    top, left = int(np.floor(row - radius)), int(np.floor(col - radius))
    return slice(top, int(np.floor(row + radius)) + 1), slice(left, int(np.floor(col + radius)) + 1)
