"""The GeoTIFF writer and the VRT mosaic of a region's tiles."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio
from affine import Affine

from agbm.data.geotiff import MosaicPart, write_geotiff, write_mosaic_vrt

TRANSFORM = Affine(10, 0, 400_000, 0, -10, 6_700_000)


def test_a_vrt_mosaic_reads_as_the_tiles_put_together(tmp_path: Path) -> None:
    """Three of four 32 x 40 tiles of a 64 x 80 grid (one is missing: no data there)."""
    whole = np.arange(2 * 64 * 80, dtype=np.float32).reshape(2, 64, 80)
    parts = []
    for row, col in ((0, 0), (0, 40), (32, 0)):
        tile = tmp_path / "tiles" / f"{row}_{col}.tif"
        tile.parent.mkdir(exist_ok=True)
        transform = TRANSFORM @ Affine.translation(col, row)
        write_geotiff(
            tile, whole[:, row : row + 32, col : col + 40], "EPSG:3067", transform, np.nan
        )
        parts.append(MosaicPart(tile, row, col, 32, 40))
    vrt = tmp_path / "agbm.vrt"
    write_mosaic_vrt(vrt, parts, (64, 80), "EPSG:3067", TRANSFORM, 2, "float32", np.nan, ["a", "b"])
    moved = Path(tmp_path.rename(tmp_path.with_name(tmp_path.name + "_moved")))  # paths relative
    with rasterio.open(moved / "agbm.vrt") as src:
        assert (src.count, src.shape, src.crs.to_epsg(), src.transform) == (
            2,
            (64, 80),
            3067,
            TRANSFORM,
        )
        assert src.descriptions == ("a", "b")
        mosaic = src.read()
    np.testing.assert_array_equal(mosaic[:, :32], whole[:, :32])
    np.testing.assert_array_equal(mosaic[:, 32:, :40], whole[:, 32:, :40])
    assert np.isnan(mosaic[:, 32:, 40:]).all()  # the missing tile
