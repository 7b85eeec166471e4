"""The work of one region tile, each step a function a Dask task will run: compose the tile's
inputs, join the composed tiles into one mosaic, predict the tile's map.

A region folder holds::

    inputs/tiles/{tile}/S1.tif, S2.tif   the tile's composed core (compose, resumable)
    inputs/S1.vrt, inputs/S2.vrt         the mosaic of every composed tile
    partials/{tile}.npz                  the weighted sums of the windows the tile owns
    tiles/{tile}.tif                     the tile's map: a COG, float32 t/ha, NaN outside

Each pixel's imagery is fetched once: a tile composes its core only, and the windows that
reach across its borders read the neighbours' composed inputs through the mosaic. Each
window is predicted once, by its owner (`lattice`), and each map blends the partial sums
of every tile whose windows reach into it.

Importing this module loads no torch (a compose worker imports it, and blends the maps):
`predict_windows` imports the predicting code when it runs.
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
from agbm.errors import DataError, reason
from agbm.inference.layers import MapLayers
from agbm.inference.tiling import BlockSums, Tiling
from agbm.io import replacing
from agbm.region.grid import S2_BLOCK, RegionGrid, Tile
from agbm.region.lattice import Corner, extent

if TYPE_CHECKING:
    from agbm.inference.scene import Predictor


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
    *,
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


def partial_path(folder: Path, tile_id: str) -> Path:
    """Where the weighted sums of the windows a tile owns go (`lattice`), until every map
    they reach into is written."""
    return Path(folder) / "partials" / f"{tile_id}.npz"


def write_partial(path: Path, sums: BlockSums) -> None:
    """`sums` to `path` atomically (float32: a map's values to ~1e-5 t/ha)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with replacing(path) as tmp, open(tmp, "wb") as file:
        block = np.asarray(sums.block, dtype=np.int64)
        np.savez(file, block=block, total=sums.total.astype(np.float32),
                 weight=sums.weight.astype(np.float32))  # fmt: skip


def read_partial(path: Path) -> BlockSums:
    """The sums `write_partial` wrote, or a one-line `DataError` naming the file."""
    try:
        with np.load(path) as data:
            block = tuple(int(v) for v in data["block"])
            return BlockSums(
                block, data["total"].astype(np.float64), data["weight"].astype(np.float64)
            )  # type: ignore[arg-type]
    except (OSError, ValueError, KeyError) as exc:
        raise DataError(f"{path}: not a tile's partial sums ({reason(exc)})") from None


def predict_windows(
    folder: Path,
    grid: RegionGrid,
    tile: Tile,
    predictor: Predictor,
    *,
    tiling: Tiling,
    corners: Sequence[Corner],
    conventions: InputConventions,
    batch_size: int = 8,
    mosaic: str | None = None,
    layers: MapLayers | None = None,
) -> Path:
    """Predict the windows `tile` owns (`corners`, on the region's lattice `tiling`) from
    the inputs mosaic `mosaic` (`mosaic_folder`; default the whole region's), each read
    across the tile's borders, and write their weighted sums over their `extent` to the
    tile's partial file, atomically; returns its path. `layers`: the map's bands (the
    spread needs a predictor that gives it)."""
    from agbm.data.scene import open_scene
    from agbm.inference.scene import predict_sums

    inputs = mosaic_folder(folder, mosaic)
    with open_scene(inputs / "S1.vrt", inputs / "S2.vrt") as scene:
        sums = predict_sums(
            scene, predictor, tiling, extent(corners, tiling), corners,
            batch_size=batch_size, conventions=conventions, layers=layers,
        )  # fmt: skip
    out = partial_path(folder, tile.id)
    write_partial(out, sums)
    return out


def blend_tile(
    folder: Path, grid: RegionGrid, tile: Tile, *, sources: Sequence[str], layers: MapLayers
) -> Path:
    """The tile's map: the partial sums of `sources` (the tiles whose windows reach into it,
    `WindowPlan.sources`) blended over the tile, NaN where no window observed anything and
    outside the area; the bands and tags of `layers`; written as a COG, atomically. Needs no
    torch: it runs on a compose worker."""
    sums = BlockSums.zeros(tile.block, 1 + layers.spread)
    for source in sources:
        sums.add_sums(read_partial(partial_path(folder, source)))
    pred = sums.blend()
    pred[:, ~grid.inside(tile)] = np.nan
    out = map_path(folder, tile)
    out.parent.mkdir(parents=True, exist_ok=True)
    transform = tile_transform(grid, tile)
    bands, tags = layers.bands(), layers.map_tags()
    write_geotiff(out, layers.stack(pred), grid.crs, transform, np.nan, bands, tags, cog=True)
    return out
