"""Monthly Sentinel-1 backscatter as the BioMassters chips hold it: VV and VH, ascending then
descending, the month's mean in dB.

The Planetary Computer's `sentinel-1-rtc` holds radiometrically terrain-corrected gamma0 in
linear power (`vv`, `vh`, float32, -32768 = no data), one item per slice of a pass. The
slices of one pass (same solar day and relative orbit) are mosaicked into one acquisition, so
their overlap is not counted twice. Per orbit direction (`sat:orbit_state`) and pixel, the
month's acquisitions that observe the pixel are averaged in linear power and the mean
converted to dB afterwards (averaging dB would be a geometric mean, biased low). A
direction with no acquisition over a pixel that month is -9999. Items without both VV and
VH (single-polarisation or HH/HV acquisitions) are left out and listed as such.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import groupby
from typing import Any

import numpy as np

from agbm.compose.catalog import require, solar_day
from agbm.data.bands import S1_BANDS, S1_NODATA

#: `sentinel-1-rtc`'s no-data value.
RTC_NODATA = -32768.0
ORBITS = ("ascending", "descending")
POLARISATIONS = ("vv", "vh")


def to_db(linear: np.ndarray) -> np.ndarray:
    """10 log10 of linear power; NaN (no observation) and non-positive power become -9999."""
    out = np.full(linear.shape, S1_NODATA, dtype=np.float32)
    valid = np.isfinite(linear) & (linear > 0)
    out[valid] = 10.0 * np.log10(linear[valid])
    return out


def load_linear(item: Any, grid: Any, patch_url: Callable[[str], str] | None) -> np.ndarray:
    """`[2, H, W]` float32 linear VV, VH of one item on `grid`, NaN = no data."""
    odc_stac = require("odc.stac")
    data = odc_stac.load(
        [item],
        bands=list(POLARISATIONS),
        geobox=grid,
        resampling="bilinear",
        stac_cfg={"*": {"assets": {"*": {"data_type": "float32", "nodata": RTC_NODATA}}}},
        patch_url=patch_url,
    )
    stack = np.stack([data[p].values[0] for p in POLARISATIONS])
    stack[stack == RTC_NODATA] = np.nan
    return stack


def passes(items: Sequence[Any]) -> list[list[Any]]:
    """The items grouped into acquisitions: the slices of one pass share its solar day
    (`solar_day`: a pass across midnight UTC stays one) and relative orbit."""

    def key(item: Any) -> tuple:
        return solar_day(item), item.properties.get("sat:relative_orbit")

    ordered = sorted(items, key=lambda i: (*key(i), i.datetime, i.id))
    return [list(group) for _, group in groupby(ordered, key=key)]


def acquisition(slices: Sequence[Any], grid: Any, patch_url: Any) -> np.ndarray:
    """`[2, H, W]` linear power of one pass: each pixel from the first slice observing it."""
    merged = np.full((len(POLARISATIONS), *grid.shape), np.nan, dtype=np.float32)
    for item in slices:
        linear = load_linear(item, grid, patch_url)
        empty = np.isnan(merged)
        merged[empty] = linear[empty]
    return merged


def mean_linear(
    items: Sequence[Any], grid: Any, patch_url: Callable[[str], str] | None
) -> np.ndarray:
    """`[2, H, W]` mean linear power per pixel over the acquisitions that observe it (NaN
    where none does), accumulated one acquisition at a time: memory holds a few images,
    however many acquisitions the month has."""
    total = np.zeros((len(POLARISATIONS), *grid.shape), dtype=np.float64)
    count = np.zeros_like(total)
    for slices in passes(items):
        linear = acquisition(slices, grid, patch_url)
        seen = np.isfinite(linear)
        total += np.where(seen, linear, 0.0)
        count += seen
    with np.errstate(invalid="ignore", divide="ignore"):
        return (total / count).astype(np.float32)  # 0 / 0: NaN, no observation


def month_s1(
    items: Sequence[Any], grid: Any, patch_url: Callable[[str], str] | None = None
) -> tuple[np.ndarray, dict[str, list[str]]]:
    """One month's `[4, H, W]` float32 dB (VV_asc, VH_asc, VV_desc, VH_desc; -9999 = none)
    and the ids of the items averaged per orbit direction (and of those left out)."""
    out = np.full((len(S1_BANDS), *grid.shape), S1_NODATA, dtype=np.float32)
    dual = [i for i in items if all(p in i.assets for p in POLARISATIONS)]
    used: dict[str, list[str]] = {}
    for index, orbit in enumerate(ORBITS):
        chosen = [i for i in dual if i.properties.get("sat:orbit_state") == orbit]
        used[orbit] = [i.id for i in chosen]
        if chosen:
            out[2 * index : 2 * index + 2] = to_db(mean_linear(chosen, grid, patch_url))
    skipped = [i.id for i in items if i.id not in {d.id for d in dual}]
    if skipped:
        used["without_vv_and_vh"] = skipped
    return out, used
