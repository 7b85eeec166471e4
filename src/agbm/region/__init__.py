"""Mapping a whole region: its area and 10 m grid and the tiles that cut it (`grid`), each
tile's work (`tiles`: compose its core, join the composed tiles into one mosaic, predict its
map), and, to come, the Dask graph that runs them (`agbm map-region`, issue 19)."""

from agbm.region.grid import (
    TILE_SIZE,
    RegionGrid,
    Tile,
    bbox_area,
    grid_of,
    read_area,
    region_grid,
)

__all__ = ["TILE_SIZE", "RegionGrid", "Tile", "bbox_area", "grid_of", "read_area", "region_grid"]
