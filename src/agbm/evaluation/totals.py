"""`agbm stats`: totals of biomass, carbon and CO2e over polygons, with calibrated intervals.

The zonal sums are exactextract's, each pixel weighted by the fraction of it the polygon
covers (no rasterising by hand). Per zone:

- `area_ha`: the polygon's geodesic area on the WGS 84 ellipsoid (pyproj);
- `mapped_ha`: the covered area of pixels with data;
- `agbd_mean_t_ha`: their coverage-weighted mean;
- `agb_t` = mean x mapped_ha, `carbon_t` = agb_t x `--carbon-fraction` (0.47, the IPCC
  default for forest biomass), `co2e_t` = carbon_t x 44 / 12;
- with a calibration (`agbm calibrate`): `agb_t_low`, `agb_t_high`, the interval of the
  total at the coverage asked for, from the calibrated block mean nearest the zone's mapped
  area (`Calibration.block_halfwidth`): total +- half-width x mapped_ha, the low end
  clamped at 0; and the carbon and CO2e bounds likewise; `coverage` and `interval_block_px`
  (the side of the block the interval comes from) say how, for a report's reader.

The map must be on a projected grid (metres): agbm's maps and region VRTs are. A zone
outside the map gets a row with `mapped_ha` 0 and no numbers. A calibration is checked
against the model the map names in its tags (`AGBM_CHECKPOINTS`, `AGBM_TTA`): another
model's is refused; a map without them (made elsewhere) cannot be checked, which is said.

What the interval does not cover: a region unlike the calibration chips (the residuals are
only exchangeable with chips like them), and the error of any forest mask applied to the
zones.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from agbm.data.geotiff import open_map
from agbm.data.vector import write_table
from agbm.errors import DataError
from agbm.evaluation.points import agbm_band
from agbm.extras import require
from agbm.inference.intervals import Calibration, read_calibration
from agbm.inference.scene import map_model

#: IPCC's default carbon fraction of dry forest biomass.
CARBON_FRACTION = 0.47
CO2_PER_C = 44.0 / 12.0


def read_zones(path: Path | str, id_field: str | None) -> Any:
    """The zones of a vector file, checked: polygons with valid geometry and, when asked,
    the id field; else a one-line `DataError` naming the file."""
    geopandas = require("geopandas", "labels")
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such zones file")
    try:
        zones = geopandas.read_file(path, engine="pyogrio")
    except Exception as exc:  # pyogrio's errors: not a vector file
        raise DataError(f"{path}: not a readable vector file ({exc})") from None
    if zones.crs is None:
        raise DataError(f"{path}: has no CRS")
    if id_field is not None and id_field not in zones.columns:
        fields = ", ".join(c for c in zones.columns if c != "geometry")
        raise DataError(f"{path}: no field {id_field!r} for --id (it has: {fields})")
    bad = ~zones.geometry.is_valid | ~zones.geom_type.isin(["Polygon", "MultiPolygon"])
    if bad.any():
        first = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataError(
            f"{path}: zone {first} is not a valid polygon ({int(bad.sum())} such zones; "
            "repair them, e.g. with shapely's make_valid)"
        )
    return zones


def geodesic_ha(zones: Any) -> np.ndarray:
    """Each zone's area on the WGS 84 ellipsoid, ha."""
    pyproj = require("pyproj", "labels")
    geod = pyproj.Geod(ellps="WGS84")
    lonlat = zones.geometry.to_crs("EPSG:4326")
    return np.array([abs(geod.geometry_area_perimeter(g)[0]) / 1e4 for g in lonlat])


def zone_sums(map_path: Path, zones: Any) -> tuple[np.ndarray, np.ndarray, float]:
    """(covered pixel count with data, coverage-weighted mean) per zone, and the pixel's
    area in ha, from exactextract over the AGBM band (band 1) of the map at `map_path`."""
    exactextract = require("exactextract", "labels")
    with open_map(map_path) as src:
        if src.crs is None or not src.crs.is_projected:
            raise DataError(f"{map_path}: stats need a map on a projected grid (metres)")
        local = zones.to_crs(src.crs.to_wkt())[["geometry"]]
        table = exactextract.exact_extract(
            agbm_band(src), local, ["count", "mean"], output="pandas"
        )
        xres, yres = src.res
    return table["count"].to_numpy(float), table["mean"].to_numpy(float), xres * yres / 1e4


def map_calibration(map_path: Path | str, calibration: Path | str) -> Calibration:
    """The calibration file `calibration`, checked to be of the model that made the map at
    `map_path` (its tags); a map without those tags is used unchecked, with a warning."""
    intervals = read_calibration(calibration)
    model = map_model(map_path)
    if model is None:
        tqdm.write(
            f"warning: {map_path} does not name the model that made it (no AGBM_CHECKPOINTS "
            f"tag): cannot check that {calibration} is its calibration",
            file=sys.stderr,
        )
    else:
        intervals.check(*model, calibration, of=f"{map_path}'s ")
    return intervals


def zone_stats(
    map_path: Path | str,
    zones_path: Path | str,
    id_field: str | None = None,
    calibration: Path | str | None = None,
    coverage: float = 0.9,
    carbon_fraction: float = CARBON_FRACTION,
) -> Any:
    """The zones' totals (module docstring) as a GeoDataFrame, one row per zone in the
    zones' order; `id_field` names them (default: their row number); `calibration`:
    `agbm calibrate`'s file of the map's model, for the intervals at `coverage`."""
    intervals = map_calibration(map_path, calibration) if calibration is not None else None
    pandas = require("pandas", "labels")
    zones = read_zones(zones_path, id_field)
    pixels, mean, pixel_ha = zone_sums(Path(map_path), zones)
    mapped = pixels * pixel_ha
    has = mapped > 0
    agb = np.where(has, mean * mapped, np.nan)
    table = {
        "zone": zones[id_field].to_numpy() if id_field else np.arange(len(zones)),
        "area_ha": geodesic_ha(zones),
        "mapped_ha": mapped,
        "agbd_mean_t_ha": np.where(has, mean, np.nan),
        "agb_t": agb,
    }
    if intervals is not None:
        half, side = np.array([
            intervals.block_halfwidth(n, coverage) if n > 0 else (math.nan, math.nan)
            for n in pixels
        ]).reshape(-1, 2).T  # fmt: skip
        table["agb_t_low"] = np.maximum(agb - half * mapped, 0.0)
        table["agb_t_high"] = agb + half * mapped
        table["coverage"] = np.where(has, coverage, np.nan)
        table["interval_block_px"] = pandas.array(
            [int(s) if np.isfinite(s) else None for s in side], dtype="Int64"
        )
    for name in [k for k in list(table) if k.startswith("agb_t")]:
        carbon = table[name] * carbon_fraction
        table[name.replace("agb_t", "carbon_t")] = carbon
        table[name.replace("agb_t", "co2e_t")] = carbon * CO2_PER_C
    geopandas = require("geopandas", "labels")
    return geopandas.GeoDataFrame(table, geometry=zones.geometry.to_numpy(), crs=zones.crs)


def write_stats(stats: Any, path: Path | str) -> Path:
    """The totals as `.csv` (no geometry), `.gpkg` or `.parquet`, written atomically."""
    return write_table(stats, path, "stats")
