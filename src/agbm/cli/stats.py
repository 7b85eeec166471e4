"""`agbm stats`: totals of biomass, carbon and CO2e over polygons."""

from __future__ import annotations

import argparse
from pathlib import Path

from agbm.cli.change import add_change_calibration_option, add_pair_options
from agbm.cli.options import add_calibration_options, add_zones_id_option
from agbm.io import check_output_file


def _run(args: argparse.Namespace) -> int:
    if args.change:
        return _change(args)
    if args.map is None:
        raise ValueError("give --map, or --change --from A --to B")
    if args.change_calibration is not None:
        raise ValueError("--change-calibration gives the intervals of --change")
    from agbm.evaluation.totals import write_stats, zone_stats

    check_output_file(args.out, [args.map, args.zones, args.calibration])
    stats = zone_stats(
        args.map, args.zones, args.id_field, args.calibration, args.coverage, args.carbon_fraction
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


def _change(args: argparse.Namespace) -> int:
    """`stats --change`: each zone's net change and emissions between two maps."""
    if args.before is None or args.after is None or args.map is not None:
        raise ValueError("--change compares --from A --to B (not --map)")
    from agbm.evaluation.change import zone_change
    from agbm.evaluation.totals import write_stats

    inputs = [args.before, args.after, args.zones, args.calibration, args.change_calibration]
    check_output_file(args.out, inputs)
    stats = zone_change(
        args.before, args.after, args.zones, id_field=args.id_field, calibration=args.calibration,
        change_calibration=args.change_calibration, coverage=args.coverage,
        carbon_fraction=args.carbon_fraction, years=args.years,
    )  # fmt: skip
    write_stats(stats, args.out)
    print(
        f"{len(stats)} zone(s): net change {float(stats['delta_agb_t'].sum()):,.0f} t, "
        f"emissions {float(stats['emissions_co2e_t'].sum()):,.0f} t CO2e; wrote {args.out}"
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
    parser.add_argument("--map", type=Path, help="AGB map (t/ha): GeoTIFF or VRT")
    parser.add_argument("--zones", type=Path, required=True, help="polygons: GeoJSON, GPKG, SHP")
    parser.add_argument("--out", type=Path, required=True, help="STATS: .csv, .gpkg or .parquet")
    add_zones_id_option(parser)
    add_calibration_options(
        parser, "CALIB.json (agbm calibrate) of the map's model: the intervals of the totals"
    )
    parser.add_argument(
        "--carbon-fraction", type=float, default=0.47,
        help="carbon per unit of dry biomass, in (0, 1] (default 0.47, IPCC's for forests)",
    )  # fmt: skip
    parser.add_argument(
        "--change", action="store_true",
        help="each zone's net change between --from and --to instead: both years' AGB, "
        "delta_agb_t, carbon, emissions_co2e_t (a loss is a positive emission; per year by "
        "--years or the maps' year tags), and with --calibration their intervals by the "
        "union bound and the areas "
        "of significant loss and gain (loss_ha, gain_ha); with --change-calibration, from "
        "the paired block quantile nearest each zone's mapped area instead",
    )  # fmt: skip
    add_pair_options(parser, required=False)
    add_change_calibration_option(parser, "the intervals of --change's totals")
    parser.set_defaults(func=_run)
