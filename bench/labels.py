"""Placing labels on chips at a country's scale; one line per figure.

    python bench/labels.py [--labels 1000000] [--side-km 500]

Random points over a square of --side-km on UTM zone 35N: `agbm chips`' placement (each
label on its pixel's chip of the lattice, `chips_with_labels`) and `agbm train --labels`'
(each chip asks a spatial index of the labels, `place_labels`) on the chips that hold them.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from pyproj import CRS, Transformer

from agbm.labels.chips import place_labels
from agbm.labels.frame import labels_frame
from agbm.region.chips import chips_with_labels, labels_grid
from agbm.region.tiles import tile_transform

UTM = "EPSG:32635"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--labels", type=int, default=1_000_000, help="labels (default 10^6)")
    parser.add_argument("--side-km", type=float, default=500.0, help="square side (500 km)")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    side = args.side_km * 1000
    x, y = (
        500_000 + rng.uniform(0, side, args.labels),
        6_800_000 - rng.uniform(0, side, args.labels),
    )
    lon, lat = Transformer.from_crs(UTM, "EPSG:4326", always_xy=True).transform(x, y)
    labels = labels_frame(lon, lat, np.zeros(args.labels), 8.0, 12.5, None, "bench")
    start = time.perf_counter()
    grid = labels_grid(labels, UTM)
    chips = chips_with_labels(grid, labels, Path("bench"))
    lattice = time.perf_counter() - start
    print(f"agbm chips, {args.labels:,} labels on {len(chips):,} chips: {lattice:.1f} s")
    crs = CRS.from_user_input(grid.crs)
    grids = {c: (crs, tile_transform(grid, t), (t.height, t.width)) for c, (t, _) in chips.items()}
    start = time.perf_counter()
    place_labels(labels, grids, "bench")
    indexed = time.perf_counter() - start
    print(f"train --labels, {args.labels:,} labels on {len(grids):,} chips: {indexed:.1f} s")


if __name__ == "__main__":
    main()
