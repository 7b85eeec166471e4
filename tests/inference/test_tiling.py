"""Windows over a scene, and the taper that blends them without seams."""

from __future__ import annotations

import numpy as np
import pytest
from rasterio.crs import CRS
from rasterio.transform import Affine

from agbm.inference.tiling import BLOCK, StripBlender, plan_tiling, taper

#: Taller and wider than 1024, and multiples neither of 32 nor of the default stride (192).
HEIGHT, WIDTH = 1030, 1100
CRS_ = CRS.from_epsg(3067)
TRANSFORM = Affine(10.0, 0.0, 380_000.0, 0.0, -10.0, 6_900_000.0)
#: Months without any data, without S2 and without S1: missing files or empty stack months.
ABSENT, S1_ONLY, S2_ONLY = 7, 3, 5
SCALE = 100.0


def test_taper_is_positive_and_overlapping_windows_sum_to_one() -> None:
    weights = taper(256, 64)
    assert (weights > 0).all() and weights[64:192].min() == 1.0
    np.testing.assert_allclose(weights[192:] + weights[:64], 1.0, rtol=1e-6)
    assert (taper(256, 64, start=False)[:192] == 1.0).all()  # no ramp on the scene's border


def test_tiling_covers_the_scene_with_windows_ending_at_the_edge() -> None:
    tiling = plan_tiling(HEIGHT, WIDTH, window=256, overlap=64)
    assert tiling.rows == (0, 155, 310, 464, 619, HEIGHT - 256)  # equal steps <= 192
    assert tiling.cols[-1] == WIDTH - 256 and tiling.size == (256, 256)
    assert plan_tiling(40, 1000, window=256, overlap=64).size == (
        64,
        256,
    )  # short sides shrink to 32k
    for window, overlap in ((100, 0), (256, 256), (256, -1)):
        with pytest.raises(ValueError, match="`window`|`overlap`"):
            plan_tiling(HEIGHT, WIDTH, window=window, overlap=overlap)


def test_blender_holds_one_strip_and_releases_whole_blocks() -> None:
    """A tall scene blended from windows cut out of two known fields (a map and its spread)
    gives the fields back, with a strip of window + BLOCK rows (an add outside it raises)
    and rows written block-wise."""
    height, width = 1500, 200
    field = np.add.outer(np.arange(height), np.arange(width) / 1000).astype(np.float32)
    fields = np.stack([field, np.sqrt(field)])
    tiling = plan_tiling(height, width, window=64, overlap=16)
    blender = StripBlender(64 + BLOCK, width, layers=2)
    pieces = []
    for row, col in tiling.corners():
        pieces.append(blender.release(row // BLOCK * BLOCK))
        window = fields[:, row : row + 64, col : col + 64]
        blender.add(row, col, window, tiling.weights(row, col))
    pieces.append(blender.release(height))
    assert all(top % BLOCK == 0 and rows.shape[1] % BLOCK == 0 for top, rows in pieces[:-1])
    blended = np.concatenate([rows for _, rows in pieces], axis=1)
    np.testing.assert_allclose(blended, fields, rtol=1e-6)
