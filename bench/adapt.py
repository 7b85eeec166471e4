"""Adaptation from sparse labels on synthetic regions (bench/adaptation.py); one
line per figure.

    python bench/adapt.py [--chips 16] [--points 30] [--epochs 12] [--size 32]

A model trained densely on region A, scored on region B (biomass 1.8 times A's for the
same imagery) as it is, fine-tuned on ~30 footprints per chip of B, and trained on the
same footprints from scratch; then the same with footprints recorded one pixel (10 m) from
where they were measured, as GEDI's geolocation error does, fine-tuned with and without
`--shift-loss`. Average per-chip RMSE on B's test chips (dense truth, never labelled).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from adaptation import run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--chips", type=int, default=16, help="chips per region (default 16)")
    parser.add_argument("--points", type=int, default=30, help="labels per chip (default 30)")
    parser.add_argument("--epochs", type=int, default=12, help="epochs per run (default 12)")
    parser.add_argument("--size", type=int, default=32, help="chip side in px (default 32)")
    args = parser.parse_args()
    label = f"{args.chips} chips of {args.size} px, {args.points} labels per chip"
    settings = (args.chips, args.points, args.epochs, args.size)
    with tempfile.TemporaryDirectory() as tmp:
        exact = run(Path(tmp) / "exact", *settings)
        print(f"{label}, RMSE on B: unadapted {exact.unadapted:.1f} t/ha, fine-tuned "
              f"{exact.finetuned:.1f} ({exact.finetuned / exact.unadapted - 1:+.0%}), from "
              f"scratch {exact.scratch:.1f}")  # fmt: skip
        for shift in (False, True):
            moved = run(Path(tmp) / f"moved{shift}", *settings, misplaced_px=1.0, shift_loss=shift)
            print(f"{label}, labels 1 px off, fine-tuned {'with' if shift else 'without'} "
                  f"--shift-loss: {moved.finetuned:.1f} t/ha")  # fmt: skip


if __name__ == "__main__":
    main()
