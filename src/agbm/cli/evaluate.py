"""`agbm evaluate`: score a prediction directory with the challenge metric."""

from __future__ import annotations

import argparse
from pathlib import Path

from agbm.data.layout import SPLITS
from agbm.evaluation.evaluate import evaluate, format_table, write_per_chip
from agbm.io import check_output_file


def _run(args: argparse.Namespace) -> int:
    if args.per_chip:
        check_output_file(args.per_chip)  # before the scoring, not after it
    result = evaluate(args.pred, args.truth, args.split, args.partial)
    print(format_table(result))
    if args.per_chip:
        write_per_chip(args.per_chip, result)
    return 0


#: `agbm evaluate --help`'s description.
DESCRIPTION = "Average per-chip RMSE of PRED_DIR/{chip}_agbm.tif against the targets."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """`agbm evaluate`."""
    parser.add_argument("--pred", required=True, type=Path, help="prediction directory")
    parser.add_argument(
        "--truth", required=True, type=Path, help="data root or cache with the targets"
    )
    parser.add_argument(
        "--partial",
        action="store_true",
        help="score only the chips that have a target (default: a missing target is an error)",
    )
    parser.add_argument("--split", default="test", choices=SPLITS, help="split (default test)")
    parser.add_argument("--per-chip", type=Path, help="write per-chip RMSEs to this CSV")
    parser.set_defaults(func=_run)
