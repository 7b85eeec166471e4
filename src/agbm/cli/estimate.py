"""`agbm estimate`: design-unbiased totals from a map and a probability sample of plots."""

from __future__ import annotations

import argparse
from pathlib import Path

from agbm.cli.options import add_zones_id_option
from agbm.io import check_output_file


def strata_arg(values: list[str] | None) -> list[float] | Path | None:
    """`--strata`'s values: class edges when they are all numbers, else one polygon file;
    a one-line `ValueError` otherwise."""
    if values is None:
        return None
    try:
        return [float(value) for value in values]
    except ValueError:
        if len(values) == 1:
            return Path(values[0])
        raise ValueError(
            f"--strata {' '.join(values)}: give class edges in t/ha (e.g. 0 100 200) or one "
            "polygon file"
        ) from None


def _run(args: argparse.Namespace) -> int:
    from agbm.evaluation.estimate import estimate, write_estimates

    if args.out.suffix.lower() != ".csv":
        raise ValueError(f"--out {args.out}: give a .csv file")
    strata = strata_arg(args.strata)
    files = [args.map, args.plots, args.zones, args.plots_to, args.map_to]
    check_output_file(args.out, [*files, strata if isinstance(strata, Path) else None])
    table = estimate(
        args.map, args.plots, args.zones, args.id_field, args.coverage, strata,
        args.plots_to, args.map_to, strata_field=args.strata_field,
    )  # fmt: skip
    write_estimates(table, args.out)
    assisted = table[(table["method"] == "model_assisted") & (table["reason"] == "")]
    total = f"{float(assisted['agb_t'].sum()):,.0f} t"
    what = (
        f"a net change of {total}, emissions {float(assisted['emissions_co2e_t'].sum()):,.0f} t"
        if args.map_to is not None
        else f"{total} of above-ground biomass, {float(assisted['co2e_t'].sum()):,.0f} t"
    )
    print(
        f"{table['zone'].nunique()} zone(s), {len(assisted)} with an estimate: model-assisted "
        f"{what} CO2e; wrote {args.out}"
    )
    return 0


#: `agbm estimate --help`'s description.
DESCRIPTION = (
    "Design-based estimates of each zone's mean AGB and total from field plots, the map "
    "making them more precise (docs/estimate.md): direct (plots alone), model_assisted (the "
    "difference estimator: the map's exact zone mean plus the plots' mean residual) and with "
    "--strata post_stratified (by map classes or stratum polygons); Student-t intervals at "
    "--coverage, totals (mean x mapped_ha), carbon, CO2e, the relative efficiency over plots "
    "alone and the interval's half-width in %. Unbiased whatever the map's bias when PLOTS "
    "are a random or systematic sample of the zone measured in the map's year; GEDI "
    "footprints are refused. "
    "A zone with under 2 plots gets a reason, under 10 a warning. With --plots-to and "
    "--map-to, the same estimators of the change (plot change minus the map's change over "
    "the plot's disc) and emissions_co2e_t (a loss positive). Needs pip install "
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
    add_zones_id_option(parser)
    parser.add_argument(
        "--coverage", type=float, default=0.9, help="the intervals' coverage (default 0.9)"
    )
    parser.add_argument(
        "--strata", nargs="+", metavar="T_HA|FILE",
        help="for post-stratification, map class edges in t/ha (0 100 200 is 0-100, 100-200 "
        "and over 200) or a polygon file in any CRS with --strata-field",
    )  # fmt: skip
    parser.add_argument(
        "--strata-field", help="the field naming each polygon's stratum in --strata FILE"
    )
    parser.add_argument(
        "--plots-to", type=Path,
        help="the same plots measured again (paired by id: agbm labels --columns id=NAME): "
        "estimate the change from --map to --map-to instead",
    )  # fmt: skip
    parser.add_argument("--map-to", type=Path, help="the later AGB map of the change")
    parser.set_defaults(func=_run)
