"""Coverage of calibrated 90 % intervals on synthetic data; one line per figure.

    python bench/coverage.py [--chips 128] [--size 32] [--train-size 32] [--coverage 0.9]

A tiny model trained on one synthetic set (seed 11, 16 chips of --train-size px),
calibrated on a second (seed 12) and scored on a third (seed 13), both of --chips chips of
--size px, as tests/evaluation/test_calibration.py does (--size 256 calibrates and scores
the blocks of 64 and 256 px too; the model, fully convolutional, still trains on 32 px):
the share of the third set's pixels inside their interval, overall and per bin of
predicted AGB, with the chips' clustered standard error; and of its block means at every
calibrated size. docs/uncertainty.md holds the figures.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
from adaptation import train_tiny

from agbm.data.layout import list_chips
from agbm.data.raw import chip_prediction, read_target
from agbm.data.synth import generate
from agbm.evaluation.calibration import block_errors, calibrate
from agbm.inference.chips import predict
from agbm.inference.intervals import PIXEL_BINS, bin_of
from agbm.inference.options import InferenceOptions


def run(root: Path, chips: int, size: int, train_size: int, coverage: float) -> None:
    generate(root / "train", 16, 0, 11, train_size)
    generate(root / "calibrate", 1, chips, 12, size)
    generate(root / "score", 1, chips, 13, size)
    model = train_tiny(root / "train", root / "run", 12)
    options = InferenceOptions((model,), tta="none")
    calibration = calibrate(root / "calibrate", options=options, workers=0)
    predict(root / "score", root / "pred", options=options, workers=0)
    ids = list_chips(root / "score", "test")
    truth = np.stack([read_target(root / "score", c, split="test") for c in ids])
    pred = np.stack([chip_prediction(root / "pred", c, (size, size)) for c in ids])
    low, high = calibration.bounds(pred, coverage)
    inside = (truth >= low) & (truth <= high)
    clustered = inside.reshape(len(ids), -1).mean(1).std() / np.sqrt(len(ids))
    print(f"all {inside.size} pixels: {inside.mean():.1%} covered (clustered se {clustered:.1%})")
    bins = bin_of(pred)
    edges = [*PIXEL_BINS, float("inf")]
    for b, (lo, hi) in enumerate(zip(edges, edges[1:], strict=False)):
        if (bins == b).any():
            print(f"pixels predicted {lo:g}-{hi:g} t/ha ({(bins == b).mean():.0%} of them): "
                  f"{inside[bins == b].mean():.1%} covered")  # fmt: skip
    for side in sorted(int(s) for s in calibration.blocks):
        half, _ = calibration.block_halfwidth(side * side, coverage)
        error = np.concatenate([block_errors(p, t, side) for p, t in zip(pred, truth, strict=True)])
        print(f"means of {side} x {side} px blocks ({len(error)}): "
              f"{(error <= half).mean():.1%} covered")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--chips", type=int, default=128, help="chips per set (default 128)")
    parser.add_argument("--size", type=int, default=32, help="chip side, px (default 32)")
    parser.add_argument(
        "--train-size", type=int, default=32, help="training chips' side, px (default 32)"
    )
    parser.add_argument("--coverage", type=float, default=0.9, help="coverage (default 0.9)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        run(Path(tmp), args.chips, args.size, args.train_size, args.coverage)


if __name__ == "__main__":
    main()
