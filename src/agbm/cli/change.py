"""`agbm change`: the biomass change between two years' maps of one model, with intervals."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from agbm.cli.options import add_calibration_options
from agbm.errors import warn
from agbm.io import check_output_file, refuse_overwriting_inputs

if TYPE_CHECKING:
    from agbm.inference.intervals import Calibration


def _run(args: argparse.Namespace) -> int:
    from agbm.evaluation import change
    from agbm.evaluation.evaluate import format_rows

    folders = args.before.is_dir() and not change.map_path(args.before).is_file()
    inputs = [args.before, args.after, args.calibration]
    record = args.out / "CHANGE.json" if folders else args.out.with_suffix(".json")
    refuse_overwriting_inputs([record], inputs)  # a calibration named like the map, say
    if folders:
        refuse_overwriting_inputs([args.out], inputs)
    else:
        check_output_file(args.out, inputs, args.overwrite)
    intervals = change.ChangeIntervals(_calibration(args, folders), args.coverage)
    if folders:
        chips = change.folder_change(args.before, args.after, args.out, intervals=intervals)
        print(f"wrote the change of {len(chips)} chip(s) to {args.out}")
    else:
        change.map_change(args.before, args.after, args.out, intervals=intervals, years=args.years)
        print(f"wrote {args.out}")
    rows = change.detectable_rows(intervals)
    if rows:
        print(f"minimum detectable change at {args.coverage:.0%}, t/ha:")
        print(format_rows(rows))
    change.write_record(record, args.before, args.after, intervals, args.years)
    return 0


def _calibration(args: argparse.Namespace, folders: bool) -> Calibration | None:
    """The stock calibration, checked against both years' maps (a chip's, for folders)."""
    if args.calibration is None:
        return None
    from agbm.data.layout import agbm_chips, prediction_path
    from agbm.evaluation.change import map_path, year_coverage
    from agbm.evaluation.totals import map_calibration
    from agbm.inference.intervals import check_coverage

    check_coverage(args.coverage)
    for year in (args.before, args.after):
        chips = agbm_chips(year) if folders else []
        path = prediction_path(year, chips[0]) if chips else map_path(year)
        calibration = map_calibration(path, args.calibration)
    note = calibration.pixel_note(year_coverage(args.coverage), args.calibration)
    if note:  # (a coverage no bin can give was refused by pixel_note)
        warn(note)
    return calibration


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
    "_significant.tif. Prints the minimum detectable change per block size and records it "
    "in OUT's .json (folders: OUT/CHANGE.json). Maps on other grids or of other models are "
    "refused."
)


def add_pair_options(parser: argparse.ArgumentParser, required: bool = True) -> None:
    """`--from A --to B` and `--years`: the two years' maps that `change` and `stats
    --change` compare."""
    parser.add_argument(
        "--from", dest="before", required=required, type=Path, metavar="A",
        help="year A's map (GeoTIFF, VRT, region folder) or predict folder",
    )  # fmt: skip
    parser.add_argument(
        "--to", dest="after", required=required, type=Path, metavar="B",
        help="year B's, of the same model and grid",
    )  # fmt: skip
    parser.add_argument(
        "--years", nargs=2, type=int, metavar=("A", "B"),
        help="the two maps' years (tags; emissions per year)",
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
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out map")
    parser.set_defaults(func=_run)
