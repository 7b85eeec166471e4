"""`agbm prepare`: a lossless, memory-mapped chip cache that loads several times faster."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from agbm.data.layout import SPLITS
from agbm.io import refuse_overwriting_inputs


def _run(args: argparse.Namespace) -> int:
    from agbm.data.cache import prepare
    from agbm.data.sources import data_folders, splits_to_read

    refuse_overwriting_inputs([args.out], data_folders(args.data))  # not into the chips read
    for split in splits_to_read(args.data, args.split):
        start = time.perf_counter()
        done = prepare(args.data, args.out, split, args.workers, progress=True)
        print(
            f"{split}: converted {len(done)} chip(s) into {args.out} "
            f"in {time.perf_counter() - start:.1f} s"
        )
    return 0


#: `agbm prepare --help`'s description.
DESCRIPTION = (
    "Convert every chip once into uncompressed .npy files (raw values, lossless) that "
    "train and predict read several times faster than the GeoTIFFs, with identical "
    "results: give the cache directory as --data. Resumable: chips already converted "
    "are skipped; each chip is written atomically."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """`agbm prepare`."""
    parser.add_argument("--data", required=True, type=Path, help="raw data root (*_features/)")
    parser.add_argument("--out", required=True, type=Path, help="cache directory")
    parser.add_argument(
        "--split", nargs="+", choices=SPLITS, help="splits to convert (default: those present)"
    )
    parser.add_argument(
        "--workers", type=int, default=4, help="conversion processes (default 4; 0: in-process)"
    )
    parser.set_defaults(func=_run)
