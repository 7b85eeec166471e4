"""Score a prediction directory with the challenge metric.

Average RMSE (the RMSE over each chip's pixels, averaged over chips) is what BioMassters
ranked by; the RMSE over all pixels pooled is printed beside it because it weighs every
pixel equally, which is what a map user feels. Every chip with a target must have a
well-formed prediction: a gap is an error naming the chip, never a silent skip.
"""

from __future__ import annotations

import csv
import functools
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from agbm.data.cache import is_cache
from agbm.data.layout import (
    agbm_chips,
    features_folder,
    prediction_path,
    target_path,
    targets_folder,
)
from agbm.data.raw import chip_prediction, read_prediction, read_target
from agbm.data.sources import open_source
from agbm.errors import DataError
from agbm.inference.intervals import PIXEL_BINS, bin_of
from agbm.io import replacing
from agbm.metrics import average_rmse, chip_rmse


@dataclass
class BoundScores:
    """How the bounds beside the predictions (`{chip}_low.tif`, `_high.tif`) did: per bin
    of predicted AGB (`PIXEL_BINS`), pixels, pixels inside their bounds, summed width."""

    pixels: np.ndarray = field(default_factory=lambda: np.zeros(len(PIXEL_BINS), np.int64))
    inside: np.ndarray = field(default_factory=lambda: np.zeros(len(PIXEL_BINS), np.int64))
    width: np.ndarray = field(default_factory=lambda: np.zeros(len(PIXEL_BINS)))

    def add(self, pred: np.ndarray, target: np.ndarray, low: np.ndarray, high: np.ndarray) -> None:
        bins = bin_of(pred)
        inside = (target >= low) & (target <= high)
        self.pixels += np.bincount(bins.ravel(), minlength=len(PIXEL_BINS))
        self.inside += np.bincount(bins.ravel(), inside.ravel(), len(PIXEL_BINS)).astype(np.int64)
        self.width += np.bincount(bins.ravel(), (high - low).ravel(), len(PIXEL_BINS))

    def rows(self) -> list[tuple[str, str]]:
        """Coverage and mean width, all pixels first, then each bin that has pixels."""
        edges = [*PIXEL_BINS, math.inf]
        total = self.pixels.sum()
        rows = [
            ("bounds: coverage, all pixels", f"{self.inside.sum() / total:.1%}"),
            ("bounds: mean width (t/ha)", f"{self.width.sum() / total:.1f}"),
        ]
        for b, (lo, hi) in enumerate(zip(edges, edges[1:], strict=False)):
            if self.pixels[b]:
                rows.append((
                    f"  predicted {lo:g}-{hi:g} t/ha ({self.pixels[b]:,} px): coverage, width",
                    f"{self.inside[b] / self.pixels[b]:.1%}, {self.width[b] / self.pixels[b]:.1f}",
                ))  # fmt: skip
        return rows


@dataclass(frozen=True)
class Evaluation:
    """Per-chip RMSEs and the summary figures; the bounds' scores when there are bounds."""

    chip_ids: list[str]
    per_chip: np.ndarray
    pooled: float
    bounds: BoundScores | None = None

    @property
    def average(self) -> float:
        return average_rmse(self.per_chip)


TargetReader = Callable[[str], np.ndarray]


def scored_chips(truth: Path, split: str, partial: bool = False) -> tuple[list[str], TargetReader]:
    """The chips to score and how to read their targets.

    With the split's features beside the targets (a data root or an `agbm prepare` cache),
    every chip of the split must have a target: a missing one is an error naming it, unless
    `partial` asks to score only the chips that have one. A folder of targets alone is
    scored as it is.
    """
    if is_cache(truth) or features_folder(truth, split).is_dir():
        source = open_source(truth, split)
        if not source.has_targets():
            raise DataError(f"{truth} has no targets for the {split} split ({split}_agbm/)")
        chips = source.chip_ids()
        if not is_cache(truth):  # a cache holds every target of a split prepared with them
            missing = [c for c in chips if not target_path(truth, c, split).is_file()]
            if missing and not partial:
                raise DataError(
                    f"{len(missing)} of {len(chips)} {split} chip(s) have no target in "
                    f"{targets_folder(truth, split)} (first: {', '.join(missing[:3])}); pass "
                    "`partial` to score only the chips that have one"
                )
            absent = set(missing)
            chips = [c for c in chips if c not in absent]

        def read_checked(chip: str) -> np.ndarray:
            """The target, whose size must be the chip's (else the target is at fault, not
            the prediction compared with it)."""
            target, size = source.read_target(chip), source.size(chip)
            if target.shape != tuple(size):
                raise DataError(
                    f"{target_path(truth, chip, split)}: target size {target.shape} differs "
                    f"from the chip's {tuple(size)}"
                )
            return target

        return chips, read_checked
    folder = targets_folder(truth, split)
    if not folder.is_dir():
        raise DataError(f"{truth} has no {split}_agbm/ directory of targets")
    chips = agbm_chips(folder)
    if not chips:
        raise DataError(f"no targets in {folder}")
    return chips, functools.partial(read_target, truth, split=split)


def evaluate(
    pred_dir: Path | str, truth: Path | str, split: str = "test", partial: bool = False
) -> Evaluation:
    """Compare every target of `split` under `truth` (a data root, a cache, or a folder of
    targets) with its prediction in `pred_dir`."""
    pred_dir, truth = Path(pred_dir), Path(truth)
    if not pred_dir.is_dir():
        raise DataError(f"prediction directory {pred_dir} does not exist")
    chips, read_chip_target = scored_chips(truth, split, partial)
    per_chip, sq_sum, pixels = [], 0.0, 0
    layers = ("low", "high")
    bounded = all(prediction_path(pred_dir, c, x).is_file() for c in chips for x in layers)
    bounds = BoundScores() if bounded else None
    for chip in chips:
        target = read_chip_target(chip)
        pred = chip_prediction(pred_dir, chip, target.shape)
        per_chip.append(chip_rmse(pred[None], target[None])[0])
        sq_sum += float(((pred.astype(np.float64) - target) ** 2).sum())
        pixels += target.size
        if bounds is not None:
            low, high = (read_prediction(prediction_path(pred_dir, chip, x), target.shape)
                         for x in layers)  # fmt: skip
            bounds.add(pred, target, low, high)
    return Evaluation(chips, np.array(per_chip), math.sqrt(sq_sum / pixels), bounds)


def write_per_chip(path: Path, result: Evaluation) -> None:
    """Each chip's RMSE, one row per chip, for a closer look at the worst ones."""
    with replacing(Path(path)) as tmp, tmp.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["chip_id", "rmse"])
        writer.writerows(
            (c, f"{r:.4f}") for c, r in zip(result.chip_ids, result.per_chip, strict=True)
        )


def format_rows(rows: list[tuple[str, str]]) -> str:
    """Name-value rows as an aligned table, what `agbm evaluate` prints."""
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value:>10}" for name, value in rows)


def format_table(result: Evaluation) -> str:
    rows = [
        ("chips", f"{len(result.chip_ids)}"),
        ("average RMSE (challenge metric, t/ha)", f"{result.average:.3f}"),
        ("pooled RMSE over all pixels (t/ha)", f"{result.pooled:.3f}"),
    ]
    return format_rows(rows + (result.bounds.rows() if result.bounds else []))
