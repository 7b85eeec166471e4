"""Monthly Sentinel-2 as the BioMassters chips hold it: the ten L2A reflectance bands x 10,000
(B2, B3, B4, B5, B6, B7, B8, B8A, B11, B12) at 10 m and a cloud probability, from the
month's least cloudy acquisition over the area.

Acquisition: the items of one solar day (one satellite pass; an area across tile edges has
several tiles). The least cloudy is the one with the smallest share of the area that is not
clear ground: no data, defective, cloud, thin cirrus or cloud shadow in its scene
classification (SCL), measured over the area itself, not the tile's `eo:cloud_cover`.

Cloud probability: the challenge's came from a cloud detector (0..100); public L2A items
carry Sen2Cor's scene classification instead, so each class is given the middle of the
probability range Sen2Cor assigns it (`SCL_CLOUD`; docs/compose.md). Pixels without data
are 255, with all ten bands 0, as in the chips.

Offset: from processing baseline 04.00 (25 January 2022) L2A digital numbers carry
BOA_ADD_OFFSET = +1000; it is removed (`boa_offset`) so that every year is on the scale of
the challenge's 2016-2021 data. Earth Search items whose `earthsearch:boa_offset_applied`
is true have had it removed already.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import groupby
from typing import Any

import numpy as np

from agbm.compose.catalog import require, solar_day
from agbm.data.bands import S2_BANDS, S2_NODATA_CLOUD
from agbm.errors import DataError

#: Asset names of the ten bands, in the chips' order, and of the scene classification.
PLANETARY_COMPUTER_ASSETS = (
    ("B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B11", "B12"),
    "SCL",
)
EARTH_SEARCH_ASSETS = (
    ("blue", "green", "red", "rededge1", "rededge2", "rededge3", "nir", "nir08", "swir16",
     "swir22"),
    "scl",
)  # fmt: skip
#: Cloud probability (0..100; 255 = no data) for each Sen2Cor scene class 0..11: no data,
#: saturated or defective, dark area, cloud shadow, vegetation, not vegetated, water,
#: unclassified (cloud low probability, 0-35 %), cloud medium probability (35-65 %), cloud
#: high probability (65-100 %), thin cirrus, snow.
SCL_CLOUD = np.array([255, 255, 0, 0, 0, 0, 0, 17, 50, 83, 50, 0], dtype=np.uint16)
#: Classes that are not clear ground, for choosing the least cloudy acquisition.
NOT_CLEAR = np.array([1, 1, 0, 1, 0, 0, 0, 0, 1, 1, 1, 0], dtype=bool)
CLOUDS = (8, 9, 10)
#: The offset baseline 04.00 adds to every L2A digital number.
BOA_ADD_OFFSET = 1000


def asset_names(item: Any) -> tuple[tuple[str, ...], str]:
    """The item's band and scene-classification asset names (Planetary Computer or Earth
    Search naming)."""
    for bands, scl in (PLANETARY_COMPUTER_ASSETS, EARTH_SEARCH_ASSETS):
        if scl in item.assets and all(b in item.assets for b in bands):
            return bands, scl
    raise DataError(
        f"item {item.id}: no Sentinel-2 L2A assets agbm knows (B02..B12 and SCL, or "
        "blue..swir22 and scl)"
    )


def boa_offset(item: Any) -> int:
    """The offset to subtract from the item's digital numbers: 1000 from baseline 04.00 on,
    unless the catalog says it removed it already."""
    baseline = item.properties.get("s2:processing_baseline")
    if baseline is None:
        raise DataError(f"item {item.id}: no s2:processing_baseline, so its offset is unknown")
    if item.properties.get("earthsearch:boa_offset_applied", False):
        return 0
    return BOA_ADD_OFFSET if float(baseline) >= 4.0 else 0


def _load(item: Any, names: Sequence[str], grid: Any, patch_url: Any) -> np.ndarray:
    """`[bands, H, W]` uint16 of one item's named assets on `grid`, 0 = no data."""
    odc_stac = require("odc.stac")
    data = odc_stac.load(
        [item],
        bands=list(names),
        geobox=grid,
        resampling={"SCL": "nearest", "scl": "nearest", "*": "bilinear"},
        stac_cfg={"*": {"assets": {"*": {"data_type": "uint16", "nodata": 0}}}},
        patch_url=patch_url,
    )
    return np.stack([data[name].values[0] for name in names]).astype(np.uint16, copy=False)


def _fill_first(mosaic: np.ndarray, filled: np.ndarray, tile: np.ndarray) -> None:
    """Add one tile `[bands, H, W]` (its scene classes last) to an acquisition's mosaic:
    its pixels with data go where no earlier tile of the day has put any."""
    take = (tile[-1] > 0) & ~filled
    mosaic[:, take] = tile[:, take]
    filled |= take


def acquisitions(items: Sequence[Any]) -> list[list[Any]]:
    """The month's items grouped by solar day (`solar_day`: one pass, even across midnight
    UTC), oldest first."""
    ordered = sorted(items, key=lambda i: (solar_day(i), i.datetime, i.id))
    return [list(day) for _, day in groupby(ordered, key=solar_day)]


def not_clear_fraction(scl: np.ndarray) -> float:
    """Share of the area without clear ground (see `NOT_CLEAR`; no data counts too)."""
    return float(NOT_CLEAR[np.minimum(scl, 11)].mean())


def scene_classes(day: Sequence[Any], grid: Any, patch_url: Any) -> np.ndarray:
    """One acquisition's scene classification `[H, W]` on `grid` (0 = no data), its tiles
    mosaicked as `reflectance` mosaics them."""
    mosaic = np.zeros((1, *grid.shape), dtype=np.uint16)
    filled = np.zeros(grid.shape, dtype=bool)
    for item in day:
        _fill_first(mosaic, filled, _load(item, [asset_names(item)[1]], grid, patch_url))
    return mosaic[0]


def reflectance(day: Sequence[Any], grid: Any, patch_url: Any) -> np.ndarray:
    """One acquisition's `[11, H, W]` uint16: the ten bands, offset removed, and the cloud
    probability; no-data pixels all 0 with cloud 255. Its tiles are read one at a time
    (each has its own offset) into one mosaic: each pixel from the first tile with data."""
    merged = np.zeros((len(S2_BANDS), *grid.shape), dtype=np.uint16)  # 10 bands + SCL
    filled = np.zeros(grid.shape, dtype=bool)
    for item in day:
        bands, scl = asset_names(item)
        stack = _load(item, [*bands, scl], grid, patch_url)
        offset, values = boa_offset(item), stack[:-1]
        if offset:
            dark = values <= offset  # no data (0), and reflectance at or below 0
            values -= offset
            values[dark] = 0
        _fill_first(merged, filled, stack)
    merged[-1] = SCL_CLOUD[np.minimum(merged[-1], 11)]
    merged[:-1, merged[-1] == S2_NODATA_CLOUD] = 0
    return merged


def block_scores(scl: np.ndarray, block: int | None) -> np.ndarray:
    """The not-clear share (`NOT_CLEAR`) of each block of `block` pixels of a scene
    classification `[H, W]`, on a lattice from its top-left (edge blocks cut short):
    `[rows, cols]`; the whole area as one block when `block` is None."""
    bad = NOT_CLEAR[np.minimum(scl, 11)].astype(np.float64)
    if block is None:
        return np.array([[bad.mean()]])
    rows, cols = (-(-n // block) for n in bad.shape)
    sums = np.add.reduceat(
        np.add.reduceat(bad, np.arange(0, bad.shape[0], block), 0),
        np.arange(0, bad.shape[1], block),
        1,
    )
    counts = np.add.reduceat(
        np.add.reduceat(np.ones_like(bad), np.arange(0, bad.shape[0], block), 0),
        np.arange(0, bad.shape[1], block),
        1,
    )
    return (sums / counts).reshape(rows, cols)


def month_s2(
    items: Sequence[Any],
    grid: Any,
    patch_url: Callable[[str], str] | None = None,
    block: int | None = None,
) -> tuple[np.ndarray, dict[str, Any]]:
    """One month's `[11, H, W]` uint16 from its least cloudy acquisition (all 0 with cloud
    255 when there is none) and a record of what was used.

    The choice is made over the whole area (`block` None) or, for a region, per block of
    `block` pixels of a lattice from the grid's top-left: a region's tiles start on that
    lattice, so every block picks the same day whatever tile composes it, and the map's
    inputs do not depend on the tiling."""
    days = acquisitions(items)
    if not days:
        empty = np.zeros((len(S2_BANDS), *grid.shape), dtype=np.uint16)
        empty[-1] = S2_NODATA_CLOUD
        return empty, {"items": [], "date": None}
    scores = np.stack([block_scores(scene_classes(d, grid, patch_url), block) for d in days])
    chosen = scores.argmin(axis=0)  # [rows, cols]: the day of each block
    side = block or max(grid.shape)
    per_pixel = np.kron(chosen, np.ones((side, side), dtype=chosen.dtype))[
        : grid.shape[0], : grid.shape[1]
    ]
    out = np.zeros((len(S2_BANDS), *grid.shape), dtype=np.uint16)
    for index in np.unique(chosen):
        take = per_pixel == index
        out[:, take] = reflectance(days[index], grid, patch_url)[:, take]
    used = [days[i] for i in np.unique(chosen)]
    observed = out[-1] != S2_NODATA_CLOUD
    cloudy = np.isin(out[-1], SCL_CLOUD[list(CLOUDS)]) & observed
    record = {
        "items": [i.id for day in used for i in day],
        "date": solar_day(days[np.bincount(chosen.ravel()).argmax()][0]).isoformat(),
        "not_clear_fraction": round(float(np.take_along_axis(scores, chosen[None], 0).mean()), 4),
        "cloud_fraction": round(float(cloudy.sum() / max(observed.sum(), 1)), 4),
        "boa_offset_removed": [boa_offset(i) for day in used for i in day],
        "candidates": [solar_day(d[0]).isoformat() for d in days],
    }
    if block is not None:
        record["block"] = block
        record["dates_by_block"] = [[solar_day(days[i][0]).isoformat() for i in r] for r in chosen]
    return out, record
