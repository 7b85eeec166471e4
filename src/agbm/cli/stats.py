"""`agbm stats`: totals of biomass, carbon and CO2e over polygons."""

from __future__ import annotations

import argparse
from pathlib import Path

from agbm.cli.options import add_calibration_options
from agbm.io import check_output_file


def _run(args: argparse.Namespace) -> int:
    from agbm.evaluation.totals import write_stats, zone_stats

    check_output_file(args.out, [args.map, args.zones, args.calibration])
    stats = zone_stats(
        args.map, args.zones, args.id, args.calibration, args.coverage, args.carbon_fraction
    )
    write_stats(stats, args.out)
    mapped = stats["mapped_ha"] > 0
    total = float(stats["agb_t"][mapped].sum())
    print(
        f"{len(stats)} zone(s), {int(mapped.sum())} with map data: {total:,.0f} t of "
        f"above-ground biomass, {total * args.carbon_fraction * 44 / 12:,.0f} t CO2e; "
        f"wrote {args.out}"
    )
    return 0


#: `agbm stats --help`'s description.
DESCRIPTION = (
    "Totals per polygon of an AGB map (a GeoTIFF or a region's VRT, t/ha): area_ha, "
    "mapped_ha, agbd_mean_t_ha, agb_t, carbon_t and co2e_t (exactextract's sums, each pixel "
    "weighted by the share the polygon covers and by its true area on the ellipsoid: a map "
    "in any CRS, lon/lat too), and with --calibration the interval of each "
    "total at --coverage (agb_t_low, agb_t_high, and carbon and CO2e alike, with coverage "
    "and interval_block_px, the side of the block used) from the "
    "calibrated block nearest the zone's mapped area; a calibration of another model than "
    "the one the map names (its AGBM_CHECKPOINTS tag) is refused. ZONES in any CRS; STATS "
    ".csv, .gpkg or .parquet. Needs pip install 'agbm[labels]'."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """`agbm stats`."""
    parser.add_argument("--map", type=Path, required=True, help="AGB map (t/ha): GeoTIFF or VRT")
    parser.add_argument("--zones", type=Path, required=True, help="polygons: GeoJSON, GPKG, SHP")
    parser.add_argument("--out", type=Path, required=True, help="STATS: .csv, .gpkg or .parquet")
    parser.add_argument("--id", help="the zones' id field (default: their row number)")
    add_calibration_options(
        parser, "CALIB.json (agbm calibrate) of the map's model: the intervals of the totals"
    )
    parser.add_argument(
        "--carbon-fraction", type=float, default=0.47,
        help="carbon per unit of dry biomass, in (0, 1] (default 0.47, IPCC's for forests)",
    )  # fmt: skip
    parser.set_defaults(func=_run)
