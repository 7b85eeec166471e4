"""`agbm compose`: the 12 monthly Sentinel-1 and Sentinel-2 images of a place and year on one
10 m grid, in the files `agbm predict-scene` reads.

Writes into `out`:

* `S1.tif`: 48 float32 bands, month-major, 12 x (VV_asc, VH_asc, VV_desc, VH_desc), dB,
  -9999 where there is no acquisition;
* `S2.tif`: 132 uint16 bands, month-major, 12 x (B2, B3, B4, B5, B6, B7, B8, B8A, B11,
  B12, CLP): reflectance x 10,000 and cloud probability 0..100, 255 = no data;
* `compose.json`: the grid, band order and units, and per month the items used, their
  dates and the cloud fraction, so that a map can be traced back to its scenes.

Months run from September of `year - 1` (00) to August of `year` (11). Each month is
written to `out/months/` as soon as it is composed, so an interrupted run resumes where it
stopped; the two stacks are made from the months at the end.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from tqdm import tqdm

from agbm.compose.catalog import (
    PLANETARY_COMPUTER,
    S1_COLLECTION,
    S2_COLLECTION,
    open_catalog,
    search,
)
from agbm.compose.grid import grid_for_bbox, grid_like, lonlat_bounds
from agbm.compose.s1 import month_s1
from agbm.compose.s2 import month_s2
from agbm.data.bands import MONTH_NAMES, MONTHS, SENSORS, Sensor
from agbm.data.calendar import YEAR_TAG, check_year, year_months, year_span
from agbm.data.geotiff import geotiff_profile, geotiff_writer, write_geotiff
from agbm.errors import AgbmError, DataError, reason
from agbm.io import claim_record, output_folder, remove_stale_temporaries, write_record

SIDECAR = "compose.json"
#: What the months folder was composed for (`run_record`).
MANIFEST = "manifest.json"
UNITS = {
    "S1": "backscatter in dB (gamma0 RTC, mean of the month in linear power); -9999 = none",
    "S2": "L2A reflectance x 10000 (BOA offset removed); CLP: cloud probability 0..100 from "
    "the scene classification, 255 = no data",
}


@dataclass(frozen=True)
class Composed:
    """What `compose` wrote."""

    s1: Path
    s2: Path
    sidecar: Path
    shape: tuple[int, int]
    crs: str


def band_names(sensor: Sensor) -> list[str]:
    """The stack's band names, month-major: "00 September VV_asc", ..."""
    return [f"{m:02d} {MONTH_NAMES[m]} {b}" for m in range(MONTHS) for b in sensor.bands]


def _write(path: Path, array: np.ndarray, grid: Any, sensor: Sensor) -> None:
    """One composed month on `grid`, tiled (the stacks are read by window)."""
    write_geotiff(path, array, grid.crs.to_wkt(), grid.affine, sensor.nodata, tiled=True)


def month_file(folder: Path, satellite: str, month: int) -> Path:
    """A month's composed S1 or S2 file in the months folder."""
    return folder / f"{satellite}_{month:02d}.tif"


def record_file(folder: Path, month: int) -> Path:
    """A month's record, written last: a month that has one is done."""
    return folder / f"{month:02d}.json"


def compose_month(
    folder: Path,
    month: int,
    found: dict[str, list[Any]],
    grid: Any,
    patch: dict[str, Any],
    s2_block: int | None = None,
) -> dict[str, Any]:
    """Compose and write one month (its record last: a month with a record is done); S2's
    acquisition is chosen per block of `s2_block` pixels, or over the whole grid."""
    record: dict[str, Any] = {"month": f"{month:02d} {MONTH_NAMES[month]}"}
    s2 = functools.partial(month_s2, block=s2_block)
    for sensor, make in zip(SENSORS, (month_s1, s2), strict=True):
        array, record[sensor.name] = make(found[sensor.name], grid, patch[sensor.name])
        _write(month_file(folder, sensor.name, month), array, grid, sensor)
    write_record(record_file(folder, month), record)
    return record


def _stack(folder: Path, sensor: Sensor, out: Path, grid: Any, year: int) -> None:
    """The 12 month files of `sensor` as one month-major stack, named and described, tagged
    with its `year` (which the maps made from it carry on)."""
    crs, count = grid.crs.to_wkt(), MONTHS * sensor.count
    profile = geotiff_profile(
        grid.shape, count, sensor.dtype, crs, grid.affine, sensor.nodata, True
    )
    tags = {
        "AGBM_BAND_ORDER": f"month-major: 12 months (00 = September) x ({', '.join(sensor.bands)})",
        "AGBM_UNITS": UNITS[sensor.name],
        YEAR_TAG: str(year),
    }
    with geotiff_writer(out, profile, band_names(sensor), tags) as dst:
        for month in range(MONTHS):
            with rasterio.open(month_file(folder, sensor.name, month)) as src:
                first = month * sensor.count + 1
                dst.write(src.read(), list(range(first, first + sensor.count)))


def search_year(
    catalogs: dict[str, Any], bounds: tuple[float, ...], year: int, require_data: bool = True
) -> list[dict[str, list[Any]]]:
    """Per month, the S1 and S2 items over `bounds`; a year with none is a `DataError`
    (unless not `require_data`: a region's tile over the sea may have none)."""
    collections = {"S1": S1_COLLECTION, "S2": S2_COLLECTION}
    found = [
        {s: search(catalogs[s], collections[s], bounds, *span) for s in ("S1", "S2")}
        for span in year_months(year)
    ]
    if require_data and not any(month[s] for month in found for s in month):
        raise no_imagery(bounds, year, catalogs["S1"].url)
    return found


def no_imagery(bounds: Sequence[float], year: int, url: str) -> DataError:
    """The error of a year with no acquisition at all over `bounds` (lon/lat) in `url`."""
    start, end = year_span(year)
    return DataError(
        f"no Sentinel-1 or Sentinel-2 acquisition over {[round(b, 4) for b in bounds]} in "
        f"`year` {year} ({start:%Y-%m-%d} to {end - dt.timedelta(days=1):%Y-%m-%d}) in {url}"
    )


def check_imagery(
    catalog: str | Path, s2_catalog: str | Path | None, bounds: Sequence[float], year: int
) -> None:
    """A one-line `DataError` unless the catalogs (Sentinel-2 from `s2_catalog` when given)
    hold an acquisition over `bounds` (lon/lat) in `year`: a region's tiles compose without
    requiring any (a tile over the sea has none), so a year with no imagery at all is
    refused here, before any tile, at the cost of one item asked per mission."""
    check_year(year)
    opened = open_catalog(catalog)
    catalogs = {"S1": opened, "S2": open_catalog(s2_catalog) if s2_catalog else opened}
    collections = {"S1": S1_COLLECTION, "S2": S2_COLLECTION}
    box = tuple(bounds)
    if not any(search(catalogs[s], collections[s], box, *year_span(year), 1) for s in catalogs):
        raise no_imagery(bounds, year, opened.url)


def run_record(
    grid: Any, year: int, catalogs: dict[str, Any], s2_block: int | None = None
) -> dict[str, Any]:
    """What a months folder is composed for: its months are only valid for these."""
    return {
        "s2_block": s2_block,
        "year": year,
        "crs": grid.crs.to_wkt(),
        "transform": list(grid.affine)[:6],
        "shape": list(grid.shape),
        "catalog": catalogs["S1"].url,
        "s2_catalog": catalogs["S2"].url,
    }


def compose_months(
    folder: Path,
    found: list[dict[str, list[Any]]],
    grid: Any,
    catalogs: dict,
    progress: bool,
    s2_block: int | None = None,
) -> list[dict[str, Any]]:
    """Every month's files and record, composing those not done yet; returns the records."""
    patch = {s: catalogs[s].patch_url for s in catalogs}
    records = []
    for month in tqdm(range(MONTHS), desc="compose", unit="month", disable=not progress):
        record_path = record_file(folder, month)
        if record_path.is_file():
            records.append(json.loads(record_path.read_text()))
            continue
        try:
            records.append(compose_month(folder, month, found[month], grid, patch, s2_block))
        except AgbmError:
            raise
        except Exception as exc:  # a read that failed: the network, a bad asset
            raise DataError(
                f"month {month:02d} {MONTH_NAMES[month]}: reading its scenes failed "
                f"({reason(exc)}); "
                "run again to resume"
            ) from None
    return records


def compose(
    out: Path | str,
    year: int,
    bbox: Sequence[float] | None = None,
    like: Path | str | None = None,
    catalog: str | Path = PLANETARY_COMPUTER,
    s2_catalog: str | Path | None = None,
    progress: bool = False,
    s2_block: int | None = None,
    grid: Any = None,
    require_data: bool = True,
) -> Composed:
    """Compose the year's monthly S1 and S2 stacks over `bbox` (lon/lat W S E N) or on the
    grid of the GeoTIFF `like`, from `catalog` (S2 from `s2_catalog` when given); resumable.
    With `s2_block`, each month's S2 acquisition is chosen per block of that many pixels
    from the grid's top-left (`month_s2`), as a region's tiles compose."""
    if sum(x is not None for x in (bbox, like, grid)) != 1:
        raise ValueError("give either `bbox` (W S E N) or `like` (a GeoTIFF)")
    check_year(year)
    if grid is None:
        grid = grid_like(like) if like is not None else grid_for_bbox(tuple(bbox))
    out = Path(out)
    opened = open_catalog(catalog)
    catalogs = {"S1": opened, "S2": open_catalog(s2_catalog) if s2_catalog else opened}
    bounds = lonlat_bounds(grid)
    found = search_year(catalogs, bounds, year, require_data)
    run = run_record(grid, year, catalogs, s2_block)
    with output_folder(out / "months") as folder:
        # A months folder composed for another year, grid or catalog is refused: its months
        # would be mixed into this run's.
        claim_record(folder / MANIFEST, run, "give another output folder, or delete it")
        remove_stale_temporaries(folder)
        remove_stale_temporaries(out)
        records = compose_months(folder, found, grid, catalogs, progress, s2_block)
        for sensor in SENSORS:
            _stack(folder, sensor, out / f"{sensor.name}.tif", grid, year)
    sidecar = {
        "format": "agbm-compose",
        "version": 1,
        **run,
        "bounds_lonlat": [round(b, 6) for b in bounds],
        "bands": {sensor.name: band_names(sensor) for sensor in SENSORS},
        "units": UNITS,
        "months": records,
    }
    write_record(out / SIDECAR, sidecar)
    return Composed(out / "S1.tif", out / "S2.tif", out / SIDECAR, tuple(grid.shape), str(grid.crs))
