"""Paired calibration of the change against the union bound, on synthetic pairs of years;
one line per figure.

    python bench/change.py [--chips 128] [--size 32] [--coverage 0.9] [--epochs 8]
                           [--model CKPT]

The tests' tiny model (`train_tiny`: --epochs on 48 chips of 32 px, seed 3; or --model)
is calibrated on a second set of --chips chips of --size px (seed 12) and that set one
year later (`agbm synth --next-year-of`, seed 15): the stocks (`calibrate`, on year A) and
the change itself (`calibrate_change`, on the pair). It is scored on a third set (seed 13)
and its next year (seed 14), as tests/evaluation/test_calibration.py does. Printed: the
share of the third pair's true changes inside their interval per bin of predicted change
(paired) and per calibrated block size (both rules), with the chips' clustered standard
error; both rules' mean widths; the shares of true clear-cut pixels (change < -50 t/ha)
flagged as loss and of unchanged ones (|change| < 5 t/ha) flagged as a change; and the
minimum detectable change per block. docs/change.md holds the figures.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
from pathlib import Path

import numpy as np
from adaptation import train_tiny

from agbm.data.layout import list_chips
from agbm.data.raw import chip_prediction, read_target
from agbm.data.synth import generate, next_year
from agbm.evaluation.calibration import block_errors, calibrate, calibrate_change
from agbm.evaluation.change import ChangeIntervals
from agbm.inference.chips import predict
from agbm.inference.intervals import Calibration, bin_names, bin_of
from agbm.inference.options import InferenceOptions


def _year(root: Path, pred: Path, options: InferenceOptions) -> tuple[np.ndarray, np.ndarray]:
    """(predictions, truth) `[chips, H, W]` of the test split of `root`, predicted to `pred`."""
    predict(root, pred, options=options, workers=0)
    ids = list_chips(root, "test")
    truth = np.stack([read_target(root, c, split="test") for c in ids])
    size = truth.shape[1:]
    return np.stack([chip_prediction(pred, c, size) for c in ids]), truth


def _share(inside: list[np.ndarray]) -> str:
    """The share, %, of a list of per-chip booleans that is True, with its clustered se."""
    per_chip = np.array([x.mean() for x in inside if x.size])
    share = np.concatenate([x.ravel() for x in inside]).mean()
    se = per_chip.std(ddof=1) / np.sqrt(per_chip.size) if per_chip.size > 1 else np.nan
    return f"{100 * share:.1f} % (clustered se {100 * se:.1f} %)"


def report(
    stock: Calibration, paired: Calibration, scored: tuple[np.ndarray, ...], coverage: float
) -> None:
    """Print the figures (module docstring) of the two rules on `scored` (pred A, pred B,
    true change B - A, `[chips, H, W]`)."""
    before, after, true = scored
    rules = {"union": ChangeIntervals(stock, coverage), "paired": ChangeIntervals(paired, coverage)}
    layers = {
        name: np.stack([r.layers(a, b) for a, b in zip(before, after, strict=True)])
        for name, r in rules.items()
    }
    covered = {n: (x[:, 1] <= true) & (true <= x[:, 2]) for n, x in layers.items()}
    bins = bin_of(after - before, paired.bins)
    for b, name in enumerate(bin_names(paired.bins)):
        if (bins == b).any():
            inside = [c[k == b] for c, k in zip(covered["paired"], bins, strict=True)]
            print(f"paired, pixels of predicted change {name} t/ha ({int((bins == b).sum())}) "
                  f"covered: {_share(inside)}")  # fmt: skip
    for name in rules:
        width = np.nanmean(layers[name][:, 2] - layers[name][:, 1])
        print(f"{name}, all {true.size} pixels covered: {_share(list(covered[name]))}")
        print(f"{name}, mean interval width of the pixels: {width:.1f} t/ha")
    for side in sorted(int(s) for s in paired.blocks):
        errors = [block_errors(b - a, t, side) for a, b, t in zip(before, after, true, strict=True)]
        for name, rule in rules.items():
            half = rule.minimum_detectable()[side]
            blocks = f"{name}, change of {side} x {side} px block means"
            print(f"{blocks} ({sum(map(len, errors))}) covered: "
                  f"{_share([e <= half for e in errors])}")  # fmt: skip
            if np.isfinite(half):  # (too few blocks calibrated for the coverage: none)
                print(f"{name}, minimum detectable change of {side} x {side} px blocks: "
                      f"{half:.1f} t/ha")  # fmt: skip
    cut, unchanged = true < -50, np.abs(true) < 5
    for name, x in layers.items():
        loss = 100 * (x[:, 3][cut] == -1).mean() if cut.any() else np.nan
        false = 100 * (x[:, 3][unchanged] != 0).mean() if unchanged.any() else np.nan
        print(f"{name}, true clear-cut pixels (< -50 t/ha, {int(cut.sum())}) flagged as loss: "
              f"{loss:.1f} %")  # fmt: skip
        print(f"{name}, unchanged pixels (|change| < 5 t/ha, {int(unchanged.sum())}) flagged "
              f"as a change: {false:.2f} %")  # fmt: skip


def run(
    root: Path, chips: int, size: int, coverage: float, epochs: int, model: Path | None
) -> None:
    if model is None:
        generate(root / "train", 48, 0, 3, 32)
        with contextlib.redirect_stdout(sys.stderr):  # epoch lines: stdout holds figures only
            model = train_tiny(root / "train", root / "run", epochs)
    options = InferenceOptions((model,), tta="none", amp="off")
    for name, seed, later in (("calibrate", 12, 15), ("score", 13, 14)):
        generate(root / name, 1, chips, seed, size)
        next_year(root / name, root / f"{name}-later", later)
    stock = calibrate(root / "calibrate", options=options, workers=0)
    paired = calibrate_change(
        root / "calibrate", root / "calibrate-later", options=options, workers=0
    )
    (pred_a, true_a), (pred_b, true_b) = (
        _year(root / name, root / f"pred-{name}", options) for name in ("score", "score-later")
    )
    report(stock, paired, (pred_a, pred_b, true_b - true_a), coverage)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--chips", type=int, default=128, help="chips per set (default 128)")
    parser.add_argument("--size", type=int, default=32, help="chip side, px (default 32)")
    parser.add_argument("--coverage", type=float, default=0.9, help="coverage (default 0.9)")
    parser.add_argument("--epochs", type=int, default=8, help="tiny model's epochs (default 8)")
    parser.add_argument("--model", type=Path, help="a checkpoint instead of the tiny model")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        run(Path(tmp), args.chips, args.size, args.coverage, args.epochs, args.model)


if __name__ == "__main__":
    main()
