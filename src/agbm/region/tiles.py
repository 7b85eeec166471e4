"""The work of one region tile, each step a function a Dask task will run: compose the tile's
inputs, join the composed tiles into one mosaic, predict the tile's map.

A region folder holds::

    inputs/tiles/{tile}/S1.tif, S2.tif   the tile's composed core (compose, resumable)
    inputs/S1.vrt, inputs/S2.vrt         the mosaic of every composed tile
    tiles/{tile}.tif                     the tile's map: a COG, float32 t/ha, NaN outside

Each pixel's imagery is fetched once: a tile composes its core only, and the windows that
reach across its borders read the neighbours' composed inputs through the mosaic.

Importing this module loads no torch (a compose worker imports it): `predict_tile` imports
the predicting code when it runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from affine import Affine

from agbm.compose import compose
from agbm.compose.catalog import PLANETARY_COMPUTER
from agbm.compose.grid import geobox_of
from agbm.data.bands import MONTHS, SENSORS
from agbm.data.conventions import InputConventions
from agbm.data.geotiff import MosaicPart, write_geotiff, write_mosaic_vrt
from agbm.inference.tiling import Tiling
from agbm.region.grid import S2_BLOCK, RegionGrid, Tile

if TYPE_CHECKING:
    from agbm.inference.scene import MapLayers, Predictor


def tile_transform(grid: RegionGrid, tile: Tile) -> Affine:
    """The transform of a tile's core: the region's, moved to the tile's top-left pixel."""
    return grid.transform @ Affine.translation(tile.left, tile.top)


def inputs_folder(folder: Path, tile: Tile) -> Path:
    """Where a tile's composed inputs go in a region folder."""
    return Path(folder) / "inputs" / "tiles" / tile.id


def compose_tile(
    folder: Path,
    grid: RegionGrid,
    tile: Tile,
    year: int,
    catalog: str | Path = PLANETARY_COMPUTER,
    s2_catalog: str | Path | None = None,
) -> Path:
    """Compose a tile's core (its 12 months of S1 and S2, S2 chosen per `S2_BLOCK` block of
    the region's lattice), resumably; a tile with no acquisition all year is all no data;
    returns its folder."""
    out = inputs_folder(folder, tile)
    geobox = geobox_of((tile.height, tile.width), tile_transform(grid, tile), grid.crs)
    compose(
        out, year, catalog=catalog, s2_catalog=s2_catalog, s2_block=S2_BLOCK, grid=geobox,
        require_data=False,
    )  # fmt: skip
    return out


def near_folder(folder: Path) -> Path:
    """Where the mosaics of the tiles near each tile go (`mosaic_folder`)."""
    return Path(folder) / "inputs" / "near"


def mosaic_folder(folder: Path, name: str | None = None) -> Path:
    """Where the inputs mosaic goes: `inputs/` for the whole region, or `inputs/near/{name}`
    for the tiles near one tile (what its prediction task reads)."""
    return Path(folder) / "inputs" if name is None else near_folder(folder) / name


def write_inputs_mosaic(
    folder: Path, grid: RegionGrid, tiles: Sequence[Tile], name: str | None = None
) -> list[Path]:
    """`S1.vrt` and `S2.vrt` in `mosaic_folder(folder, name)`: the composed `tiles` as one
    scene on the region's grid (no data where no tile was composed); returns the paths."""
    written = []
    for sensor in SENSORS:
        parts = [
            MosaicPart(inputs_folder(folder, t) / f"{sensor.name}.tif", *t.block) for t in tiles
        ]
        path = mosaic_folder(folder, name) / f"{sensor.name}.vrt"
        path.parent.mkdir(parents=True, exist_ok=True)
        count, nodata = MONTHS * sensor.count, sensor.nodata
        write_mosaic_vrt(
            path, parts, grid.shape, grid.crs, grid.transform, count, sensor.dtype, nodata
        )
        written.append(path)
    return written


def map_path(folder: Path, tile: Tile) -> Path:
    """Where a tile's map goes in a region folder."""
    return Path(folder) / "tiles" / f"{tile.id}.tif"


def predict_tile(
    folder: Path,
    grid: RegionGrid,
    tile: Tile,
    predictor: Predictor,
    tiling: Tiling,
    conventions: InputConventions,
    batch_size: int = 8,
    mosaic: str | None = None,
    layers: MapLayers | None = None,
) -> Path:
    """The tile's map from the region's inputs mosaic: every window of the region's lattice
    that reaches into the tile, read across its borders (`predict_block`), NaN outside the
    area; written as a COG, atomically. `tiling` is the region's (`plan_tiling` of its
    shape), so the map is the same whatever the tile size. `mosaic` names the inputs mosaic
    to read (`mosaic_folder`; default the whole region's). `layers`: the map's bands (the
    calibrated bounds and the spread, which needs a predictor that gives it) and tags."""
    from agbm.data.scene import open_scene
    from agbm.inference.scene import MapLayers, predict_block

    layers = layers or MapLayers()
    inputs = mosaic_folder(folder, mosaic)
    with open_scene(inputs / "S1.vrt", inputs / "S2.vrt") as scene:
        pred = predict_block(
            scene, predictor, tiling, tile.block,
            batch_size=batch_size, conventions=conventions, layers=layers,
        )  # fmt: skip
    pred[:, ~grid.inside(tile)] = np.nan
    out = map_path(folder, tile)
    out.parent.mkdir(parents=True, exist_ok=True)
    transform = tile_transform(grid, tile)
    bands, tags = layers.bands(), layers.map_tags()
    write_geotiff(out, layers.stack(pred), grid.crs, transform, np.nan, bands, tags, cog=True)
    return out
