"""`agbm synth`: write a synthetic data set in the real layout."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from agbm.data.layout import splits_present
from agbm.data.synth import generate, next_year
from agbm.errors import OutputError
from agbm.io import refuse_overwriting_inputs


def _run(args: argparse.Namespace) -> int:
    held = splits_present(args.out)
    if held:  # its chips and metadata CSVs would mix with (or replace) the data's own
        raise OutputError(
            f"{args.out} holds a data set already ({', '.join(held)}): give a new folder"
        )
    start = time.perf_counter()
    if args.next_year_of is not None:
        refuse_overwriting_inputs([args.out], [args.next_year_of])
        splits = next_year(args.next_year_of, args.out, args.seed, progress=True)
        what = f"one year after {args.next_year_of}"
    else:
        splits = generate(args.out, args.chips, args.test_chips, args.seed, args.size, True)
        what = f"{args.size}x{args.size}"
    print(
        f"wrote {len(splits['train'])} train and {len(splits['test'])} test chips "
        f"({what}) to {args.out} in {time.perf_counter() - start:.1f} s"
    )
    return 0


#: `agbm synth --help`'s description.
DESCRIPTION = (
    "Write a learnable synthetic data set with the real BioMassters layout, file "
    "formats and metadata CSVs (train_features/, train_agbm/, test_features/, "
    "test_agbm/). The same seed gives the same bytes. With --next-year-of ROOT, the same "
    "chips one year later (stands grown by about 1.5-4 t/ha, a quarter of the chips with a "
    "new clear-cut, some thinned; imagery of that year's own clouds and gaps), with their "
    "targets: a pair of years of known change."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """`agbm synth`: write a synthetic data set in the BioMassters layout."""
    parser.add_argument("--out", required=True, type=Path, help="output data root")
    parser.add_argument("--chips", type=int, default=64, help="training chips (default 64)")
    parser.add_argument("--test-chips", type=int, default=16, help="test chips (default 16)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument(
        "--next-year-of", type=Path, metavar="ROOT",
        help="a synthetic root (agbm synth): write its chips one year later (--chips, "
        "--test-chips and --size are ROOT's)",
    )  # fmt: skip
    parser.add_argument("--size", type=int, default=256, help="chip side in pixels (default 256)")
    parser.set_defaults(func=_run)
