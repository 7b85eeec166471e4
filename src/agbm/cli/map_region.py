"""`agbm map-region`: a region of any size, tile by tile on a Dask cluster."""

from __future__ import annotations

import argparse
from pathlib import Path

from agbm.cli.options import add_calibration_options, add_inference_options, inference_options
from agbm.compose.catalog import EARTH_SEARCH, PLANETARY_COMPUTER


def _run(args: argparse.Namespace) -> int:
    from agbm.io import refuse_overwriting_inputs
    from agbm.region import grid_of
    from agbm.region.engine import RegionPlan, map_region
    from agbm.region.report import describe

    refuse_overwriting_inputs([args.out], [args.region, *args.checkpoint, args.calibration])
    grid = grid_of(args.region, args.bbox, args.crs)
    plan = RegionPlan(
        args.out,
        grid,
        args.year,
        args.tile_size,
        args.catalog,
        args.s2_catalog,
        args.scheduler,
        args.retries,
        args.predict_on,
    )
    result = map_region(plan, options=inference_options(args))
    print(describe(result))
    return 1 if result.failed else 0


#: `agbm map-region --help`'s description.
DESCRIPTION = (
    "Map the biomass of a region of any size (a vector file's polygons in any CRS, or a "
    "lon/lat box; W > E crosses the antimeridian) on a 10 m grid, tile by tile on a Dask "
    "cluster: this machine's (a predict worker per GPU, compose workers on the other cores) "
    "or --scheduler's. Each tile's inputs are "
    "composed once from the STAC catalog and its map predicted from every window of the "
    "region's one lattice that reaches into it, so the map does not depend on the tile "
    "size. Writes OUT/tiles/*.tif (COGs), OUT/agbm.vrt, OUT/agbm.png, OUT/collection.json "
    "(STAC), OUT/region.json and keeps OUT/inputs/. Resumable: tiles done are skipped. "
    "Needs pip install 'agbm[region]'."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """`agbm map-region`."""
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--region", type=Path, help="vector file of the area (GeoJSON, GPKG, SHP)")
    where.add_argument("--bbox", nargs=4, type=float, metavar=("W", "S", "E", "N"),
                       help="lon/lat box of any size")  # fmt: skip
    parser.add_argument("--year", type=int, required=True, help="September YEAR-1 .. August YEAR")
    parser.add_argument("--out", type=Path, required=True, help="region folder")
    parser.add_argument("--crs", help="the grid's CRS, e.g. EPSG:3067 (default: centre's UTM zone)")
    parser.add_argument(
        "--tile-size", type=int, default=1024, help="tile side in pixels, a multiple of 256 "
        "(default 1024: 10.24 km, ~0.5 GB of composed inputs per task)"
    )  # fmt: skip
    parser.add_argument("--catalog", default=PLANETARY_COMPUTER, help="STAC API or catalog.json")
    parser.add_argument("--s2-catalog", help=f"another catalog for Sentinel-2, e.g. {EARTH_SEARCH}")
    parser.add_argument("--window", type=int, default=256, help="window side (default 256)")
    parser.add_argument("--overlap", type=int, default=64, help="window overlap (default 64)")
    add_inference_options(parser, "windows")
    parser.add_argument(
        "--retries", type=int, default=2, help="retries of a failed tile (default 2)"
    )
    parser.add_argument(
        "--scheduler", help="a running Dask scheduler's address (tcp://HOST:PORT) or file "
        "(default: a cluster of this machine: one worker per GPU predicts, one per other "
        "core composes)"
    )  # fmt: skip
    parser.add_argument(
        "--predict-on", choices=("auto", "gpu", "any"), default="auto",
        help="predict on workers declaring the resource GPU, composing on those declaring "
        "COMPOSE: when one is connected at the start (auto), always (gpu: they may join "
        "later), or on any worker (any)",
    )  # fmt: skip
    add_calibration_options(parser)
    parser.set_defaults(func=_run)
