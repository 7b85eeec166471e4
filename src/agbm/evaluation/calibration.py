"""`agbm calibrate`: split-conformal calibration of a model on chips with targets it never
trained on (a held-out fold, the BioMassters test set for the winner's model, or a region's
labelled chips), through `agbm predict`'s own path (TTA, input conventions). This module
computes the residuals and counts them in a `ResidualCounts`; how the intervals follow, and
the file they are written to, are `agbm.inference.intervals`'.

Chips with sparse labels instead of dense targets (`agbm chips`: GEDI footprints or plots)
are calibrated on their footprints: each residual is |the prediction's mean over the
label's disc - its agbd|, binned by that mean, and counted for the pixels and for the
smallest block (a footprint of 25 m is ~5 pixels: the block means of larger areas, which
sparse labels cannot measure, then take its width, which is conservative). The residuals
hold the labels' own error (GEDI's is large), so the intervals are wider for it.

`calibrate_change` (`agbm calibrate --change`) calibrates the change between two years
instead, on paired references: the chips with targets in both of two roots (the same chips,
years A and B). Each residual is that of the change itself, |(pred B - pred A) - (true B -
true A)|, binned by the predicted change (`CHANGE_BINS`), and counted for block means as
the stocks' are: the two years' correlated errors cancel in it as much as they do, which
the union bound on the stocks' intervals cannot know (docs/change.md)."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from agbm.data.raw import chip_prediction
from agbm.data.sources import ChipSource, open_source
from agbm.errors import DataError
from agbm.evaluation.evaluate import TargetReader, scored_chips
from agbm.inference.chips import predict
from agbm.inference.intervals import BLOCK_SIDES, CHANGE_BINS, Calibration, ResidualCounts
from agbm.inference.options import InferenceOptions
from agbm.labels.chips import read_chip_labels
from agbm.labels.footprints import footprint_means_on_chip


def block_means(plane: np.ndarray, side: int) -> np.ndarray:
    """Means over the non-overlapping `side` x `side` blocks of a `[H, W]` plane (the
    remainder rows and columns left out)."""
    h, w = (n // side * side for n in plane.shape)
    return plane[:h, :w].reshape(h // side, side, w // side, side).mean(axis=(1, 3))


def block_errors(pred: np.ndarray, target: np.ndarray, side: int) -> np.ndarray:
    """The absolute errors of a chip's block means (`pred`, `target` `[H, W]`, t/ha) over
    its `side` x `side` sub-windows, flat: what a block's interval must cover."""
    return np.abs(block_means(pred, side) - block_means(target, side)).ravel()


def accumulate(counts: ResidualCounts, pred: np.ndarray, target: np.ndarray) -> None:
    """Count one chip's residuals (`pred`, `target` `[H, W]`, t/ha): its pixels', and the
    errors of its block means of every side it holds."""
    sides = [side for side in BLOCK_SIDES if side <= min(pred.shape)]
    blocks = {side: block_errors(pred, target, side) for side in sides}
    counts.add(pred, np.abs(pred - target), blocks)


def accumulate_footprints(counts: ResidualCounts, pred: np.ndarray, labels: np.ndarray) -> None:
    """Count one chip's footprint residuals (`pred` `[H, W]`, t/ha; `labels` `[K, 5]`, its
    `label_array`), binned by the footprint's mean, for the pixels and the smallest block."""
    means = footprint_means_on_chip(
        torch.from_numpy(pred)[None, None], torch.from_numpy(labels)[None]
    )
    means = means[0].numpy()
    used = np.isfinite(means) & np.isfinite(labels[:, 3])
    residual = np.abs(means - labels[:, 3])[used]
    counts.add(means[used], residual, {BLOCK_SIDES[0]: residual})


@dataclass(frozen=True)
class Truth:
    """What a split's chips are calibrated against: its `chips`, how to `read` one's truth,
    how to `count` a prediction against it (`accumulate`, `accumulate_footprints`), and what
    the residuals are of (`RESIDUALS`)."""

    chips: list[str]
    read: Callable[[str], np.ndarray]
    count: Callable[[ResidualCounts, np.ndarray, np.ndarray], None]
    residuals: str


def _truth(data: Path, split: str, source: ChipSource) -> Truth:
    """Dense targets where there are, else the chips' labels (`agbm chips`); `source`: the
    split's."""
    if source.has_targets():
        chips, read_target = scored_chips(data, split)
        return Truth(chips, read_target, accumulate, "pixels")
    labels = read_chip_labels(data, split, source.chip_ids())  # none without the folder
    if not labels:
        raise DataError(
            f"{data}: no targets ({split}_agbm/) and no chip with labels ({split}_labels/) "
            f"in the {split} split to calibrate on"
        )
    return Truth(list(labels), labels.__getitem__, accumulate_footprints, "footprints")


def calibrate(
    data: Path | str,
    *,
    options: InferenceOptions,
    split: str = "test",
    workers: int = 2,
    progress: bool = False,
) -> Calibration:
    """The residual histograms of the model of `options` (its checkpoints and TTA) on the
    chips of `split` in `data`, which must have targets or labels the model never trained
    on; `workers`: the chip loader's processes; `progress`: show a progress bar of the
    counting. A calibration in `options` is not used: the chips are predicted without
    bounds."""
    data = Path(data)
    source = open_source(data, split)
    truth = _truth(data, split, source)
    counts = ResidualCounts(**options.model_record(), residuals=truth.residuals)
    with tempfile.TemporaryDirectory() as folder:
        _predict(data, Path(folder), options, split, workers)
        for chip in tqdm(truth.chips, desc="calibrate", unit="chip", disable=not progress):
            pred = chip_prediction(Path(folder), chip, source.size(chip))
            truth.count(counts, pred, truth.read(chip))
    return _counted(counts, data)


def _predict(data: Path, folder: Path, options: InferenceOptions, split: str, workers: int) -> None:
    """Predict `split` of `data` into `folder` without bounds (a calibration in `options` is
    not used: it is what is being made)."""
    predict(data, folder, options=replace(options, calibration=None), split=split, workers=workers)


def _counted(counts: ResidualCounts, data: Path | str) -> Calibration:
    """The calibration of `counts`; a one-line `DataError` naming `data` when they hold
    no residual."""
    if not counts.counted():
        raise DataError(f"{data}: no residual to count (no prediction or truth has data)")
    return counts.to_calibration()


def shared_chips(
    before: Path, after: Path, split: str
) -> tuple[list[str], tuple[TargetReader, TargetReader]]:
    """The chips of `split` with targets in both roots (`before`, `after`: years A and B),
    in order, and how to read each root's targets; a one-line `DataError` naming both roots
    when they share none."""
    (chips_a, read_a), (chips_b, read_b) = (
        scored_chips(root, split, partial=True) for root in (before, after)
    )
    shared = sorted(set(chips_a) & set(chips_b))
    if not shared:
        raise DataError(
            f"{before} and {after} share no {split} chip with targets in both: a change is "
            "calibrated on the same chips in two years"
        )
    return shared, (read_a, read_b)


def calibrate_change(
    before: Path | str,
    after: Path | str,
    *,
    options: InferenceOptions,
    split: str = "test",
    workers: int = 2,
    progress: bool = False,
) -> Calibration:
    """The paired calibration of the change (module docstring) of the model of `options`:
    the residuals of the change of the chips of `split` that have targets in both `before`
    (year A's root) and `after` (year B's), which the model never trained on, binned by the
    predicted change; `workers`, `progress`: as `calibrate`'s."""
    before, after = Path(before), Path(after)
    chips, targets = shared_chips(before, after, split)
    sources = [open_source(root, split) for root in (before, after)]
    counts = ResidualCounts(**options.model_record(), kind="change", bins=CHANGE_BINS)
    with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b:
        folders = Path(a), Path(b)
        for root, folder in zip((before, after), folders, strict=True):
            _predict(root, folder, options, split, workers)
        for chip in tqdm(chips, desc="calibrate", unit="chip", disable=not progress):
            pred_a, pred_b = (
                chip_prediction(f, chip, s.size(chip))
                for f, s in zip(folders, sources, strict=True)
            )
            if pred_a.shape != pred_b.shape:
                raise DataError(
                    f"{after}: chip {chip} is {pred_b.shape} px, not {pred_a.shape} as in "
                    f"{before}: a pair of years holds the same chips on the same grids"
                )
            true_a, true_b = (read(chip) for read in targets)
            accumulate(counts, pred_b - pred_a, true_b - true_a)
    return _counted(counts, f"{before} and {after}")
