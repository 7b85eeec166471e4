"""Mapping a whole region: its area and 10 m grid and the tiles that cut it (`grid`), who
predicts each window of its lattice, once, and whose sums each map blends (`lattice`), each
tile's work (`tiles`: compose its core, join the composed tiles into one mosaic, predict its
windows' partial sums, blend its map), the Dask cluster the work runs on and where each
kind of task goes (`cluster`), the graph's tasks (`tasks`), the run that plans, submits and
collects them (`engine`, `agbm map-region`), what a run did (`report`), the region's STAC
collection (`stac`), and training chips where labels are, composed on the same cluster
(`chips`, `agbm chips`)."""

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
