"""`agbm labels`: GEDI L4A footprints and field plots as one labels file."""

from __future__ import annotations

import argparse
from pathlib import Path

from agbm.cli.options import YEAR_MONTHS, add_area_options, add_year_option
from agbm.errors import DataError
from agbm.io import check_output_file
from agbm.labels.frame import LABELS_CRS, PLOT_RADIUS_M
from agbm.labels.gedi import MIN_SENSITIVITY


def _area(args: argparse.Namespace) -> object | None:
    """The region as a geometry in EPSG:4326, or None when none was given."""
    from agbm.region.grid import bbox_area, read_area, reproject

    if args.region is not None:
        area, crs = read_area(args.region)
        return reproject(area, crs, "EPSG:4326")
    return None if args.bbox is None else bbox_area(args.bbox)


def _run(args: argparse.Namespace) -> int:
    from agbm.cli import as_flags
    from agbm.labels import gedi
    from agbm.labels.collect import collect, read_all_plots
    from agbm.labels.frame import write_labels
    from agbm.labels.plots import PlotTable, check_crs, parse_columns

    inputs = [*(args.gedi or []), *(args.plots or [])]
    check_output_file(args.out, inputs, args.overwrite)
    filters = gedi.GediFilters(args.min_sensitivity, args.keep_degraded, args.keep_low_quality)
    table = PlotTable(parse_columns(args.columns or []), check_crs(args.plots_crs),
                      args.plot_radius)  # fmt: skip
    area = _area(args)
    plots = read_all_plots(args.plots or [], table)  # checked before any download
    granules = list(args.gedi or [])
    if args.download:
        if area is None or args.year is None:
            raise ValueError("--download needs --region or --bbox, and --year")
        granules += gedi.download(args.download, area.bounds, args.year)
    frame, lines = collect(granules, plots, area, args.year, filters)
    for line in lines:
        print(as_flags(line, args.flags))
    if frame.empty:  # chips, train and evaluate would refuse it: say so now, write nothing
        raise DataError(f"{args.out}: not written, no label is left (the counts above say why)")
    write_labels(frame, args.out)
    print(f"wrote {len(frame):,} labels to {args.out}")
    return 0


#: `agbm labels --help`'s description.
DESCRIPTION = (
    "Write one labels file (GeoPackage, or GeoParquet for .parquet; points in EPSG:4326 with "
    "agbd and agbd_se in t/ha, radius_m, date, source) from GEDI L4A v2 or v2.1 granules "
    "(kept by default: l4_quality_flag 1, degrade_flag 0, sensitivity >= 0.9, no fill value, "
    "each but the last a flag; 12.5 m radius) "
    "and field plots (a CSV, .xlsx or points file; its columns named by --columns, e.g. "
    "--columns lon=X_ETRS lat=Y_ETRS 'agbd=AGB (t/ha)' size_ha='Plot size (ha)' year=Year "
    "--plots-crs EPSG:3067; a year-only plot is dated 1 July, so --year Y keeps year Y's), "
    "inside --region or --bbox and within --year's months. "
    "Says how many each filter removed. GEDI and plots need pip install 'agbm[labels]'; "
    "--download, pip install 'agbm[gedi]' and a NASA Earthdata login."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """`agbm labels`."""
    parser.add_argument("--gedi", nargs="+", type=Path, metavar="H5", help="GEDI L4A granules")
    parser.add_argument(
        "--download", type=Path, metavar="DIR",
        help="fetch the region's and year's L4A granules from NASA Earthdata into DIR first",
    )  # fmt: skip
    parser.add_argument(
        "--plots", nargs="+", type=Path, metavar="FILE",
        help="plots files: CSV (any delimiter), .xlsx (first sheet) or a vector file of points",
    )  # fmt: skip
    parser.add_argument(
        "--columns", nargs="+", metavar="FIELD=NAME",
        help=(
            "the plots' column names (trimmed, any case) for the fields lon, lat, agbd (t/ha), "
            "and optionally se, date or year (a year-only plot is dated 1 July of it), "
            "radius_m or size_ha (a circle of that area), id; a field not named is looked "
            "for under its own name"
        ),
    )  # fmt: skip
    parser.add_argument(
        "--plots-crs", default=LABELS_CRS, metavar="CRS",
        help=f"the CRS of the plots' lon/lat columns, e.g. EPSG:3067 (default {LABELS_CRS})",
    )  # fmt: skip
    add_area_options(
        parser, False, "keep labels inside this vector file's polygons",
        "keep labels inside this lon/lat box",
    )  # fmt: skip
    add_year_option(parser, False, f"keep labels of {YEAR_MONTHS} (undated stay)")
    parser.add_argument("--out", type=Path, required=True, help="labels file, .gpkg or .parquet")
    parser.add_argument(
        "--min-sensitivity", type=float, default=MIN_SENSITIVITY,
        help=f"the lowest GEDI sensitivity kept, 0 to 1 (default {MIN_SENSITIVITY}; 0 keeps any)",
    )  # fmt: skip
    parser.add_argument(
        "--keep-degraded", action="store_true",
        help="keep GEDI footprints with a non-zero degrade_flag (degraded pointing or positioning)",
    )  # fmt: skip
    parser.add_argument(
        "--keep-low-quality", action="store_true",
        help="keep GEDI footprints with l4_quality_flag 0",
    )  # fmt: skip
    parser.add_argument(
        "--plot-radius", type=float, default=PLOT_RADIUS_M,
        help=f"plots' radius in m where the file gives none (default {PLOT_RADIUS_M}: 0.05 ha)",
    )  # fmt: skip
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    parser.set_defaults(func=_run)
