"""`agbm change`: the biomass change between two years' maps of one model, with intervals."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from agbm.cli.options import add_calibration_options
from agbm.io import check_output_file, refuse_overwriting_inputs

if TYPE_CHECKING:
    from agbm.evaluation.change import ChangeIntervals


def _run(args: argparse.Namespace) -> int:
    from agbm.evaluation import change
    from agbm.evaluation.evaluate import format_rows

    folders = args.before.is_dir() and not change.map_path(args.before).is_file()
    inputs = [args.before, args.after, args.calibration, args.change_calibration]
    record = args.out / "CHANGE.json" if folders else args.out.with_suffix(".json")
    refuse_overwriting_inputs([record], inputs)  # a calibration named like the map, say
    if folders:
        refuse_overwriting_inputs([args.out], inputs)
    else:
        check_output_file(args.out, inputs, args.overwrite)
    intervals = _intervals(args, folders)
    years = args.years
    if folders:
        chips = change.folder_change(args.before, args.after, args.out, intervals=intervals)
        print(f"wrote the change of {len(chips)} chip(s) to {args.out}")
    else:
        years = change.map_change(
            args.before, args.after, args.out, intervals=intervals, years=years
        )
        print(f"wrote {args.out}" + (f" ({years[0]} to {years[1]})" if years else ""))
    rows = change.detectable_rows(intervals)
    if rows:
        print(f"minimum detectable change at {args.coverage:.0%}, t/ha:")
        print(format_rows(rows))
    change.write_record(record, args.before, args.after, intervals, years)
    return 0


def _intervals(args: argparse.Namespace, folders: bool) -> ChangeIntervals:
    """How the change's bounds are made (`change_intervals`), checked against both years'
    maps (a chip's, for folders)."""
    from agbm.data.layout import agbm_chips, prediction_path
    from agbm.evaluation.change import change_intervals, map_path

    maps = []
    for year in (args.before, args.after):
        chips = agbm_chips(year) if folders else []
        maps.append(prediction_path(year, chips[0]) if chips else map_path(year))
    return change_intervals(
        maps, calibration=args.calibration, change_calibration=args.change_calibration,
        coverage=args.coverage,
    )  # fmt: skip


#: `agbm change --help`'s description.
DESCRIPTION = (
    "The AGB change B - A (t/ha) of two maps of the same model on one grid (GeoTIFFs, "
    "region VRTs or region folders; or two agbm predict folders, chip by chip). With "
    "--calibration (the model's stock calibration), each year's bounds are taken at coverage "
    "1 - (1 - c)/2, so that by the union bound the change interval [low_B - high_A, "
    "high_B - low_A] covers the true change with probability at least c whatever the "
    "correlation of the two years' errors (conservative); a change is significant where the "
    "whole interval is below 0 (loss, -1) or above (gain, +1). Maps: OUT.tif with bands "
    "change, low, high, significance; folders: {chip}_change.tif, _low, _high, "
    "_significant.tif. With --change-calibration instead (agbm calibrate --change: the "
    "change itself calibrated on paired references), the interval is the change +- its "
    "bin's quantile at c directly: narrower, where the references are like the region's in "
    "both years. Prints the minimum detectable change per block size and records it "
    "in OUT's .json (folders: OUT/CHANGE.json). Maps on other grids or of other models, and "
    "a calibration of other maps or of the other kind, are refused."
)


#: `--from` and `--to`'s helps where they are two years' maps.
MAP_PAIR = (
    "year A's map (GeoTIFF, VRT, region folder) or predict folder",
    "year B's, of the same model and grid",
)


def add_pair_options(
    parser: argparse.ArgumentParser, required: bool = True, helps: tuple[str, str] = MAP_PAIR
) -> None:
    """`--from A --to B` and `--years`: the two years that `change` and `stats --change`
    compare (their maps), or that `calibrate --change` calibrates on (their roots: then
    `helps` say so, and there are no `--years`)."""
    parser.add_argument(
        "--from", dest="before", required=required, type=Path, metavar="A", help=helps[0]
    )
    parser.add_argument(
        "--to", dest="after", required=required, type=Path, metavar="B", help=helps[1]
    )
    if helps == MAP_PAIR:
        parser.add_argument(
            "--years", nargs=2, type=int, metavar=("A", "B"),
            help="the two maps' years, for the tags and the emissions per year (default: "
            "the maps' own AGBM_YEAR tags, which agbm's maps of composed imagery carry)",
        )  # fmt: skip


def add_change_calibration_option(parser: argparse.ArgumentParser, what: str) -> None:
    """`--change-calibration`: a paired calibration of the change (`agbm calibrate
    --change`), for `what` the command does with it."""
    parser.add_argument(
        "--change-calibration", type=Path, metavar="CHANGE_CALIB",
        help=f"CHANGE_CALIB.json (agbm calibrate --change) of the maps' model: {what} from "
        "the paired calibration at --coverage directly, instead of --calibration's union bound",
    )  # fmt: skip


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """`agbm change`."""
    add_pair_options(parser)
    parser.add_argument(
        "--out", required=True, type=Path,
        help="the change map (.tif), or a folder for two predict folders",
    )  # fmt: skip
    add_calibration_options(
        parser, "CALIB.json (agbm calibrate) of the maps' model: the change's bounds"
    )
    add_change_calibration_option(parser, "the change's bounds")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out map")
    parser.set_defaults(func=_run)
