"""Who does what on a region's window lattice: each window predicted once, by the tile that
owns it; the tiles whose composed inputs a tile's windows read; the tiles whose windows
reach into each tile's map.

**The owner rule.** A window belongs to the first of the region's tiles, in raster order,
that it reaches into: the tile holding its top-left corner when that tile is one of the
region's (a window whose corner lies in a tile outside the area, beside a coast, goes to
the next one it reaches). The owner predicts it once, and its weighted sums over all the
pixels it covers go into the owner's partial sums (`tiles.partial_path`); each tile's map
blends the sums of every tile whose windows reach into it (`WindowPlan.sources`). So a
region costs what its area costs: window passes per pixel are the lattice's own, whatever
the tile size.

Everything here comes from the lattice (a tile's row and column, `top // tile_size`,
`left // tile_size`), never from a search over pairs: a country of 10^5 tiles plans in
seconds. Light to import: no torch, no GDAL.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from tqdm import tqdm

from agbm.inference.tiling import Block, Tiling
from agbm.region.grid import Tile

#: A window's top-left pixel (row, col) on the region's grid.
Corner = tuple[int, int]


def lattice(tiles: Iterable[Tile], tile_size: int) -> dict[tuple[int, int], Tile]:
    """The region's tiles by their place on the lattice (row, column)."""
    return {(t.top // tile_size, t.left // tile_size): t for t in tiles}


def cells_over(block: Block, tile_size: int) -> list[tuple[int, int]]:
    """The lattice places (row, column) that `block` overlaps, in raster order."""
    top, left, height, width = block
    rows = range(top // tile_size, (top + height - 1) // tile_size + 1)
    cols = range(left // tile_size, (left + width - 1) // tile_size + 1)
    return [(r, c) for r in rows for c in cols]


def tiles_over(at: dict[tuple[int, int], Tile], block: Block, tile_size: int) -> list[Tile]:
    """The region's tiles (`at`: by `lattice`) that `block` overlaps, in raster order."""
    return [at[cell] for cell in cells_over(block, tile_size) if cell in at]


def extent(corners: Sequence[Corner], tiling: Tiling) -> Block:
    """The block that the windows at `corners` (raster order, at least one) cover, cropped
    to the grid: where their owner's partial sums lie."""
    (height, width), (h, w) = tiling.shape, tiling.size
    top, left = corners[0][0], min(c for _, c in corners)
    bottom = min(corners[-1][0] + h, height)
    right = min(max(c for _, c in corners) + w, width)
    return top, left, bottom - top, right - left


@dataclass(frozen=True)
class WindowPlan:
    """The region's windows by owner (see the module's docstring): `owned` gives each owning
    tile's windows (their corners, raster order), `sources` each tile's owners of windows
    that reach into it (raster order: the sums its map blends)."""

    owned: dict[str, list[Corner]]
    sources: dict[str, list[str]]

    def recipients(self) -> dict[str, list[str]]:
        """Each owner's tiles whose maps blend its sums: its partial sums may go once all
        of them are written."""
        found: dict[str, list[str]] = {}
        for tile_id, owners in self.sources.items():
            for owner in owners:
                found.setdefault(owner, []).append(tile_id)
        return found

    def windows(self) -> int:
        """How many windows the region's tiles predict, each once."""
        return sum(len(c) for c in self.owned.values())


def plan_windows(
    tiles: Sequence[Tile], tiling: Tiling, tile_size: int, *, progress: bool = False
) -> WindowPlan:
    """Each window of `tiling` (the region's lattice) under its owner among `tiles` (cut in
    `tile_size` pixels), and each tile's sources; windows that reach into none of `tiles`
    (over the grid's parts outside the area) are predicted by none. `progress`: a bar of
    the lattice's rows of windows."""
    at = lattice(tiles, tile_size)
    owned: dict[str, list[Corner]] = {}
    sources: dict[str, dict[str, None]] = {t.id: {} for t in tiles}  # ordered sets
    (h, w), height, width = tiling.size, *tiling.shape
    for row in tqdm(tiling.rows, desc="planning", unit="row", disable=not progress, delay=1):
        for col in tiling.cols:
            block = (row, col, min(h, height - row), min(w, width - col))
            reached = tiles_over(at, block, tile_size)
            if not reached:
                continue
            owner = reached[0].id
            owned.setdefault(owner, []).append((row, col))
            for tile in reached:
                sources[tile.id][owner] = None
    return WindowPlan(owned, {tid: sorted(found) for tid, found in sources.items()})
