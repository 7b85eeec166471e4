"""The calibration file both ways: `ResidualCounts` counts in NumPy and makes the file's
`Calibration`, which is written and read back unchanged."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from agbm.errors import DataError
from agbm.inference.intervals import CHANGE_BINS, PIXEL_BINS, ResidualCounts, read_calibration

#: A 2 x 2 chip's predictions (bins 0-25, 25-50, 100-150, and no data: bin 0) and residuals.
PRED = np.array([[10.0, 30.0], [120.0, np.nan]])
RESIDUAL = np.array([[0.02, 1.02], [2.52, 0.0]])


def test_counts_become_the_file_s_lists_and_come_back_unchanged(tmp_path: Path) -> None:
    counts = ResidualCounts(["a" * 64], "hv")
    for _ in range(2):
        counts.add(PRED, RESIDUAL, {1: RESIDUAL.ravel(), 4: np.array([])})
    assert counts.chips == 2 and counts.counted() == 8
    calibration = counts.to_calibration()
    assert calibration.pixel[0] == [4]  # 0.02 and the no-data pixel's 0, twice
    assert calibration.pixel[1] == [0] * 20 + [2]  # 1.02 t/ha: the 21st bin of 0.05
    assert calibration.pixel[3] == [0] * 50 + [2] and calibration.pixel[2] == []
    assert all(type(n) is int for c in calibration.pixel for n in c)  # lists, not arrays
    assert list(calibration.blocks) == ["1"]  # a block with no residual is left out
    assert (calibration.chips, calibration.residuals, calibration.tta) == (2, "pixels", "hv")
    assert read_calibration(calibration.write(tmp_path / "calib.json")) == calibration


def test_residuals_of_an_unknown_kind_are_refused_before_counting() -> None:
    with pytest.raises(ValueError, match="residuals must be one of pixels, footprints, not 'x'"):
        ResidualCounts(["a" * 64], "none", "x")


def test_a_change_calibration_keeps_its_bins_and_kind_and_an_old_file_reads_as_stock(
    tmp_path: Path,
) -> None:
    """The bins of predicted change are signed: -120 is a clear-cut's (the first bin, open
    below), 0 no change, 60 the last bin's. A file of format 2 (no kind, no bins) is of the
    stocks, binned by `PIXEL_BINS`; a file of one kind is refused as the other."""
    counts = ResidualCounts(["a" * 64], "none", kind="change", bins=CHANGE_BINS)
    change = np.array([[-120.0, -100.0], [0.0, 60.0]])
    counts.add(change, np.full((2, 2), 0.02), {1: np.full(4, 0.02)})
    calibration = counts.to_calibration()
    assert [sum(c) for c in calibration.pixel] == [1, 1, 0, 0, 1, 0, 0, 1]
    assert calibration.kind == "change" and calibration.bins == list(CHANGE_BINS)
    path = calibration.write(tmp_path / "change.json")
    assert read_calibration(path, "change") == calibration
    with pytest.raises(DataError, match="change.json: a calibration of the change between two"):
        read_calibration(path)
    stock = ResidualCounts(["a" * 64], "none")
    stock.add(PRED, RESIDUAL, {1: RESIDUAL.ravel()})
    old = json.loads(stock.to_calibration().write(path).read_text())
    del old["kind"], old["bins"]
    path.write_text(json.dumps({**old, "format": "agbm-calibration-2"}))
    stock = read_calibration(path)
    assert stock.kind == "stock" and stock.bins == list(PIXEL_BINS) and len(stock.pixel) == 7
    with pytest.raises(DataError, match="change.json: a calibration of the stocks of one year"):
        read_calibration(path, "change")
    path.write_text(json.dumps({**old, "bins": [0, 50, 25, 100, 150, 200, 300]}))
    with pytest.raises(DataError, match="not the increasing lower edges of the bins"):
        read_calibration(path)
