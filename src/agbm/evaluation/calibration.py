"""`agbm calibrate`: split-conformal calibration of a model on chips with targets it never
trained on (a held-out fold, the BioMassters test set for the winner's model, or a region's
labelled chips), through `agbm predict`'s own path (TTA, input conventions). What it counts
and how the intervals follow is in `agbm.inference.intervals`."""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from tqdm import tqdm

from agbm.data.raw import chip_prediction
from agbm.evaluation.evaluate import scored_chips
from agbm.inference.chips import predict
from agbm.inference.intervals import BLOCK_SIDES, EDGES, PIXEL_BINS, TOP, Calibration, bin_of
from agbm.io import file_sha256


def _counts(residuals: np.ndarray) -> np.ndarray:
    """Histogram over `EDGES`; residuals beyond the top are counted in the last bin."""
    return np.histogram(np.minimum(residuals, TOP - 1e-3), EDGES)[0]


def block_means(plane: np.ndarray, side: int) -> np.ndarray:
    """Means over the non-overlapping `side` x `side` blocks of a `[H, W]` plane (the
    remainder rows and columns left out)."""
    h, w = (n // side * side for n in plane.shape)
    return plane[:h, :w].reshape(h // side, side, w // side, side).mean(axis=(1, 3))


def block_errors(pred: np.ndarray, target: np.ndarray, side: int) -> np.ndarray:
    """The absolute errors of a chip's block means (`pred`, `target` `[H, W]`, t/ha) over
    its `side` x `side` sub-windows, flat: what a block's interval must cover."""
    return np.abs(block_means(pred, side) - block_means(target, side)).ravel()


def accumulate(calibration: Calibration, pred: np.ndarray, target: np.ndarray) -> None:
    """Add one chip's residuals (`pred`, `target` `[H, W]`, t/ha) to the histograms."""
    residual, bins = np.abs(pred - target), bin_of(pred)
    for b in range(len(PIXEL_BINS)):
        calibration.pixel[b] = np.asarray(calibration.pixel[b]) + _counts(residual[bins == b])
    for side in BLOCK_SIDES:
        if side <= min(pred.shape):
            error = block_errors(pred, target, side)
            key = str(side)
            calibration.blocks[key] = np.asarray(calibration.blocks[key]) + _counts(error)


def calibrate(
    checkpoints: Sequence[Path | str],
    data: Path | str,
    split: str = "test",
    tta: str = "flips",
    batch_size: int = 8,
    amp: str = "auto",
    workers: int = 2,
) -> Calibration:
    """The residual histograms of the ensemble of `checkpoints` (with `tta`) on the chips of
    `split` in `data`, which must have targets the model never trained on."""
    chips, read_target = scored_chips(Path(data), split)
    empty = np.zeros(len(EDGES) - 1, np.int64)
    calibration = Calibration(
        [file_sha256(c) for c in checkpoints], tta, [empty] * len(PIXEL_BINS),
        {str(s): empty for s in BLOCK_SIDES}, len(chips),
    )  # fmt: skip
    with tempfile.TemporaryDirectory() as folder:
        predict(data, checkpoints, folder, split, tta, batch_size, amp, workers)
        for chip in tqdm(chips, desc="calibrate", unit="chip"):
            target = read_target(chip)
            accumulate(calibration, chip_prediction(Path(folder), chip, target.shape), target)
    # JSON lists, without the empty top of each histogram
    calibration.pixel = [np.trim_zeros(np.asarray(c), "b").tolist() for c in calibration.pixel]
    calibration.blocks = {
        k: np.trim_zeros(np.asarray(v), "b").tolist()
        for k, v in calibration.blocks.items()
        if np.sum(v)
    }
    return calibration
