"""Two years of a region in one run: both maps on one grid, each tagged with its year, and
their change with the union bound's intervals (`agbm map-region --year A B`)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio

from agbm.cli import main
from agbm.models import TemporalUNet, save_model
from agbm.region.years import check_years
from tests.helpers import write_calibration

#: The half-width of `write_calibration`'s intervals of residuals all 10 t/ha, at any coverage
#: (the upper edge of their histogram bin).
HALF = 10.05


def _read(path: Path) -> tuple[np.ndarray, dict[str, str], rasterio.Affine]:
    with rasterio.open(path) as src:
        return src.read(), src.tags(), src.transform


def test_two_years_are_mapped_on_one_grid_with_their_change_and_its_union_bound(
    small_region: tuple[Path, Path, list[str]],
    tmp_path: Path,
    scheduler: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The catalog has S2 in 2021 only, so the untrained model's two maps differ. Each
    year's bounds are +-10.05 (low clamped at 0), so the change's are [low_B - high_A,
    high_B - low_A]; a rerun finds both years done and makes the change again; `agbm change`
    of the two folders takes their years from the maps' tags."""
    stac, checkpoint, bbox = small_region
    calib = write_calibration(checkpoint, "none", [10.0] * 7, tmp_path / "calib.json")
    out = tmp_path / "out"
    args = ["map-region", "--bbox", *bbox, "--year", "2021", "2022", "--catalog", str(stac),
            "--checkpoint", str(checkpoint), "--tta", "none", "--window", "64", "--overlap",
            "16", "--tile-size", "256", "--scheduler", scheduler, "--calibration", str(calib),
            "--amp", "off", "--out", str(out)]  # fmt: skip
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "2021: mapped 2 tile(s)" in printed and "2022: mapped 2 tile(s)" in printed
    assert (
        "minimum detectable change at 90%" in printed and f"change: {out / 'change.tif'}" in printed
    )
    (a, *_), tags_a, grid_a = _read(out / "2021" / "agbm.vrt")
    (b, *_), tags_b, grid_b = _read(out / "2022" / "agbm.vrt")
    assert (tags_a["AGBM_YEAR"], tags_b["AGBM_YEAR"], grid_a) == ("2021", "2022", grid_b)
    (change, low, high, significant), tags, grid = _read(out / "change.tif")
    assert tags["AGBM_YEARS"] == "2021 2022" and grid == grid_a
    seen = np.isfinite(a) & np.isfinite(b)
    assert seen.any() and not np.allclose(a[seen], b[seen])
    np.testing.assert_allclose(change[seen], (b - a)[seen], atol=1e-4)
    np.testing.assert_allclose(low[seen], (np.maximum(b - HALF, 0) - a - HALF)[seen], atol=1e-3)
    np.testing.assert_allclose(high[seen], (b + HALF - np.maximum(a - HALF, 0))[seen], atol=1e-3)
    expected = np.where(high < 0, -1, np.where(low > 0, 1, 0))
    np.testing.assert_array_equal(significant[seen], expected[seen])
    record = json.loads((out / "change.json").read_text())
    assert record["years"] == [2021, 2022] and record["rule"].startswith("union bound")
    assert main(args) == 0
    assert "2022: mapped 0 tile(s), 2 already done" in capsys.readouterr().out
    pair = ["change", "--from", str(out / "2021"), "--to", str(out / "2022")]
    assert main([*pair, "--out", str(tmp_path / "c.tif")]) == 0
    assert "(2021 to 2022)" in capsys.readouterr().out
    assert json.loads((tmp_path / "c.json").read_text())["years"] == [2021, 2022]


def test_two_years_must_be_two_with_the_earlier_first(
    small_region: tuple[Path, Path, list[str]],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert check_years([2020, 2021]) == (2020, 2021)
    for years in ([2021, 2020], [2021, 2021], [2021]):
        with pytest.raises(ValueError, match="`years` must be two years, the earlier first"):
            check_years(years)
    stac, checkpoint, bbox = small_region
    args = ["map-region", "--bbox", *bbox, "--catalog", str(stac), "--checkpoint",
            str(checkpoint), "--out", str(tmp_path / "out")]  # fmt: skip
    assert main([*args, "--year", "2022", "2021"]) == 2
    assert "--year must be two years, the earlier first" in capsys.readouterr().err
    assert main([*args, "--year", "2020", "2021", "2022"]) == 2
    assert "give --year one year, or two" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_a_change_calibration_of_another_kind_or_model_is_refused_before_any_tile(
    small_region: tuple[Path, Path, list[str]],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    stac, checkpoint, bbox = small_region
    other = tmp_path / "other.pt"
    save_model(other, TemporalUNet("test_efficientnet", decoder_channels=(8,) * 5))
    stock = write_calibration(checkpoint, "none", [10.0] * 7, tmp_path / "stock.json")
    of_other = write_calibration(other, "none", [10.0] * 8, tmp_path / "other.json", "change")
    args = ["map-region", "--bbox", *bbox, "--year", "2021", "2022", "--catalog", str(stac),
            "--checkpoint", str(checkpoint), "--tta", "none",
            "--out", str(tmp_path / "out")]  # fmt: skip
    assert main([*args, "--change-calibration", str(stock)]) == 2
    err = capsys.readouterr().err
    assert "a calibration of the stocks of one year" in err and "give it as --calibration" in err
    assert main([*args, "--change-calibration", str(of_other)]) == 2
    assert f"{of_other}: calibrated for checkpoints" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
