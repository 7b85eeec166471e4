"""`agbm map-region`: a region of any size, tile by tile on a Dask cluster."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from agbm.cli.change import add_change_calibration_option
from agbm.cli.options import (
    YEAR_MONTHS,
    add_area_options,
    add_calibration_options,
    add_catalog_options,
    add_cluster_options,
    add_inference_options,
    add_window_options,
    add_year_option,
    inference_options,
)
from agbm.data.bands import PIXEL_M
from agbm.region.cluster import PREDICT_ON
from agbm.region.grid import S2_BLOCK, TILE_SIZE

if TYPE_CHECKING:
    from agbm.inference.options import InferenceOptions
    from agbm.region.engine import RegionPlan


def _run(args: argparse.Namespace) -> int:
    from agbm.io import refuse_overwriting_inputs
    from agbm.region import grid_of
    from agbm.region.engine import RegionPlan, dry_run, map_region
    from agbm.region.report import describe, describe_plan

    calibrations = [args.calibration, args.change_calibration]
    refuse_overwriting_inputs([args.out], [args.region, *args.checkpoint, *calibrations])
    if len(args.year) > 2 or (len(args.year) == 1 and args.change_calibration):
        raise ValueError("give --year one year, or two for their change (--change-calibration)")
    grid = grid_of(args.region, args.bbox, args.crs)
    plan = RegionPlan(
        args.out,
        grid,
        args.year[0],
        args.tile_size,
        args.catalog,
        args.s2_catalog,
        args.scheduler,
        args.retries,
        args.predict_on,
    )
    options = inference_options(args)
    if args.dry_run:
        each = " (for each year)" if len(args.year) > 1 else ""
        print(describe_plan(dry_run(plan, options=options, progress=True)) + each)
        return 0
    if len(args.year) == 2:
        return _two_years(args, plan, options)
    result = map_region(plan, options=options, progress=True)
    print(describe(result))
    return 1 if result.failed else 0


def _two_years(args: argparse.Namespace, plan: RegionPlan, options: InferenceOptions) -> int:
    """`--year A B`: both years' region folders and their change."""
    from agbm.region.years import describe_years, map_region_years

    result = map_region_years(
        plan, args.year, options=options, change_calibration=args.change_calibration,
        progress=True,
    )  # fmt: skip
    print(describe_years(result))
    return 1 if result.change is None else 0


#: `agbm map-region --help`'s description.
DESCRIPTION = (
    "Map the biomass of a region of any size (a vector file's polygons in any CRS, or a "
    "lon/lat box; W > E crosses the antimeridian) on a 10 m grid, tile by tile on a Dask "
    "cluster: this machine's (a predict worker per GPU, or one on the CPU's threads, and "
    "compose workers) or --scheduler's. Each tile's inputs are composed once from the STAC "
    "catalog, each window of the region's one lattice is predicted once (by the tile "
    "holding its top-left corner), and each tile's map blends every window that reaches "
    "into it, so the map does not depend on the tile size. Writes OUT/tiles/*.tif (COGs), "
    "OUT/agbm.vrt, OUT/agbm.png, OUT/collection.json (STAC), OUT/region.json and keeps "
    "OUT/inputs/. Resumable: tiles done are skipped. --dry-run sizes a run first. "
    "Needs pip install 'agbm[region]'."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """`agbm map-region`."""
    add_area_options(
        parser, True, "vector file of the area (GeoJSON, GPKG, SHP)", "lon/lat box of any size"
    )
    add_year_option(
        parser, help=f"the 12 months {YEAR_MONTHS}; two years A B map both on one grid "
        "(OUT/A/, OUT/B/) and their change B - A (OUT/change.tif, as agbm change)",
        nargs="+",
    )  # fmt: skip
    parser.add_argument("--out", type=Path, required=True, help="region folder")
    parser.add_argument("--crs", help="the grid's CRS, e.g. EPSG:3067 (default: centre's UTM zone)")
    km = TILE_SIZE * PIXEL_M / 1000
    parser.add_argument(
        "--tile-size", type=int, default=TILE_SIZE, help=f"tile side in pixels, a multiple of "
        f"{S2_BLOCK} (default {TILE_SIZE}: {km:g} km, ~0.5 GB of composed inputs per task)"
    )  # fmt: skip
    add_catalog_options(parser)
    add_window_options(parser)
    add_inference_options(parser, "windows")
    add_cluster_options(
        parser, "tile", "a cluster of this machine: one worker per GPU predicts, one per other "
        "core composes (no GPU: a quarter of the cores compose, one worker predicts on all)"
    )  # fmt: skip
    parser.add_argument(
        "--predict-on", choices=PREDICT_ON, default="auto",
        help="predict on workers declaring the resource GPU (else PREDICT), composing on "
        "those declaring COMPOSE: when one is connected at the start (auto), on GPU workers "
        "always (gpu: they may join later), or on any worker (any)",
    )  # fmt: skip
    add_calibration_options(parser)
    add_change_calibration_option(parser, "with two years, the change's bounds")
    parser.add_argument(
        "--dry-run", action="store_true",
        help="plan only: print the tiles, the windows, the window passes per pixel and the "
        "bytes to fetch, and exit (no cluster, no folder, nothing fetched)",
    )  # fmt: skip
    parser.set_defaults(func=_run)
