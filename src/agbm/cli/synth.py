"""`agbm synth`: write a synthetic data set in the real layout."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from agbm.data.layout import splits_present
from agbm.data.synth import generate
from agbm.errors import OutputError


def _run(args: argparse.Namespace) -> int:
    held = splits_present(args.out)
    if held:  # its chips and metadata CSVs would mix with (or replace) the data's own
        raise OutputError(
            f"{args.out} holds a data set already ({', '.join(held)}): give a new folder"
        )
    start = time.perf_counter()
    splits = generate(args.out, args.chips, args.test_chips, args.seed, args.size, progress=True)
    print(
        f"wrote {len(splits['train'])} train and {len(splits['test'])} test chips "
        f"({args.size}x{args.size}) to {args.out} in {time.perf_counter() - start:.1f} s"
    )
    return 0


#: `agbm synth --help`'s description.
DESCRIPTION = (
    "Write a learnable synthetic data set with the real BioMassters layout, file "
    "formats and metadata CSVs (train_features/, train_agbm/, test_features/, "
    "test_agbm/). The same seed gives the same bytes."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """`agbm synth`: write a synthetic data set in the BioMassters layout."""
    parser.add_argument("--out", required=True, type=Path, help="output data root")
    parser.add_argument("--chips", type=int, default=64, help="training chips (default 64)")
    parser.add_argument("--test-chips", type=int, default=16, help="test chips (default 16)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--size", type=int, default=256, help="chip side in pixels (default 256)")
    parser.set_defaults(func=_run)
