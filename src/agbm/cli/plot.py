"""`agbm plot`: per-chip map panels."""

from __future__ import annotations

import argparse
from pathlib import Path

from agbm.data.layout import SPLITS


def _run(args: argparse.Namespace) -> int:
    from agbm.viz.plots import plot_predictions

    written = plot_predictions(args.data, args.pred, args.out, args.split, args.chips)
    print(f"wrote {len(written)} figure(s) to {args.out}")
    return 0


#: `agbm plot --help`'s description.
DESCRIPTION = "Write one PNG per chip comparing predictions with the targets."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """`agbm plot`."""
    parser.add_argument("--data", required=True, type=Path, help="data root")
    parser.add_argument("--pred", required=True, type=Path, help="prediction directory")
    parser.add_argument("--out", required=True, type=Path, help="figure directory")
    parser.add_argument("--split", default="test", choices=SPLITS, help="split (default test)")
    parser.add_argument("--chips", type=int, default=8, help="how many chips (default 8)")
    parser.set_defaults(func=_run)
