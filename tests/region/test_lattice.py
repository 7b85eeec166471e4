"""Who predicts which window of a region's lattice, and whose sums each map blends: each
window once, whatever the tiling; found on the lattice, checked against searches over
every pair."""

from __future__ import annotations

import time

import numpy as np
import pytest

from agbm.inference.tiling import BlockSums, Tiling, plan_tiling
from agbm.region.grid import Tile
from agbm.region.lattice import extent, lattice, plan_windows, tiles_over


def _overlap(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> bool:
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]


def _tiles(shape: tuple[int, int], size: int, keep: float = 1.0, seed: int = 0) -> list[Tile]:
    """The tiles of `size` cutting a `shape` grid (cut at its edge), each kept with
    probability `keep` (a region with holes), in raster order."""
    rng = np.random.default_rng(seed)
    return [
        Tile(f"r{r:04d}_c{c:04d}", top, left, min(size, shape[0] - top), min(size, shape[1] - left))
        for r, top in enumerate(range(0, shape[0], size))
        for c, left in enumerate(range(0, shape[1], size))
        if rng.random() < keep
    ]


def _window(tiling: Tiling, row: int, col: int) -> tuple[int, int, int, int]:
    (h, w), (height, width) = tiling.size, tiling.shape
    return row, col, min(h, height - row), min(w, width - col)


@pytest.mark.parametrize(
    ("size", "window", "overlap"), [(256, 64, 16), (96, 128, 32), (256, 256, 64)]
)
def test_each_window_has_one_owner_the_first_tile_it_reaches_and_each_map_its_sources(
    size: int, window: int, overlap: int
) -> None:
    """The owner is the first of the region's tiles (raster order) that the window reaches
    into, the tile of its top-left corner when that is the region's; a tile's sources are
    the owners of every window reaching into it. Windows larger than a tile too."""
    shape = (4 * 256 + 100, 3 * 256 + 40)
    tiles = _tiles(shape, size, keep=0.7)
    tiling = plan_tiling(*shape, window=window, overlap=overlap)
    plan = plan_windows(tiles, tiling, size)
    owner_of = {}
    for row, col in tiling.corners():
        reached = [t for t in tiles if _overlap(t.block, _window(tiling, row, col))]
        if reached:
            owner_of[row, col] = reached[0].id
    assert {(r, c): o for o, corners in plan.owned.items() for r, c in corners} == owner_of
    assert plan.windows() == len(owner_of) < len(tiling.corners())  # none over the holes
    for tile in tiles:
        touching = tiling.corners_touching(tile.block)
        assert plan.sources[tile.id] == sorted({owner_of[c] for c in touching}), tile.id
    at = lattice(tiles, size)
    for (row, col), owner in owner_of.items():
        corner_tile = at.get((row // size, col // size))
        assert corner_tile is None or owner == corner_tile.id


def test_the_tiles_over_a_block_come_from_the_lattice_as_a_search_over_pairs_finds_them() -> None:
    """Blocks within the grid, as a tile's windows' extent is."""
    shape = (9 * 256 + 100, 7 * 256 + 40)
    tiles = _tiles(shape, 256, keep=0.7)
    at = lattice(tiles, 256)
    rng = np.random.default_rng(1)
    for _ in range(200):
        top, left = (int(rng.integers(0, n)) for n in shape)
        block = (
            top,
            left,
            *(int(rng.integers(1, n - m + 1)) for n, m in zip(shape, (top, left), strict=True)),
        )
        assert tiles_over(at, block, 256) == [t for t in tiles if _overlap(t.block, block)]


@pytest.mark.parametrize("size", [256, 512, 1024])
def test_window_passes_per_pixel_are_the_lattice_s_own_whatever_the_tile_size(size: int) -> None:
    """Before, each tile predicted every window reaching into it: 6.89, 3.75 and 2.64 passes
    per pixel at 256, 512 and 1024 px against the lattice's 1.81 (docs/benchmarks.md). Now
    each window once: the lattice's own count, exactly, for a box region."""
    shape = (8192, 8192)
    tiles = _tiles(shape, size)
    tiling = plan_tiling(*shape, window=256, overlap=64)
    plan = plan_windows(tiles, tiling, size)
    lattice_passes = len(tiling.corners()) * 256 * 256 / (shape[0] * shape[1])
    passes = plan.windows() * 256 * 256 / (shape[0] * shape[1])
    assert passes == pytest.approx(lattice_passes, rel=0.02)
    assert abs(lattice_passes - (256 / 192) ** 2) < 0.1
    before = (
        sum(len(tiling.corners_touching(t.block)) for t in tiles) * 256 * 256 / shape[0] / shape[1]
    )
    assert before > 1.4 * passes


def test_a_map_blended_from_its_neighbours_partial_sums_is_the_whole_map() -> None:
    """Random window predictions: each owner's sums over its windows' extent, blended per
    tile from its sources, equal the blend of every window over the whole grid."""
    shape, size = (300, 260), 96
    tiles = _tiles(shape, size)
    tiling = plan_tiling(*shape, window=64, overlap=16)
    rng = np.random.default_rng(2)
    preds = {c: rng.uniform(0, 300, (1, 64, 64)) for c in tiling.corners()}
    whole = BlockSums.zeros((0, 0, *shape))
    for (row, col), pred in preds.items():
        whole.add_window(row, col, pred, tiling.weights(row, col))
    plan = plan_windows(tiles, tiling, size)
    partials = {}
    for owner, corners in plan.owned.items():
        partials[owner] = BlockSums.zeros(extent(corners, tiling))
        for row, col in corners:
            partials[owner].add_window(row, col, preds[row, col], tiling.weights(row, col))
    expected = whole.blend()[0]
    for tile in tiles:
        sums = BlockSums.zeros(tile.block)
        for source in plan.sources[tile.id]:
            sums.add_sums(partials[source])
        top, left, height, width = tile.block
        np.testing.assert_allclose(
            sums.blend()[0], expected[top : top + height, left : left + width], atol=1e-4
        )


def test_a_country_of_10_5_tiles_plans_its_windows_in_seconds() -> None:
    """Finland's box in 256 px tiles is 107,583 tiles: its lattice plans in seconds (30 s
    allowed on the 2-core machine under load; ~8 s measured, bench/region.py --plan)."""
    shape = (316 * 256, 316 * 256)  # 99,856 tiles
    tiles = _tiles(shape, 256)
    start = time.perf_counter()
    plan = plan_windows(tiles, plan_tiling(*shape, window=256, overlap=64), 256)
    assert time.perf_counter() - start < 30
    assert len(plan.sources) == len(tiles)
