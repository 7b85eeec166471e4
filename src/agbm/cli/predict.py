"""`agbm predict`: AGBM maps for every chip of a split."""

from __future__ import annotations

import argparse
from pathlib import Path

from agbm.cli.options import add_calibration_options, add_inference_options, inference_options
from agbm.data.layout import SPLITS
from agbm.io import refuse_overwriting_inputs


def _run(args: argparse.Namespace) -> int:
    import torch.distributed as dist

    from agbm.data.sources import data_folders
    from agbm.inference.chips import predict

    inputs = [*data_folders(args.data), *args.checkpoint, args.calibration]
    refuse_overwriting_inputs([args.out, args.archive], inputs)  # --overwrite or not
    written = predict(
        args.data,
        args.out,
        options=inference_options(args),
        split=args.split,
        workers=args.workers,
        overwrite=args.overwrite,
        archive=args.archive,
    )
    rank = f"process {dist.get_rank()}: " if dist.is_initialized() else ""
    print(f"{rank}wrote {len(written)} prediction(s) to {args.out}")
    return 0


#: `agbm predict --help`'s description.
DESCRIPTION = (
    "Write one float32 {chip}_agbm.tif per chip, with test-time augmentation and an "
    "ensemble of checkpoints. Chips already written are skipped unless --overwrite. "
    "Run under `torchrun --nproc_per_node=N -m agbm predict ...` to shard across GPUs."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """`agbm predict`."""
    parser.add_argument("--data", required=True, type=Path, help="data root or cache")
    parser.add_argument("--split", default="test", choices=SPLITS, help="split (default test)")
    parser.add_argument("--out", required=True, type=Path, help="prediction directory")
    add_inference_options(parser, "chips")
    parser.add_argument("--workers", type=int, default=2, help="loader workers (default 2)")
    parser.add_argument("--overwrite", action="store_true", help="redo chips already written")
    parser.add_argument(
        "--archive",
        type=Path,
        help="also pack the predictions into this .tar.gz (replaced if it exists)",
    )
    add_calibration_options(parser)
    parser.set_defaults(func=_run)
