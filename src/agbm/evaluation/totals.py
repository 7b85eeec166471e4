"""`agbm stats`: totals of biomass, carbon and CO2e over polygons, with calibrated intervals.

The zonal sums are exactextract's, each pixel weighted by the fraction of it the polygon
covers (no rasterising by hand) and by its true area on the ellipsoid of the map's CRS
(`PixelAreas`), so that a map in any CRS gives the same totals: lon/lat (as ESA CCI
publishes them), Web Mercator (whose pixels at 60 N cover a quarter of their nominal
area), UTM or an equal-area grid. Per zone:

- `area_ha`: the polygon's geodesic area on the WGS 84 ellipsoid (pyproj), its edges
  straight in the zones' CRS (`densified`);
- `mapped_ha`: the covered true area of pixels with data, at most `area_ha`;
- `agbd_mean_t_ha`: their area-weighted mean;
- `agb_t` = mean x mapped_ha, `carbon_t` = agb_t x `--carbon-fraction` (0.47, the IPCC
  default for forest biomass), `co2e_t` = carbon_t x 44 / 12;
- with a calibration (`agbm calibrate`): `agb_t_low`, `agb_t_high`, the interval of the
  total at the coverage asked for, from the calibrated block mean nearest the zone's mapped
  area (`Calibration.block_halfwidth`, in the chips' 10 m pixels): total +- half-width x
  mapped_ha, the low end clamped at 0; and the carbon and CO2e bounds likewise; `coverage`
  and `interval_block_px` (the side of the block the interval comes from) say how, for a
  report's reader.

A zone outside the map gets a row with `mapped_ha` 0 and no numbers. A calibration is
checked against the model the map names in its tags (`AGBM_CHECKPOINTS`, `AGBM_TTA`):
another model's is refused; a map without them (made elsewhere) cannot be checked, which
is said.

What the interval does not cover: a region unlike the calibration chips (the residuals are
only exchangeable with chips like them), and the error of any forest mask applied to the
zones.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from agbm.data.geotiff import agbm_band, open_map
from agbm.data.vector import read_vector, write_table
from agbm.errors import DataError, warn
from agbm.extras import require
from agbm.inference.intervals import PIXEL_HA, Calibration, check_coverage, read_calibration
from agbm.inference.layers import map_model

#: IPCC's default carbon fraction of dry forest biomass.
CARBON_FRACTION = 0.47
CO2_PER_C = 44.0 / 12.0


def read_zones(path: Path | str, id_field: str | None, name: str = "id_field") -> Any:
    """The zones of a vector file, checked: polygons with valid geometry and, when asked,
    the id field (the parameter `name` gives it: `id_field`, `strata_field`); else a one-line
    `DataError` naming the file."""
    path = Path(path)
    zones = read_vector(path, "vector file", "labels")
    if zones.crs is None:
        raise DataError(f"{path}: has no CRS")
    if id_field is not None and id_field not in zones.columns:
        fields = ", ".join(c for c in zones.columns if c != "geometry")
        raise DataError(f"{path}: no field {id_field!r} for `{name}` (it has: {fields})")
    empty = zones.geometry.is_empty  # False where missing (None): not valid, below
    if empty.any():
        first = int(np.flatnonzero(empty.to_numpy())[0])
        raise DataError(
            f"{path}: zone {first} is empty, a polygon without area ({int(empty.sum())} such "
            "zones; drop them)"
        )
    bad = ~zones.geometry.is_valid | ~zones.geom_type.isin(["Polygon", "MultiPolygon"])
    if bad.any():
        first = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataError(
            f"{path}: zone {first} is not a valid polygon ({int(bad.sum())} such zones; "
            "repair them, e.g. with shapely's make_valid)"
        )
    return zones


def densified(zones: Any) -> Any:
    """The zones' polygons with a vertex at least every km (0.01 degree): their edges are
    straight lines in the zones' CRS, and stay so in the map's and on the ellipsoid."""
    step = 0.01 if zones.crs.is_geographic else 1000.0
    return zones.geometry.segmentize(step).to_frame("geometry")


def geodesic_ha(zones: Any) -> np.ndarray:
    """Each zone's area on the WGS 84 ellipsoid, ha."""
    pyproj = require("pyproj", "labels")
    geod = pyproj.Geod(ellps="WGS84")
    lonlat = zones.geometry.to_crs("EPSG:4326")
    return np.array([abs(geod.geometry_area_perimeter(g)[0]) / 1e4 for g in lonlat])


#: Pixels between those whose area is computed on a projected grid, with linear
#: interpolation between: the area changes by under 1e-5 of itself over 16 pixels.
AREA_STEP = 16


class PixelAreas:
    """The true area, ha, of the pixels of a north-up map on its CRS's ellipsoid: the area
    of each pixel's corners in an equal-area projection of that ellipsoid (pyproj). On a
    lon/lat grid the cylindrical one, where a cell between two meridians and two parallels
    is a rectangle: exact, per row. On a projected grid the azimuthal one centred on the
    map, every `AREA_STEP` pixels. (Proj's areal scale factors would not do: Web Mercator's
    are a sphere's, 0.4 % off at 62 N.)"""

    def __init__(self, src: Any) -> None:
        """`src`: the open map (rasterio)."""
        pyproj = require("pyproj", "labels")
        self.transform, self.path = src.transform, src.name
        if self.transform.b or self.transform.d:
            raise DataError(f"{self.path}: a rotated grid; stats need a north-up map")
        crs = pyproj.CRS.from_user_input(src.crs.to_wkt())
        self.geographic = crs.is_geographic
        lon, lat = pyproj.Transformer.from_crs(crs, crs.geodetic_crs, always_xy=True).transform(
            *(self.transform @ (src.width / 2, src.height / 2))
        )
        operations = pyproj.crs.coordinate_operation
        if self.geographic:
            centred = operations.LambertCylindricalEqualAreaConversion(0.0, lon)
        else:
            centred = operations.LambertAzimuthalEqualAreaConversion(lat, lon)
        target = pyproj.crs.ProjectedCRS(centred, geodetic_crs=crs.geodetic_crs)
        self.to = pyproj.Transformer.from_crs(crs, target, always_xy=True)

    def window(self, x0: int, y0: int, nx: int, ny: int) -> np.ndarray:
        """The areas `[ny, nx]` of the pixels of the window at column `x0`, row `y0`."""
        if self.geographic:  # each row's, the same along it
            rows, cols = np.arange(ny), np.zeros(1, int)
        else:
            rows, cols = _lattice(ny), _lattice(nx)
        areas = self._quads(x0 + cols, y0 + rows)
        areas = _between(_between(areas, rows, ny).T, cols, nx).T
        if not np.isfinite(areas).all():
            raise DataError(f"{self.path}: pixels beyond what its CRS can project")
        return areas / 1e4

    def _quads(self, cols: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """The areas, m^2, of the pixels at `rows` x `cols`: half the cross product of the
        diagonals of their corners' quadrilaterals in the equal-area projection."""
        t = self.transform
        left, top = np.meshgrid(t.c + t.a * cols, t.f + t.e * rows)
        right, bottom = left + t.a, top + t.e
        if self.geographic:  # a grid's edge beyond a pole
            top, bottom = np.clip(top, -90.0, 90.0), np.clip(bottom, -90.0, 90.0)
        corners = [(left, top), (right, top), (right, bottom), (left, bottom)]
        (x1, y1), (x2, y2), (x3, y3), (x4, y4) = (self.to.transform(*c) for c in corners)
        return 0.5 * np.abs((x3 - x1) * (y4 - y2) - (x4 - x2) * (y3 - y1))


def _lattice(n: int) -> np.ndarray:
    """Every `AREA_STEP`-th of `n` pixels, and the last."""
    return np.unique(np.r_[np.arange(0, n, AREA_STEP), n - 1])


def _between(values: np.ndarray, at: np.ndarray, n: int) -> np.ndarray:
    """`values` `[len(at), ...]` given at rows `at` (increasing, from 0 to n - 1), linearly
    interpolated onto rows 0 .. n - 1."""
    if len(at) == 1:
        return np.repeat(values, n, axis=0)
    rows = np.arange(n)
    i = np.clip(np.searchsorted(at, rows, side="right") - 1, 0, len(at) - 2)
    w = ((rows - at[i]) / (at[i + 1] - at[i]))[:, None]
    return values[i] * (1 - w) + values[i + 1] * w


def in_range(band: Any, low: float, high: float, name: str) -> Any:
    """exactextract's raster of 1 where `band` (`agbm_band`'s) has data in [low, high), else
    0, with the same reads: weighted by the pixels' areas, its sum is that range's area."""

    class InRange(type(band)):
        def nodata_value(self) -> None:
            return None

        def read_window(self, x0: int, y0: int, nx: int, ny: int) -> np.ndarray:
            values = np.ma.masked_invalid(super().read_window(x0, y0, nx, ny))
            return np.ma.filled((values >= low) & (values < high), False).astype(np.float64)

    return InRange(band.ds, band.band_idx, name=name)


def zone_rasters(src: Any) -> tuple[list[Any], Any]:
    """exactextract's rasters of an open map: its AGBM band and where it has data (1, else
    0), and their weights, the pixels' true areas (`PixelAreas`, ha)."""
    exactextract = require("exactextract", "labels")
    band = agbm_band(src)
    band.set_name("agbm")
    areas = PixelAreas(src)

    class Areas(exactextract.raster.RasterioRasterSource):  # the map's grid, not its values
        def nodata_value(self) -> None:
            return None

        def read_window(self, x0: int, y0: int, nx: int, ny: int) -> np.ndarray:
            return areas.window(x0, y0, nx, ny)

    return [band, in_range(band, -math.inf, math.inf, "has")], Areas(src, 1, name="area")


def zone_sums(map_path: Path, zones: Any) -> tuple[np.ndarray, np.ndarray]:
    """(the covered true area of pixels with data, ha; their area-weighted sum of AGBD, t)
    per zone, from exactextract over the AGBM band (band 1) of the map at `map_path`."""
    exactextract = require("exactextract", "labels")
    with open_map(map_path) as src:
        if src.crs is None:
            raise DataError(f"{map_path}: the map has no CRS, so its pixels' areas are unknown")
        local = zones.to_crs(src.crs.to_wkt())[["geometry"]]
        rasters, weights = zone_rasters(src)
        table = exactextract.exact_extract(
            rasters, local, ["weighted_sum"], weights=weights, output="pandas"
        )
    return tuple(table[f"{name}_area_weighted_sum"].to_numpy(float) for name in ("has", "agbm"))


def map_calibration(
    map_path: Path | str, calibration: Path | str, kind: str = "stock"
) -> Calibration:
    """The calibration file `calibration` of `kind` (`KINDS`: another is refused), checked
    to be of the model that made the map at `map_path` (its tags); a map without those tags
    is used unchecked, with a warning."""
    intervals = read_calibration(calibration, kind)
    check_map_model(intervals, map_path, calibration)
    return intervals


def check_map_model(intervals: Calibration, map_path: Path | str, calibration: Path | str) -> None:
    """Refuse `intervals` (read from the file `calibration`) unless they are of the model
    that made the map at `map_path` (its tags); a map without those tags is let through
    with a warning. One calibration read once is checked against several maps so."""
    model = map_model(map_path)
    if model is None:
        warn(
            f"{map_path} does not name the model that made it (no AGBM_CHECKPOINTS tag): "
            f"cannot check that {calibration} is its calibration"
        )
    else:
        intervals.check(*model, calibration, of=f"{map_path}'s ")


def zone_calibration(
    map_path: Path | str, calibration: Path | str | None, coverage: float, kind: str = "stock"
) -> Calibration | None:
    """The calibration of `kind` for zones' totals of the map at `map_path` at `coverage`
    (`map_calibration`; None without one), warning of the block sizes with too few
    residuals for it; a coverage no block can give is a one-line `DataError`."""
    if calibration is None:
        return None
    intervals = map_calibration(map_path, calibration, kind)
    if note := intervals.block_note(coverage, calibration):
        warn(note)
    return intervals


def zone_halfwidths(
    intervals: Calibration, mapped_ha: np.ndarray, coverage: float
) -> tuple[np.ndarray, Any]:
    """(the half-width, t/ha, of the mean of each zone of `mapped_ha` at `coverage`; the
    side of the calibrated block it comes from, pandas' Int64): `block_halfwidth`'s, NaN and
    no side for a zone without map data."""
    pandas = require("pandas", "labels")
    half, side = np.array([
        intervals.block_halfwidth(ha / PIXEL_HA, coverage) if ha > 0 else (math.nan, math.nan)
        for ha in mapped_ha
    ]).reshape(-1, 2).T  # fmt: skip
    sides = pandas.array([int(s) if np.isfinite(s) else None for s in side], dtype="Int64")
    return half, sides


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
    `agbm calibrate`'s file of the map's model, for the intervals at `coverage`;
    `carbon_fraction`: carbon per unit of dry biomass, in (0, 1]."""
    if not 0 < carbon_fraction <= 1:  # NaN too
        raise ValueError(
            f"`carbon_fraction` must be in (0, 1] (carbon per unit of dry biomass; IPCC's "
            f"default for forests is {CARBON_FRACTION}), not {carbon_fraction}"
        )
    check_coverage(coverage)
    intervals = zone_calibration(map_path, calibration, coverage)
    zones = read_zones(zones_path, id_field)
    edges = densified(zones)
    area = geodesic_ha(edges)
    covered, sums = zone_sums(Path(map_path), edges)
    has = covered > 0
    mean = np.where(has, sums / np.where(has, covered, 1.0), np.nan)
    mapped = np.minimum(covered, area)  # they differ by rounding where a zone is all mapped
    agb = np.where(has, mean * mapped, np.nan)
    table = {
        "zone": zones[id_field].to_numpy() if id_field else np.arange(len(zones)),
        "area_ha": area,
        "mapped_ha": mapped,
        "agbd_mean_t_ha": mean,
        "agb_t": agb,
    }
    if intervals is not None:
        half, table["interval_block_px"] = zone_halfwidths(intervals, mapped, coverage)
        table["agb_t_low"] = np.maximum(agb - half * mapped, 0.0)
        table["agb_t_high"] = agb + half * mapped
        table["coverage"] = np.where(has, coverage, np.nan)
    for name in [k for k in list(table) if k.startswith("agb_t")]:
        carbon = table[name] * carbon_fraction
        table[name.replace("agb_t", "carbon_t")] = carbon
        table[name.replace("agb_t", "co2e_t")] = carbon * CO2_PER_C
    geopandas = require("geopandas", "labels")
    return geopandas.GeoDataFrame(table, geometry=zones.geometry.to_numpy(), crs=zones.crs)


def write_stats(stats: Any, path: Path | str) -> Path:
    """The totals as `.csv` (no geometry), `.gpkg` or `.parquet`, written atomically."""
    return write_table(stats, path, "stats")
