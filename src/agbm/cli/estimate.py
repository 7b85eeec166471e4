"""`agbm estimate`: design-unbiased totals from a map and a probability sample of plots."""

from __future__ import annotations

import argparse
from pathlib import Path

from agbm.io import check_output_file


def _run(args: argparse.Namespace) -> int:
    from agbm.evaluation.estimate import estimate, write_estimates

    if args.out.suffix.lower() != ".csv":
        raise ValueError(f"--out {args.out}: give a .csv file")
    check_output_file(args.out, [args.map, args.plots, args.zones])
    table = estimate(args.map, args.plots, args.zones, args.id, args.coverage, args.strata)
    write_estimates(table, args.out)
    assisted = table[(table["method"] == "model_assisted") & (table["reason"] == "")]
    print(
        f"{table['zone'].nunique()} zone(s), {len(assisted)} with an estimate: model-assisted "
        f"{float(assisted['agb_t'].sum()):,.0f} t of above-ground biomass, "
        f"{float(assisted['co2e_t'].sum()):,.0f} t CO2e; wrote {args.out}"
    )
    return 0


#: `agbm estimate --help`'s description.
DESCRIPTION = (
    "Design-based estimates of each zone's mean AGB and total from field plots, the map "
    "making them more precise (docs/estimate.md): direct (plots alone), model_assisted (the "
    "difference estimator: the map's exact zone mean plus the plots' mean residual) and with "
    "--strata post_stratified (by map classes); Student-t intervals at --coverage, totals "
    "(mean x mapped_ha), carbon, CO2e, the relative efficiency over plots alone and the "
    "interval's half-width in %. Unbiased whatever the map's bias when PLOTS are a random or "
    "systematic sample of the zone measured in the map's year; GEDI footprints are refused. "
    "A zone with under 2 plots gets a reason, under 10 a warning. Needs pip install "
    "'agbm[labels]'."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """`agbm estimate`."""
    parser.add_argument("--map", type=Path, required=True, help="AGB map (t/ha): GeoTIFF or VRT")
    parser.add_argument(
        "--plots", type=Path, required=True,
        help="field plots: a labels file of agbm labels --plots (.gpkg or .parquet)",
    )  # fmt: skip
    parser.add_argument("--out", type=Path, required=True, help="EST.csv: one row per zone, method")
    parser.add_argument("--zones", type=Path, help="polygons in any CRS (default: the whole map)")
    parser.add_argument("--id", help="the zones' id field (default: their row number)")
    parser.add_argument(
        "--coverage", type=float, default=0.9, help="the intervals' coverage (default 0.9)"
    )
    parser.add_argument(
        "--strata", type=float, nargs="+", metavar="T_HA",
        help="map class edges in t/ha for post-stratification: 0 100 200 is 0-100, 100-200 "
        "and over 200",
    )  # fmt: skip
    parser.set_defaults(func=_run)
