"""`agbm import-winner`: the winner's checkpoints as agbm checkpoints."""

from __future__ import annotations

import argparse
from pathlib import Path


def _run(args: argparse.Namespace) -> int:
    from agbm.models.winner.convert import describe_import, import_winner

    print(describe_import(import_winner(args.src, args.out), args.src, args.out))
    return 0


#: `agbm import-winner --help`'s description.
DESCRIPTION = (
    "Read the winner's model_best.pth / model_last.pth (training checkpoint) or "
    "modelo_best.pth (whole saved model) without its code or old timm/smp, running no "
    "code from the file, and write an agbm checkpoint that predict, predict-scene and "
    "train --init use with the winner's input conventions."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """`agbm import-winner`."""
    parser.add_argument("src", type=Path, help="the winner's .pth file")
    parser.add_argument(
        "--out",
        required=True,
        type=Path,
        help="agbm checkpoint to write (.pt; replaced if it exists)",
    )
    parser.set_defaults(func=_run)
