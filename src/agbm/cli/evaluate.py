"""`agbm evaluate`: score a prediction directory with the challenge metric, or any map
against labelled points."""

from __future__ import annotations

import argparse
from pathlib import Path

from agbm.data.layout import SPLITS, targets_folder
from agbm.io import check_output_file


def _run(args: argparse.Namespace) -> int:
    modes = {"dense": (args.pred, args.truth), "points": (args.labels, args.map)}
    used = [mode for mode, given in modes.items() if any(given)]
    if len(used) != 1 or not all(modes[used[0]]):
        raise ValueError("give either --pred DIR --truth ROOT, or --labels FILE --map MAP")
    dense = used == ["dense"]
    report = args.per_chip if dense else args.per_point
    if report:  # before the scoring, not after it; never over what is scored
        inputs = _dense_inputs(args) if dense else modes["points"]
        check_output_file(report, inputs)
    if not dense:
        return _points(args)
    from agbm.evaluation.evaluate import evaluate, format_table, write_per_chip

    result = evaluate(args.pred, args.truth, args.split, args.partial)
    print(format_table(result))
    if args.per_chip:
        write_per_chip(args.per_chip, result)
    return 0


def _dense_inputs(args: argparse.Namespace) -> list[Path]:
    """What `--pred` and `--truth` score, which no report may replace: the prediction
    files (a report beside them is fine), and the folder of the split's targets (a cache's
    split folder, or the `{split}_agbm/` folder of a data root or a folder of targets)."""
    from agbm.data.cache import is_cache

    truth, split = args.truth, args.split
    targets = truth / split if is_cache(truth) else targets_folder(truth, split)
    return [targets, *sorted(args.pred.glob("*.tif"))]


def _points(args: argparse.Namespace) -> int:
    from agbm.evaluation.evaluate import format_rows
    from agbm.evaluation.points import evaluate_points

    scores = evaluate_points(args.map, args.labels, args.per_point)
    print(format_rows([
        ("labels scored (footprint means)", f"{scores.n}"),
        ("labels without map data", f"{scores.missing}"),
        ("labels without a value (skipped)", f"{scores.unlabelled}"),
        ("RMSE (t/ha)", f"{scores.rmse:.3f}"),
        ("bias, map - label (t/ha)", f"{scores.bias:.3f}"),
        ("R²", f"{scores.r2:.3f}"),
    ]))  # fmt: skip
    return 0


#: `agbm evaluate --help`'s description.
DESCRIPTION = (
    "Average per-chip RMSE of PRED_DIR/{chip}_agbm.tif against the targets (--pred, --truth); "
    "or any AGB map (a GeoTIFF, a region's VRT, another product) against labelled points "
    "(--labels from agbm labels, --map): RMSE, bias, R² and n of the map's mean over each "
    "label's footprint disc, each pixel weighted by the share the disc covers."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """`agbm evaluate`."""
    parser.add_argument("--pred", type=Path, help="prediction directory")
    parser.add_argument("--truth", type=Path, help="data root or cache with the targets")
    parser.add_argument(
        "--partial",
        action="store_true",
        help="score only the chips that have a target (default: a missing target is an error)",
    )
    parser.add_argument("--split", default="test", choices=SPLITS, help="split (default test)")
    parser.add_argument("--per-chip", type=Path, help="write per-chip RMSEs to this CSV")
    parser.add_argument("--labels", type=Path, help="labels file (agbm labels) to score --map on")
    parser.add_argument("--map", type=Path, help="the AGB map (t/ha): GeoTIFF or VRT")
    parser.add_argument(
        "--per-point", type=Path, help="write one row per label (agbd, predicted, ...) to this CSV"
    )
    parser.set_defaults(func=_run)
