"""`agbm calibrate`: split-conformal calibration of a model on held-out chips."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from agbm.cli.change import add_pair_options
from agbm.cli.options import add_inference_options, inference_options
from agbm.data.layout import SPLITS
from agbm.io import check_output_file


def _width(width: float) -> str:
    """A half-width as the table shows it; NaN: too few residuals for the coverage."""
    return f"± {width:.1f}" if math.isfinite(width) else "too few residuals"


def _run(args: argparse.Namespace) -> int:
    from agbm.data.sources import data_folders
    from agbm.evaluation.calibration import calibrate, calibrate_change
    from agbm.evaluation.evaluate import format_rows
    from agbm.inference.intervals import bin_names, check_coverage

    roots = _roots(args)
    check_coverage(args.coverage)  # before any prediction, and before the file is written
    check_output_file(args.out, [*args.checkpoint, *(f for r in roots for f in data_folders(r))])
    options = inference_options(args)
    common = {"options": options, "split": args.split, "workers": args.workers, "progress": True}
    if args.change:
        calibration = calibrate_change(args.before, args.after, **common)
    else:
        calibration = calibrate(args.data, **common)
    calibration.write(args.out)
    widths = calibration.pixel_quantiles(args.coverage)
    what = calibration.residuals  # pixels, or footprints of labels
    predicted = "the change of pixels predicted" if args.change else f"{what} predicted"
    rows = [
        (f"{predicted} {name} t/ha (n {sum(n):,})", _width(w))
        for name, n, w in zip(bin_names(calibration.bins), calibration.pixel, widths, strict=True)
    ]
    for side in calibration.blocks:
        width = calibration.block_quantile(side, args.coverage)
        n = sum(calibration.blocks[side])
        block = f"{'the change of ' if args.change else ''}means of {side} x {side} px blocks"
        if what == "footprints":  # labels measure no larger block: they serve every zone
            block = "footprint means, the width of every zone's mean"
        rows.append((f"{block} (n {n:,})", _width(width)))
    pairs = " (pairs of years)" if args.change else ""
    print(f"{args.coverage:.0%} intervals, t/ha, from {calibration.chips} chips{pairs}:")
    print(format_rows(rows))
    print(f"wrote {args.out}")
    return 0


def _roots(args: argparse.Namespace) -> list[Path]:
    """The data roots calibrated on: --data, or with --change --from and --to (one of the
    two ways, whole)."""
    if args.change:
        if args.before is None or args.after is None or args.data is not None:
            raise ValueError("--change calibrates on --from A --to B (not --data)")
        return [args.before, args.after]
    if args.data is None or args.before is not None or args.after is not None:
        raise ValueError("give --data, or --change --from A --to B")
    return [args.data]


#: `agbm calibrate --help`'s description.
DESCRIPTION = (
    "Split-conformal calibration of a model on chips with targets it never trained on (a "
    "held-out fold, the BioMassters test set for the winner's model): the absolute "
    "residuals per pixel, by bin of predicted AGB, and of the means over square blocks of 1 "
    "to 256 pixels a side, counted through agbm predict's own path. Chips with labels "
    "instead (agbm chips) are calibrated on their footprints' means, which also serve "
    "every zone's total (conservative: labels cannot measure larger blocks). Writes "
    "CALIB.json for --calibration (maps) and agbm stats (totals), tied to the checkpoints' "
    "SHA-256 and the TTA. With --change --from A --to B (two roots of the same chips in two "
    "years, both with targets), calibrates the change itself instead on the chips both hold: "
    "the residuals of (pred B - pred A) - (true B - true A) by bin of predicted change (< "
    "-100, -100 to -50, -50 to -20, -20 to -5, -5 to 5, 5-20, 20-50, 50+ t/ha) and of block "
    "means, for agbm change and agbm stats --change --change-calibration."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """`agbm calibrate`."""
    parser.add_argument("--data", type=Path, help="data root with targets or chip labels")
    parser.add_argument(
        "--change", action="store_true",
        help="calibrate the change between two years on --from and --to instead of --data",
    )  # fmt: skip
    add_pair_options(
        parser, required=False,
        helps=("year A's data root, with targets", "year B's: the same chips, with targets"),
    )  # fmt: skip
    parser.add_argument("--split", default="test", choices=SPLITS, help="split (default test)")
    parser.add_argument("--out", type=Path, required=True, help="calibration file, .json")
    add_inference_options(parser, "chips")
    parser.add_argument("--workers", type=int, default=2, help="loader workers (default 2)")
    parser.add_argument(
        "--coverage", type=float, default=0.9, help="coverage of the intervals shown (0.9)"
    )
    parser.set_defaults(func=_run)
