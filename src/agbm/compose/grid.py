"""The output grid: 10 m pixels in the area's UTM zone, or the grid of a given GeoTIFF."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import rasterio
from rasterio.errors import RasterioError
from rasterio.warp import transform_bounds

from agbm.compose.catalog import require
from agbm.data.bands import PIXEL_M
from agbm.errors import DataError

#: The largest area compose takes in one run, in degrees of latitude or longitude (55 km
#: north-south): memory grows with the area, to a few GB for the largest one at the
#: equator. Larger areas are several runs, and several maps.
MAX_DEGREES = 0.5
#: The most pixels a `--like` grid may have: a 0.5 degree square at the equator.
MAX_PIXELS = 31_000_000


def check_bbox(
    bbox: Sequence[float], antimeridian: bool = False
) -> tuple[float, float, float, float]:
    """`bbox` as four floats, or a one-line `ValueError` saying what is wrong with it: what
    every command that takes a lon/lat box (compose, map, map-region, labels) accepts.

    bbox: west, south, east, north in degrees (WGS 84), each edge within -180..180 or
        -90..90, south below north, west not east.
    antimeridian: whether west may lie east of east (a box across the antimeridian, as a
        region may be); else west must lie west of east.
    """
    if len(bbox) != 4 or not all(math.isfinite(v) for v in bbox):
        raise ValueError(f"`bbox` needs four finite numbers W S E N, got {list(bbox)}")
    west, south, east, north = (float(v) for v in bbox)
    text = f"`bbox` {west} {south} {east} {north}"
    order = "W != E" if antimeridian else "W < E"
    edges = -180 <= west <= 180 and -180 <= east <= 180 and -90 <= south < north <= 90
    if not edges or (west > east and not antimeridian):
        raise ValueError(
            f"{text} is not W S E N in degrees (-180 <= W, E <= 180, {order}, -90 <= S < N <= 90)"
        )
    if west == east:
        raise ValueError(f"{text} has no width")
    return west, south, east, north


def check_compose_bbox(bbox: Sequence[float]) -> tuple[float, float, float, float]:
    """`bbox` as `check_bbox` takes it, not across the antimeridian, and at most
    `MAX_DEGREES` a side: what one compose run takes."""
    west, south, east, north = check_bbox(bbox)
    if east - west > MAX_DEGREES or north - south > MAX_DEGREES:
        raise ValueError(
            f"`bbox` {west} {south} {east} {north} spans more than {MAX_DEGREES} degree: "
            "compose a larger region in several runs"
        )
    return west, south, east, north


def utm_epsg(lon: float, lat: float) -> int:
    """The EPSG code of the WGS 84 UTM zone holding (lon, lat)."""
    zone = min(int((lon + 180) // 6) + 1, 60)
    return (32600 if lat >= 0 else 32700) + zone


def grid_for_bbox(bbox: tuple[float, float, float, float]) -> Any:
    """An odc-geo `GeoBox` covering `bbox` with 10 m pixels in its centre's UTM zone, the
    edges on whole multiples of 10 m (as Sentinel-2's own grid)."""
    geometry = require("odc.geo.geom")
    geobox = require("odc.geo.geobox")
    west, south, east, north = check_compose_bbox(bbox)
    crs = f"EPSG:{utm_epsg((west + east) / 2, (south + north) / 2)}"
    area = geometry.box(west, south, east, north, "EPSG:4326").to_crs(crs)
    return geobox.GeoBox.from_geopolygon(area, resolution=PIXEL_M, crs=crs)


def geobox_of(shape: tuple[int, int], transform: Any, crs: str) -> Any:
    """An odc-geo `GeoBox`: the grid compose loads onto (a region's tile, say)."""
    return require("odc.geo.geobox").GeoBox(tuple(shape), transform, crs)


def grid_like(path: Path | str) -> Any:
    """The grid (CRS, transform, size) of an existing GeoTIFF, as an odc-geo `GeoBox`."""
    try:
        with rasterio.open(path) as src:
            if src.crs is None:
                raise DataError(f"{path}: has no CRS: `like` needs a georeferenced GeoTIFF")
            if src.height * src.width > MAX_PIXELS:
                raise ValueError(
                    f"`like` {path}: {src.height} x {src.width} pixels is more than compose "
                    f"takes in one run ({MAX_PIXELS:,}); split the grid into smaller ones"
                )
            return geobox_of((src.height, src.width), src.transform, src.crs.to_wkt())
    except RasterioError as exc:
        raise DataError(f"{path}: not a readable GeoTIFF ({exc})") from None


def lonlat_bounds(grid: Any) -> tuple[float, float, float, float]:
    """The grid's extent in degrees (west, south, east, north): what the catalog is asked."""
    west, south, east, north = grid.extent.boundingbox
    return transform_bounds(grid.crs.to_wkt(), "EPSG:4326", west, south, east, north)
