"""`agbm info`: what a data root or cache holds, split by split."""

from __future__ import annotations

import argparse
from pathlib import Path

from agbm.data.layout import SPLITS


def _run(args: argparse.Namespace) -> int:
    from agbm.data.sources import open_source, splits_to_read, summarise

    for split in splits_to_read(args.data, args.split):
        stats = summarise(open_source(args.data, split))
        print(
            f"{split:5s}  chips {stats['chips']:6d}  targets {stats['targets']:6d}  "
            f"S1 months present {stats['s1_months_present']:6.1%}  "
            f"S2 months present {stats['s2_months_present']:6.1%}"
        )
    return 0


#: `agbm info --help`'s description.
DESCRIPTION = "Count chips, targets and month availability of a data root or cache."


def add_arguments(info: argparse.ArgumentParser) -> None:
    """`agbm info`."""
    info.add_argument("--data", required=True, type=Path, help="data root or cache")
    info.add_argument(
        "--split", nargs="+", choices=SPLITS, help="splits to list (default: those present)"
    )
    info.set_defaults(func=_run)
