"""The calibration file both ways: `ResidualCounts` counts in NumPy and makes the file's
`Calibration`, which is written and read back unchanged."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from agbm.inference.intervals import ResidualCounts, read_calibration

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
