"""Options shared by several commands."""

from __future__ import annotations

import argparse
from pathlib import Path

from agbm.inference.tta import TTA
from agbm.runtime import AMP_DTYPES


def add_amp_option(parser: argparse.ArgumentParser) -> None:
    """`--amp` as every model-running command and benchmark takes it."""
    parser.add_argument(
        "--amp",
        default="auto",
        choices=["auto", *AMP_DTYPES],
        help="mixed precision (default auto: bf16 on GPU, off on CPU)",
    )


def add_inference_options(parser: argparse.ArgumentParser, unit: str) -> None:
    """The model options `agbm predict` and `agbm predict-scene` share."""
    parser.add_argument(
        "--checkpoint",
        required=True,
        nargs="+",
        type=Path,
        help="checkpoint(s); several are averaged",
    )
    parser.add_argument(
        "--tta", default="flips", choices=list(TTA), help="test-time augmentation (default flips)"
    )
    parser.add_argument("--batch-size", type=int, default=8, help=f"{unit} per batch (default 8)")
    add_amp_option(parser)
