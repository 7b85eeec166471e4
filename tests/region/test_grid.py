"""A region's area, 10 m grid and tiles (issue 19's first pieces)."""

from __future__ import annotations

from pathlib import Path

import geopandas
import numpy as np
import pytest
import shapely

from agbm.compose.grid import grid_for_bbox
from agbm.errors import DataError
from agbm.region import bbox_area, read_area, region_grid

#: A 3 x 3 km square in Finland's national grid with a 1 km hole in its middle.
OUTER = shapely.box(400_000, 6_700_000, 403_000, 6_703_000)
HOLE = shapely.box(401_000, 6_701_000, 402_000, 6_702_000)


def test_a_box_is_gridded_at_10_m_in_its_utm_zone_with_edges_on_10_m() -> None:
    grid = region_grid(bbox_area([24.9, 60.3, 25.1, 60.4]), "EPSG:4326")
    assert grid.crs == "EPSG:32635"
    assert grid.transform.a == 10 and grid.transform.e == -10
    assert grid.transform.c % 10 == 0 and grid.transform.f % 10 == 0
    height, width = grid.shape
    assert 1110 < height < 1160 and 1100 < width < 1160  # 0.1 x 0.2 degree at 60 N


def test_a_box_across_the_antimeridian_is_one_area() -> None:
    """compose refuses a box with W > E; a region takes it as the box's two halves."""
    grid = region_grid(bbox_area([179.5, -17.0, -179.5, -16.5]), "EPSG:4326")
    assert grid.crs in ("EPSG:32701", "EPSG:32760")
    height, width = grid.shape
    assert 5500 < height < 5800 and 10_500 < width < 10_800  # 1 x 0.5 degree, not 359
    assert grid.area.area == pytest.approx(106.6e3 * 55.3e3, rel=0.01)  # 1 x 0.5 degree at 17 S


def test_a_polygon_with_a_hole_gives_the_tiles_that_touch_it(tmp_path: Path) -> None:
    path = tmp_path / "region.gpkg"
    frame = geopandas.GeoDataFrame(geometry=[OUTER.difference(HOLE)], crs="EPSG:3067")
    frame.to_crs("EPSG:4326").to_file(path)  # stored in another CRS than the grid's
    area, crs = read_area(path)
    grid = region_grid(area, crs, "EPSG:3067")
    assert grid.crs == "EPSG:3067"
    tiles = grid.tiles(256)  # 2.56 km tiles over the 3 km square
    assert len(tiles) == 4
    with pytest.raises(ValueError, match="multiple of 256"):
        grid.tiles(100)
    mask = np.zeros(grid.shape, dtype=bool)
    for tile in tiles:
        mask[tile.top : tile.top + tile.height, tile.left : tile.left + tile.width] = grid.inside(
            tile
        )
    col, row = (int(v) for v in ~grid.transform @ (401_500, 6_701_500))
    assert not mask[row, col]  # the hole is not the region
    col, row = (int(v) for v in ~grid.transform @ (400_500, 6_700_500))
    assert mask[row, col]
    assert mask.sum() * 100 == pytest.approx(8e6, rel=0.01)  # 9 km2 less the 1 km2 hole


def test_a_region_file_that_is_not_an_area_is_one_line(tmp_path: Path) -> None:
    points = tmp_path / "points.geojson"
    geopandas.GeoDataFrame(geometry=[shapely.Point(25, 60)], crs="EPSG:4326").to_file(points)
    with pytest.raises(DataError, match="holds no polygon"):
        read_area(points)
    junk = tmp_path / "junk.gpkg"
    junk.write_bytes(b"not a geopackage")
    with pytest.raises(DataError, match=f"{junk}: not a readable vector file"):
        read_area(junk)
    with pytest.raises(ValueError, match="not projected"):
        region_grid(OUTER, "EPSG:3067", "EPSG:4326")
    with pytest.raises(ValueError, match="W S E N"):
        bbox_area([1, 2, 3])


@pytest.mark.parametrize(
    "polygon", [shapely.Polygon(), shapely.Polygon([(25, 60), (25.1, 60), (25.2, 60)])]
)
def test_a_region_of_empty_or_zero_area_polygons_is_one_line(
    polygon: shapely.Polygon, tmp_path: Path
) -> None:
    path = tmp_path / "area.geojson"
    geopandas.GeoDataFrame(geometry=[polygon], crs="EPSG:4326").to_file(path)
    with pytest.raises(DataError, match=f"{path}: holds no polygon with an area"):
        read_area(path)


@pytest.mark.parametrize("bbox", [[-180, -80, 180, 80], [-180, 0, 180, 80], [-170, 0, 170, 80]])
def test_a_region_beyond_its_utm_zone_s_area_of_use_asks_for_a_crs(bbox: list[float]) -> None:
    """Round the globe in one UTM zone, a grid is 1 pixel wide and 1.8 million high."""
    with pytest.raises(ValueError, match=r"beyond its centre's UTM zone, EPSG:32601's area of "
                       r"use \(lon -180.00..-174.00, lat 0.00..84.00\): give a `crs`"):  # fmt: skip
        region_grid(bbox_area(bbox), "EPSG:4326")


def test_a_region_beyond_the_area_of_use_of_the_crs_given_names_it() -> None:
    brazil = bbox_area([-50, -10, -49, -9])
    with pytest.raises(ValueError, match=r"`crs` EPSG:3067: the region \(lon -50.00..-49.00"):
        region_grid(brazil, "EPSG:4326", "EPSG:3067")
    assert region_grid(brazil, "EPSG:4326", "EPSG:6933").crs == "EPSG:6933"  # the world's
    finland = bbox_area([20, 59, 32, 70])  # two UTM zones: within a zone's width of its own
    assert region_grid(finland, "EPSG:4326").crs == "EPSG:32635"
    fiji = bbox_area([179.5, -17.0, -179.5, -16.5])  # an area of use across the antimeridian
    assert region_grid(fiji, "EPSG:4326", "EPSG:3832").crs == "EPSG:3832"


@pytest.mark.parametrize(
    ("bbox", "message"),
    [
        ([1, 2, 3], r"needs four finite numbers W S E N, got \[1, 2, 3\]"),
        ([24.9, 60.3, float("nan"), 60.4], "needs four finite numbers"),
        ([24.9, 60.4, 25.1, 60.3], r"60.4 25.1 60.3 is not W S E N in degrees \(-180 <= W, E"),
        ([24.9, 60.3, 25.1, 91.0], "is not W S E N in degrees"),
        ([190.0, 60.3, 25.1, 60.4], "is not W S E N in degrees"),
        ([25.0, 60.3, 25.0, 60.4], r"`bbox` 25.0 60.3 25.0 60.4 has no width"),
    ],
)
def test_compose_and_a_region_check_a_box_by_one_rule(bbox: list[float], message: str) -> None:
    """One check (`check_bbox`): the same box is refused by both with the same line; they
    differ only where they should (below)."""
    for make in (bbox_area, grid_for_bbox):
        with pytest.raises(ValueError, match=message):
            make(bbox)


def test_only_a_region_may_cross_the_antimeridian_or_be_large() -> None:
    across, large = [179.5, -17.0, -179.5, -16.5], [20.0, 60.0, 20.6, 60.4]
    assert bbox_area(across).area > 0 and bbox_area(large).area > 0
    with pytest.raises(ValueError, match=r"W < E, -90 <= S < N <= 90\)"):
        grid_for_bbox(across)
    with pytest.raises(ValueError, match="spans more than 0.5 degree"):
        grid_for_bbox(large)
