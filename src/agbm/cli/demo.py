"""`agbm demo`: the main job end to end on built-in synthetic data."""

from __future__ import annotations

import argparse
from pathlib import Path

from agbm.demo import DemoConfig, run_demo


def _run(args: argparse.Namespace) -> int:
    run_demo(
        DemoConfig(
            out=args.out, epochs=args.epochs, backbone=args.backbone, size=args.size, seed=args.seed
        )
    )
    return 0


#: `agbm demo --help`'s description.
DESCRIPTION = (
    "Generate synthetic data, train, predict with flip TTA, evaluate against the mean "
    "and per-pixel linear baselines, and draw figures. Resumable."
)

#: How its help shows the options.
FORMATTER = argparse.ArgumentDefaultsHelpFormatter


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """`agbm demo`."""
    defaults = DemoConfig()
    parser.add_argument("--out", type=Path, default=defaults.out, help="output directory")
    parser.add_argument("--epochs", type=int, default=defaults.epochs, help="training epochs")
    parser.add_argument("--backbone", default=defaults.backbone, help="timm encoder")
    parser.add_argument("--size", type=int, default=defaults.size, help="chip side in pixels")
    parser.add_argument("--seed", type=int, default=defaults.seed, help="random seed")
    parser.set_defaults(func=_run)
