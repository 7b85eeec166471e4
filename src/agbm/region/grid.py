"""A region to map: its area (polygons from a vector file, or a box of any size), its 10 m
grid and the tiles that cut it.

The grid is in the CRS asked for (a national grid such as EPSG:3067 for Finland) or, by
default, in the UTM zone of the region's centre; pixels are 10 m with their edges on whole
multiples of 10 m, so that two regions on one CRS share pixel edges. A box whose west edge
lies east of its east edge crosses the antimeridian: it is the union of its two halves,
which a projected grid holds as one area. The tiles cut the grid in squares of
`tile_size` pixels from its top-left corner; only those that touch the area are kept.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from affine import Affine

from agbm.compose.grid import check_bbox, utm_epsg
from agbm.data.bands import PIXEL_M
from agbm.data.vector import read_vector
from agbm.errors import DataError
from agbm.extras import require

#: The default tile side in pixels (10.24 km): a tile's composed inputs are ~480 MB
#: (12 months x 15 bands), its map 4 MB.
TILE_SIZE = 1024
#: How far (degrees) a region may reach beyond its CRS's area of use: one UTM zone's width,
#: where a UTM grid's scale is still within about 1 % of true at the equator.
AREA_OF_USE_MARGIN = 6.0
#: The blocks over which a region chooses each month's S2 acquisition (2.56 km, the
#: challenge's chip; docs/compose.md); tiles are whole multiples of it.
S2_BLOCK = 256


@dataclass(frozen=True)
class Tile:
    """One tile of a region's grid: its id and its block (top, left, height, width)."""

    id: str
    top: int
    left: int
    height: int
    width: int

    @property
    def block(self) -> tuple[int, int, int, int]:
        return self.top, self.left, self.height, self.width


@dataclass(frozen=True)
class RegionGrid:
    """The area in the grid's CRS (a shapely geometry) and the grid: CRS, transform, shape."""

    area: Any
    crs: str
    transform: Affine
    shape: tuple[int, int]

    def fields(self) -> dict[str, Any]:
        """The grid as a record's JSON fields: its CRS, transform and shape."""
        return {"crs": self.crs, "transform": list(self.transform)[:6], "shape": list(self.shape)}

    def lonlat_bounds(self) -> tuple[float, float, float, float]:
        """The area's box in lon/lat (W S E N; -180..180 for an area across the
        antimeridian): what a catalog is asked for the region's imagery."""
        return tuple(reproject(self.area, self.crs, "EPSG:4326").bounds)  # type: ignore[return-value]

    def tiles(self, tile_size: int = TILE_SIZE) -> list[Tile]:
        """The tiles of `tile_size` pixels that touch the area, in raster order."""
        if tile_size < 1 or tile_size % S2_BLOCK:
            raise ValueError(
                f"`tile_size` must be a positive multiple of {S2_BLOCK} pixels (the blocks "
                f"each month's S2 is chosen over), not {tile_size}"
            )
        height, width = self.shape
        tiles = (
            self.tile(top, left, tile_size)
            for top in range(0, height, tile_size)
            for left in range(0, width, tile_size)
        )
        return [t for t in tiles if self.area.intersects(self.footprint(t))]

    def tile(self, top: int, left: int, tile_size: int) -> Tile:
        """The tile of `tile_size` pixels whose top-left pixel is (`top`, `left`), both
        multiples of it, cut at the grid's edge; its id is its place on the lattice."""
        height, width = self.shape
        tile_id = f"r{top // tile_size:04d}_c{left // tile_size:04d}"
        return Tile(tile_id, top, left, min(tile_size, height - top), min(tile_size, width - left))

    def footprint(self, tile: Tile) -> Any:
        """The tile's square, a shapely box in the grid's CRS."""
        x0, y0 = self.transform @ (tile.left, tile.top + tile.height)
        x1, y1 = self.transform @ (tile.left + tile.width, tile.top)
        return require("shapely", "region").box(x0, y0, x1, y1)

    def inside(self, tile: Tile) -> Any:
        """bool `[height, width]`: the tile's pixels whose centres lie in the area (the
        others are no data in the map)."""
        shapely = require("shapely", "region")
        rows, cols = np.mgrid[tile.top : tile.top + tile.height, tile.left : tile.left + tile.width]
        xs, ys = self.transform @ (cols + 0.5, rows + 0.5)
        return shapely.contains_xy(self.area, xs, ys)


def bbox_area(bbox: Sequence[float]) -> Any:
    """A lon/lat box (W S E N, degrees) as a geometry in EPSG:4326; W > E crosses the
    antimeridian and gives its two halves."""
    shapely = require("shapely", "region")
    west, south, east, north = check_bbox(bbox, antimeridian=True)
    if west < east:
        return shapely.box(west, south, east, north)
    return shapely.MultiPolygon(
        [shapely.box(west, south, 180.0, north), shapely.box(-180.0, south, east, north)]
    )


def read_area(path: Path | str) -> tuple[Any, str]:
    """The union of a vector file's polygons (GeoJSON, GeoPackage, Shapefile: anything
    pyogrio reads) and its CRS, or a one-line `DataError` naming the file."""
    path = Path(path)
    frame = read_vector(path, "vector file", "region")
    geometry = frame.geometry
    polygons = geometry[frame.geom_type.isin(["Polygon", "MultiPolygon"]) & ~geometry.is_empty]
    area = polygons.make_valid().union_all() if not polygons.empty else None
    if area is None or not area.area > 0:  # empty polygons, or rings that enclose nothing
        raise DataError(
            f"{path}: holds no polygon with an area (of {len(frame)} geometries, "
            f"{len(polygons)} non-empty polygons; the region must be an area)"
        )
    if frame.crs is None:
        raise DataError(f"{path}: has no CRS (say which in the file, e.g. a .prj or GeoJSON)")
    return area, frame.crs.to_string()


def reproject(area: Any, crs: str, target: Any) -> Any:
    """`area` from `crs` into `target` (geopandas, through pyproj)."""
    geopandas = require("geopandas", "region")
    return geopandas.GeoSeries([area], crs=crs).to_crs(target).iloc[0]


def _centre_lonlat(area: Any, crs: str) -> tuple[float, float]:
    """The centroid of `area` in lon/lat; an area with parts on both sides of the
    antimeridian is centred across it, not at the far side of the globe."""
    shapely = require("shapely", "region")
    lonlat = reproject(area, crs, "EPSG:4326")
    west, _, east, _ = lonlat.bounds
    if east - west > 180:
        lonlat = shapely.transform(lonlat, lambda xy: xy + [[360.0, 0.0]] * (xy[:, :1] < 0))
    centre = lonlat.centroid
    return (centre.x + 180) % 360 - 180, centre.y


def _outline_lonlat(area: Any, crs: str) -> np.ndarray:
    """`[n, 2]` lon/lat of points along the area's outline: its vertices, and points at
    most 1/64 of its extent apart along every edge, densified in the area's own CRS (the
    edges it means) and then moved to lon/lat, so that an area's pieces on both sides of
    the antimeridian stay where they are."""
    shapely = require("shapely", "region")
    pyproj = require("pyproj", "region")
    x0, y0, x1, y1 = area.bounds
    outline = shapely.get_coordinates(shapely.segmentize(area, max(x1 - x0, y1 - y0) / 64))
    to_lonlat = pyproj.Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
    return np.column_stack(to_lonlat.transform(outline[:, 0], outline[:, 1]))


def _box_text(west: float, south: float, east: float, north: float) -> str:
    """A lon/lat box as a message gives it."""
    return f"lon {west:.2f}..{east:.2f}, lat {south:.2f}..{north:.2f}"


def check_area_of_use(area: Any, area_crs: str, crs: Any, named: bool) -> None:
    """A one-line `ValueError` unless `area` (a geometry in `area_crs`) lies within the area
    of use of `crs` (a pyproj CRS; `named`: given as `--crs`, not chosen) widened by
    `AREA_OF_USE_MARGIN` degrees: beyond it a grid's pixels are no longer 10 m (a box round
    the globe in one UTM zone is 1 pixel wide and 1.8 million high). Longitudes are
    compared round the globe, so that an area of use or a region may cross the antimeridian."""
    use = crs.area_of_use
    if use is None:  # a CRS defined by hand: nothing to compare with
        return
    lon, lat = _outline_lonlat(area, area_crs).T
    west, south, east, north = use.bounds
    span, m = (east - west) % 360 or 360, AREA_OF_USE_MARGIN
    within_lon = (span + 2 * m >= 360) | ((lon - (west - m)) % 360 <= span + 2 * m)
    within = within_lon & (south - m <= lat) & (lat <= north + m)  # NaN: off the CRS, outside
    if within.all():
        return
    region = f"the region ({_box_text(lon.min(), lat.min(), lon.max(), lat.max())})"
    where = f"{crs.to_string()}'s area of use ({_box_text(*use.bounds)})"
    if named:
        raise ValueError(f"`crs` {crs.to_string()}: {region} reaches beyond {where}")
    raise ValueError(
        f"{region} reaches beyond its centre's UTM zone, {where}: give a `crs` whose area of "
        "use holds it (a national grid, or an equal-area one such as EPSG:6933 for the world)"
    )


def region_grid(area: Any, area_crs: str, crs: str | None = None) -> RegionGrid:
    """The 10 m grid of `area` (a geometry in `area_crs`) in `crs`, or in the UTM zone of
    its centre: bounds widened to whole multiples of 10 m."""
    pyproj = require("pyproj", "region")
    named = crs is not None
    if crs is None:
        crs = f"EPSG:{utm_epsg(*_centre_lonlat(area, area_crs))}"
    try:
        target = pyproj.CRS.from_user_input(crs)
    except pyproj.exceptions.CRSError as exc:
        raise ValueError(f"`crs` {crs}: not a CRS pyproj knows ({exc})") from None
    if not target.is_projected:
        raise ValueError(f"`crs` {crs} is not projected: 10 m pixels need metres")
    check_area_of_use(area, area_crs, target, named)
    projected = reproject(area, area_crs, target)
    if projected.is_empty or not math.isfinite(projected.area):
        raise ValueError(f"the region does not project onto {crs}")
    x0, y0, x1, y1 = projected.bounds
    left, bottom = math.floor(x0 / PIXEL_M) * PIXEL_M, math.floor(y0 / PIXEL_M) * PIXEL_M
    right, top = math.ceil(x1 / PIXEL_M) * PIXEL_M, math.ceil(y1 / PIXEL_M) * PIXEL_M
    shape = (round((top - bottom) / PIXEL_M), round((right - left) / PIXEL_M))
    grid = Affine(PIXEL_M, 0, left, 0, -PIXEL_M, top)
    return RegionGrid(projected, target.to_string(), grid, shape)


def grid_of(
    region: Path | str | None = None,
    bbox: Sequence[float] | None = None,
    crs: str | None = None,
) -> RegionGrid:
    """The grid of a region given as a vector file (`region`) or a lon/lat box (`bbox`),
    in `crs` or the UTM zone of its centre."""
    if (region is None) == (bbox is None):
        raise ValueError("give either `region` (a file) or `bbox` (W S E N)")
    area, area_crs = read_area(region) if region is not None else (bbox_area(bbox), "EPSG:4326")
    return region_grid(area, area_crs, crs)
