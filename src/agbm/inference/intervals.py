"""Calibrated intervals: what `agbm calibrate` measured, and the bounds it gives a map.

Split-conformal: on chips the model never trained on, the absolute residuals |prediction -
truth| are counted per pixel, in Mondrian bins of the predicted AGB (`PIXEL_BINS`, t/ha: the
error grows with the biomass), and for the means over square blocks of `BLOCK_SIDES` pixels
a side (1 pixel = 0.01 ha to 256 = 655 ha, the chips' sub-windows). The conformal quantile
at coverage c of n residuals is the ceil((n + 1) c)-th smallest: if calibration and new
pixels are exchangeable, a new residual is below it with probability at least c. The
residuals are counted in histograms of `STEP` t/ha and each quantile is taken at the upper
edge of its histogram bin, so the intervals are conservative by at most `STEP`.

A calibration belongs to its checkpoints (SHA-256) and TTA: another model's map is refused.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from agbm.errors import DataError
from agbm.io import replacing

#: Edges of the Mondrian bins of predicted AGB, t/ha (the last bin is open).
PIXEL_BINS = (0.0, 25.0, 50.0, 100.0, 150.0, 200.0, 300.0)
#: Sides of the calibrated square blocks, pixels (0.01 ha .. 655 ha at 10 m).
BLOCK_SIDES = (1, 4, 16, 64, 256)
#: The area of the chips' pixels (10 m), ha: the unit of the blocks, on a map of any grid.
PIXEL_HA = 0.01
#: Histogram step and range of the residuals, t/ha.
STEP, TOP = 0.05, 2000.0
EDGES = np.arange(0.0, TOP + STEP, STEP)
#: The calibration files' formats, the one written last (2 added `residuals`).
FORMATS = ("agbm-calibration-1", "agbm-calibration-2")


def check_coverage(coverage: float) -> None:
    """Refuse a coverage outside (0, 1), NaN too, in one line naming `--coverage`."""
    if not 0 < coverage < 1:
        raise ValueError(f"--coverage must be between 0 and 1 (e.g. 0.9), not {coverage}")


def conformal_quantile(counts: np.ndarray, coverage: float) -> float:
    """The conformal quantile at `coverage` of the residuals counted in `counts` (over
    `EDGES`): the upper edge of the bin of the ceil((n + 1) coverage)-th smallest; inf when
    there are too few residuals for that coverage."""
    check_coverage(coverage)
    n = int(counts.sum())
    rank = math.ceil((n + 1) * coverage)
    if n == 0 or rank > n:
        return math.inf
    return float(EDGES[1:][np.searchsorted(np.cumsum(counts), rank)])


@dataclass
class Calibration:
    """Residual histograms of a model on held-out chips: per pixel by bin of predicted AGB
    (`pixel[b]`), and of block means by side (`blocks[side]`), with what they belong to
    and what they measure (`residuals`)."""

    checkpoints: list[str]
    tta: str
    pixel: list[list[int]]
    blocks: dict[str, list[int]]
    chips: int
    #: What the residuals are of: dense targets' "pixels", or labels' "footprints".
    residuals: str = "pixels"

    def pixel_quantiles(self, coverage: float) -> np.ndarray:
        """The half-width per bin of `PIXEL_BINS` at `coverage`, t/ha."""
        return np.array([conformal_quantile(np.asarray(c), coverage) for c in self.pixel])

    def bounds(self, pred: np.ndarray, coverage: float) -> tuple[np.ndarray, np.ndarray]:
        """(low, high) of a map `pred` (t/ha, NaN = no data) at `coverage`, low clamped at 0."""
        width = self.pixel_quantiles(coverage)[bin_of(pred)]
        width = np.where(np.isfinite(pred), width, np.nan)
        return np.maximum(pred - width, 0.0).astype(np.float32), (pred + width).astype(np.float32)

    def block_halfwidth(self, pixels: float, coverage: float) -> tuple[float, int]:
        """(half-width in t/ha of the mean over `pixels` mapped pixels (of `PIXEL_HA`) at
        `coverage`, the side of the block it comes from): the calibrated block nearest in
        area (log scale); an area beyond the largest block takes the largest block's, which
        is conservative as long as errors of means shrink with area, the more so the larger
        the zone."""
        sides = [int(s) for s in self.blocks]
        side = min(sides, key=lambda s: abs(math.log(s * s) - math.log(max(pixels, 1.0))))
        if pixels > max(sides) ** 2:
            side = max(sides)
        return conformal_quantile(np.asarray(self.blocks[str(side)]), coverage), side

    def check(self, checkpoints: Sequence[str], tta: str, path: Path | str, of: str = "") -> None:
        """Refuse a map of other checkpoints (SHA-256) or another TTA, naming the calibration
        file `path` (and `of`, what the map is, when it is a file: "MAP's ")."""
        if list(checkpoints) != self.checkpoints or tta != self.tta:
            raise DataError(
                f"{path}: calibrated for checkpoints {[c[:12] for c in self.checkpoints]} with "
                f"TTA {self.tta}, not {of}{[c[:12] for c in checkpoints]} with TTA {tta}: "
                "calibrate this model (agbm calibrate)"
            )

    def write(self, path: Path | str) -> Path:
        path = Path(path)
        with replacing(path) as tmp:
            tmp.write_text(json.dumps({"format": FORMATS[-1], **asdict(self)}))
        return path


def bin_of(pred: np.ndarray) -> np.ndarray:
    """Each prediction's Mondrian bin (index into `PIXEL_BINS`); NaN goes to bin 0."""
    return np.clip(np.searchsorted(PIXEL_BINS, np.nan_to_num(pred), side="right") - 1, 0, None)


def read_calibration(path: Path | str) -> Calibration:
    """A calibration file, or a one-line `DataError` naming it."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
        if data.pop("format") not in FORMATS:
            raise ValueError("another format")
        return Calibration(**data)
    except FileNotFoundError:
        raise DataError(f"{path}: no such calibration file") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise DataError(f"{path}: not an agbm calibration ({exc})") from None
