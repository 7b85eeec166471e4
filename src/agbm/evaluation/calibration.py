"""`agbm calibrate`: split-conformal calibration of a model on chips with targets it never
trained on (a held-out fold, the BioMassters test set for the winner's model, or a region's
labelled chips), through `agbm predict`'s own path (TTA, input conventions). What it counts
and how the intervals follow is in `agbm.inference.intervals`.

Chips with sparse labels instead of dense targets (`agbm chips`: GEDI footprints or plots)
are calibrated on their footprints: each residual is |the prediction's mean over the
label's disc - its agbd|, binned by that mean, and counted for the pixels and for the
smallest block (a footprint of 25 m is ~5 pixels: the block means of larger areas, which
sparse labels cannot measure, then take its width, which is conservative). The residuals
hold the labels' own error (GEDI's is large), so the intervals are wider for it."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from agbm.data.raw import chip_prediction
from agbm.data.sources import ChipSource, open_source
from agbm.errors import DataError
from agbm.evaluation.evaluate import scored_chips
from agbm.inference.chips import predict
from agbm.inference.intervals import BLOCK_SIDES, EDGES, PIXEL_BINS, TOP, Calibration, bin_of
from agbm.inference.options import InferenceOptions
from agbm.labels.chips import read_chip_labels
from agbm.labels.footprints import footprint_means_on_chip


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


def _add_pixels(calibration: Calibration, pred: np.ndarray, residual: np.ndarray) -> None:
    """Count `residual`s in the pixel histograms of their predictions' (`pred`) bins."""
    bins = bin_of(pred)
    for b in range(len(PIXEL_BINS)):
        calibration.pixel[b] = np.asarray(calibration.pixel[b]) + _counts(residual[bins == b])


def _add_block(calibration: Calibration, side: int, errors: np.ndarray) -> None:
    """Count the absolute `errors` of block means in the histogram of blocks of `side` px."""
    key = str(side)
    calibration.blocks[key] = np.asarray(calibration.blocks[key]) + _counts(errors)


def accumulate(calibration: Calibration, pred: np.ndarray, target: np.ndarray) -> None:
    """Add one chip's residuals (`pred`, `target` `[H, W]`, t/ha) to the histograms."""
    _add_pixels(calibration, pred, np.abs(pred - target))
    for side in BLOCK_SIDES:
        if side <= min(pred.shape):
            _add_block(calibration, side, block_errors(pred, target, side))


def accumulate_footprints(calibration: Calibration, pred: np.ndarray, labels: np.ndarray) -> None:
    """Add one chip's footprint residuals (`pred` `[H, W]`, t/ha; `labels` `[K, 5]`, its
    `label_array`) to the pixel histograms and the smallest block's."""
    means = footprint_means_on_chip(
        torch.from_numpy(pred)[None, None], torch.from_numpy(labels)[None]
    )
    means = means[0].numpy()
    used = np.isfinite(means) & np.isfinite(labels[:, 3])
    residual = np.abs(means - labels[:, 3])[used]
    _add_pixels(calibration, means[used], residual)
    _add_block(calibration, BLOCK_SIDES[0], residual)


def _residual_source(
    data: Path, split: str, source: ChipSource
) -> tuple[list[str], Callable, Callable]:
    """(chips, how to read one's truth, how to count a prediction against it): dense
    targets where there are, else the chips' labels (`agbm chips`); `source`: the split's."""
    if source.has_targets():
        chips, read_target = scored_chips(data, split)
        return chips, read_target, accumulate
    labels = read_chip_labels(data, split, source.chip_ids())  # none without the folder
    if not labels:
        raise DataError(
            f"{data}: no targets ({split}_agbm/) and no chip with labels ({split}_labels/) "
            f"in the {split} split to calibrate on"
        )
    return list(labels), labels.__getitem__, accumulate_footprints


def calibrate(
    data: Path | str,
    *,
    options: InferenceOptions,
    split: str = "test",
    workers: int = 2,
) -> Calibration:
    """The residual histograms of the model of `options` (its checkpoints and TTA) on the
    chips of `split` in `data`, which must have targets or labels the model never trained
    on; `workers`: the chip loader's processes. A calibration in `options` is not used: the
    chips are predicted without bounds."""
    data = Path(data)
    source = open_source(data, split)
    chips, read_truth, count = _residual_source(data, split, source)
    model = options.model_record()
    empty = np.zeros(len(EDGES) - 1, np.int64)
    calibration = Calibration(
        model["checkpoints"], model["tta"], [empty] * len(PIXEL_BINS),
        {str(s): empty for s in BLOCK_SIDES}, len(chips),
        "pixels" if count is accumulate else "footprints",
    )  # fmt: skip
    with tempfile.TemporaryDirectory() as folder:
        plain = replace(options, calibration=None)
        predict(data, folder, options=plain, split=split, workers=workers)
        for chip in tqdm(chips, desc="calibrate", unit="chip"):
            truth = read_truth(chip)
            count(calibration, chip_prediction(Path(folder), chip, source.size(chip)), truth)
    if not any(np.sum(c) for c in calibration.pixel):
        raise DataError(f"{data}: no residual to count (no prediction or truth has data)")
    # JSON lists, without the empty top of each histogram
    calibration.pixel = [np.trim_zeros(np.asarray(c), "b").tolist() for c in calibration.pixel]
    calibration.blocks = {
        k: np.trim_zeros(np.asarray(v), "b").tolist()
        for k, v in calibration.blocks.items()
        if np.sum(v)
    }
    return calibration
