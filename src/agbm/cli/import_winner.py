"""`agbm import-winner`: the winner's checkpoints as agbm checkpoints."""

from __future__ import annotations

import argparse
from pathlib import Path

from agbm.models.winner import import_winner


def _run(args: argparse.Namespace) -> int:
    report = import_winner(args.src, args.out)
    extra = "".join(f", {k} {report[k]}" for k in ("epoch", "best_score") if k in report)
    print(
        f"read {args.src}: {report['kind']}{extra}\n"
        f"wrote {args.out}\n"
        f"  backbone     {report['backbone']}\n"
        f"  decoder      {report['decoder_channels']}, scSE; attention pooling over 12 months\n"
        f"  parameters   {report['parameters'] / 1e6:.1f} M ({report['dropped']} tensors of the "
        "last decoder block's unused skip attention left out)\n"
        "  conventions  winner: inputs not clipped, cloud 255 read as 1.0, every month "
        "attended; no output scaling"
    )
    return 0


def add_command(subparsers: argparse._SubParsersAction) -> None:
    """`agbm import-winner`."""
    parser = subparsers.add_parser(
        "import-winner",
        help="convert the BioMassters winner's published checkpoint into an agbm checkpoint",
        description=(
            "Read the winner's model_best.pth / model_last.pth (training checkpoint) or "
            "modelo_best.pth (whole saved model) without its code or old timm/smp, running no "
            "code from the file, and write an agbm checkpoint that predict, predict-scene and "
            "train --init use with the winner's input conventions."
        ),
    )
    parser.add_argument("src", type=Path, help="the winner's .pth file")
    parser.add_argument("--out", required=True, type=Path, help="agbm checkpoint to write (.pt)")
    parser.set_defaults(func=_run)
