"""Helpers shared by the tests."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import rasterio
import torch


def write_tif(path: Path, array: np.ndarray, nodata: float | None = None) -> None:
    """Write `[bands, H, W]` as an (ungeoreferenced) GeoTIFF."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=array.shape[2],
        height=array.shape[1],
        count=array.shape[0],
        dtype=array.dtype.name,
        nodata=nodata,
    ) as dst:
        dst.write(array)


#: The repository's root (docs/, bench/, README.md).
REPO = Path(__file__).resolve().parents[1]
#: Files made by running the BioMassters winner's own code (../shared beside the checkout).
WINNER_FIXTURE = REPO.parent / "shared" / "fixtures" / "winner"


SMALL = {
    "backbone": "resnet18",
    "pretrained": "none",
    "decoder_channels": [32, 32, 16, 16, 16],
    "workers": 0,
    "channels_last": False,
}


def assert_lower_by_se(lower: np.ndarray, higher: np.ndarray, sigmas: float = 3.0) -> None:
    """Assert that per-unit scores `lower` (e.g. a model's RMSE per chip) are below the paired
    `higher` by more than `sigmas` standard errors of the mean difference: a learning test
    whose band comes from its own sampling error, so that it holds on any CPU."""
    diff = np.asarray(higher, float) - np.asarray(lower, float)
    se = diff.std(ddof=1) / np.sqrt(diff.size)
    assert diff.mean() > sigmas * se, (diff.mean(), se, diff.size)


def assert_covers(
    covered: list[np.ndarray], nominal: float, calibrated_on: tuple[int, int], sigmas: float = 3.0
) -> None:
    """Assert that intervals at `nominal` coverage cover it within `sigmas` standard errors
    of their own sampling: a band that holds on any CPU, as wide as the test's data makes it.

    `covered` holds one boolean array per scored chip (whether each pixel, block or footprint
    was covered): chips are the independent units, since errors are correlated within one.
    `calibrated_on` is (chips, residuals) of the calibration: its quantiles carry their own
    error, the chips' spread over so many chips plus the binomial noise of so many residuals.
    """
    mean, se = _coverage_se(covered, nominal, calibrated_on)
    assert abs(mean - nominal) <= sigmas * se, (mean, nominal, se)


def assert_at_least(
    covered: list[np.ndarray], nominal: float, calibrated_on: tuple[int, int], sigmas: float = 3.0
) -> None:
    """Assert that intervals promising at least `nominal` coverage (a union bound, say) are
    not below it by more than `sigmas` standard errors (`assert_covers`' terms)."""
    mean, se = _coverage_se(covered, nominal, calibrated_on)
    assert mean >= nominal - sigmas * se, (mean, nominal, se)


def _coverage_se(
    covered: list[np.ndarray], nominal: float, calibrated_on: tuple[int, int]
) -> tuple[float, float]:
    """(coverage, its standard error) of per-chip `covered` arrays (`assert_covers`)."""
    per_chip = np.array([c.mean() for c in covered if c.size])
    spread = per_chip.var(ddof=1)
    chips, residuals = calibrated_on
    se = np.sqrt(spread / per_chip.size + spread / chips + nominal * (1 - nominal) / residuals)
    return float(np.concatenate([c.ravel() for c in covered]).mean()), float(se)


def read_metrics(run: Path) -> list[dict[str, str]]:
    with (run / "metrics.csv").open() as f:
        return list(csv.DictReader(f))


#: The first bytes of every PNG file.
PNG = b"\x89PNG\r\n\x1a\n"


def fake_sample(seed: int) -> dict:
    rng = np.random.default_rng(seed)
    image = rng.random((12, 15, 8, 8), dtype=np.float32)
    present = np.ones(12, dtype=bool)
    present[3] = False
    image[3] = 0
    target = 50 + 200 * image[9, 10] - 80 * image[0, 1]  # linear in two inputs
    target[0, 0] = 5000.0  # an outlier the fit must ignore
    return {
        "image": torch.from_numpy(image),
        "present": torch.from_numpy(present),
        "target": torch.from_numpy(target)[None].float(),
        "chip_id": str(seed),
    }


def write_calibration(
    checkpoint: Path, tta: str, widths: list[float], path: Path, kind: str = "stock"
) -> Path:
    """A calibration file by hand: per bin of predicted AGB (of predicted change for `kind`
    "change": `CHANGE_BINS`), residuals all `widths[b]`; those of 1 px blocks all 5 t/ha."""
    from agbm.inference.intervals import CHANGE_BINS, EDGES, PIXEL_BINS, STEP, Calibration
    from agbm.io import file_sha256

    def counts(value: float) -> list[int]:
        histogram = np.zeros(len(EDGES) - 1, int)
        histogram[int(value / STEP)] = 100
        return histogram.tolist()

    pixel = [counts(w) for w in widths]
    bins = list(CHANGE_BINS if kind == "change" else PIXEL_BINS)
    blocks = {"1": counts(5.0)}
    record = Calibration([file_sha256(checkpoint)], tta, pixel, blocks, 1, kind=kind, bins=bins)
    return record.write(path)
