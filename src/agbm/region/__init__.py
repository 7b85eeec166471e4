"""Mapping a whole region: its area and 10 m grid, the tiles that cut it, and (to come) the
Dask graph that composes and predicts them (`agbm map-region`, issue 19)."""

from agbm.region.grid import TILE_SIZE, RegionGrid, Tile, bbox_area, read_area, region_grid

__all__ = ["TILE_SIZE", "RegionGrid", "Tile", "bbox_area", "read_area", "region_grid"]
