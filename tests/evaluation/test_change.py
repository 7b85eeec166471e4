"""`agbm change`: two years' maps of one model, their change, and its union-bound interval,
checked against a hand computation (docs/change.md)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine

from agbm.cli import main
from agbm.data.geotiff import write_geotiff
from agbm.inference.layers import CHECKPOINTS_TAG, TTA_TAG
from agbm.io import file_sha256
from tests.helpers import write_calibration

#: Year A and year B, t/ha; NaN: no data in A.
A = np.array([[0.0, 30.0, 10.0], [120.0, np.nan, 100.0]], np.float32)
B = np.array([[10.0, 28.0, 200.0], [20.0, 130.0, 100.0]], np.float32)
#: The calibration's half-width per bin of predicted AGB (write_calibration's widths + its
#: histogram step): bins 0-25, 25-50, 50-100, 100-150, 150-200, 200-300, 300+ t/ha.
WIDTHS = [5, 10, 20, 30, 40, 50, 60]
HALF = {0: 5.05, 1: 10.05, 3: 30.05, 5: 50.05}
#: A paired calibration's half-widths per bin of predicted change (`CHANGE_BINS`): < -100,
#: -100 to -50, -50 to -20, -20 to -5, -5 to 5, 5-20, 20-50, 50+ t/ha.
CHANGE_WIDTHS = [30, 20, 10, 6, 3, 6, 10, 20]
T = Affine(10, 0, 500000, 0, -10, 6900000)


def _map(path: Path, values: np.ndarray, model: Path, transform: Affine = T) -> Path:
    tags = {CHECKPOINTS_TAG: file_sha256(model), TTA_TAG: "none"}
    path.parent.mkdir(parents=True, exist_ok=True)
    write_geotiff(path, values[None], "EPSG:3067", transform, np.nan, ["AGBM (t/ha)"], tags)
    return path


@pytest.fixture
def pair(tmp_path: Path) -> dict[str, Path]:
    model = tmp_path / "m.pt"
    model.write_bytes(b"weights")
    calib = write_calibration(model, "none", WIDTHS, tmp_path / "calib.json")
    paired = write_calibration(model, "none", CHANGE_WIDTHS, tmp_path / "paired.json", "change")
    a, b = _map(tmp_path / "a.tif", A, model), _map(tmp_path / "b.tif", B, model)
    return {"model": model, "calib": calib, "paired": paired, "a": a, "b": b}


def _bounds(a: float, wa: float, b: float, wb: float) -> tuple[float, float]:
    """[low_B - high_A, high_B - low_A], lows clamped at 0 as the stock bounds are."""
    return max(b - wb, 0) - (a + wa), (b + wb) - max(a - wa, 0)


def test_the_change_and_its_union_bound_interval_are_the_hand_computed_ones(
    pair: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "change.tif"
    args = ["change", "--from", str(pair["a"]), "--to", str(pair["b"]), "--out", str(out),
            "--calibration", str(pair["calib"]), "--years", "2020", "2021"]  # fmt: skip
    assert main(args) == 0
    with rasterio.open(out) as src:
        change, low, high, significant = src.read()
        assert src.descriptions[3] == "significant change: -1 loss, 0 none, +1 gain"
        assert src.tags()["AGBM_YEARS"] == "2020 2021"
    np.testing.assert_array_equal(change, B - A)
    h = HALF  # each year's bounds at 95 % (a 90 % change interval): bins' half-widths
    expected = [
        [_bounds(0, h[0], 10, h[0]), _bounds(30, h[1], 28, h[1]), _bounds(10, h[0], 200, h[5])],
        [_bounds(120, h[3], 20, h[0]), (np.nan, np.nan), _bounds(100, h[3], 100, h[3])],
    ]
    np.testing.assert_allclose(low, [[e[0] for e in row] for row in expected], atol=1e-4)
    np.testing.assert_allclose(high, [[e[1] for e in row] for row in expected], atol=1e-4)
    np.testing.assert_array_equal(significant, [[0, 0, 1], [-1, np.nan, 0]])  # gain, loss
    printed = capsys.readouterr().out
    assert "block of 1 px (0.01 ha)" in printed and "± 10.1" in printed  # 2 x 5.05
    record = json.loads(out.with_suffix(".json").read_text())
    assert record["minimum_detectable_change_t_ha"] == {"1 px (0.01 ha)": 10.1}
    assert record["years"] == [2020, 2021] and record["coverage"] == 0.9


def test_the_paired_interval_is_the_change_plus_minus_its_bins_quantile(
    pair: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """With a calibration of the change (`--change-calibration`), B - A = [[10, -2, 190],
    [-100, NaN, 0]] takes the half-widths of its bins of predicted change at 90 % directly
    (+ the histogram's step), and a block's minimum detectable change is its quantile once."""
    out = tmp_path / "change.tif"
    args = ["change", "--from", str(pair["a"]), "--to", str(pair["b"]), "--out", str(out),
            "--change-calibration", str(pair["paired"])]  # fmt: skip
    assert main(args) == 0
    with rasterio.open(out) as src:
        change, low, high, significant = src.read()
        assert "paired calibration" in src.tags()["AGBM_BOUNDS"]
    half = np.array([[6.05, 3.05, 20.05], [20.05, np.nan, 3.05]])  # bins 5-20, -5 to 5, 50+, ...
    np.testing.assert_allclose(low, (B - A) - half, atol=1e-4)
    np.testing.assert_allclose(high, (B - A) + half, atol=1e-4)
    np.testing.assert_array_equal(significant, [[1, 0, 1], [-1, np.nan, 0]])
    assert "block of 1 px (0.01 ha)       ± 5.1" in capsys.readouterr().out  # not 2 x 5.05
    record = json.loads(out.with_suffix(".json").read_text())
    assert record["minimum_detectable_change_t_ha"] == {"1 px (0.01 ha)": 5.05}
    assert record["rule"].startswith("paired")


def test_a_calibration_of_the_other_kind_or_of_other_maps_is_refused_naming_it(
    pair: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = tmp_path / "other.pt"
    other.write_bytes(b"other weights")
    others = write_calibration(other, "none", CHANGE_WIDTHS, tmp_path / "others.json", "change")
    maps = ["change", "--from", str(pair["a"]), "--to", str(pair["b"])]
    refused = {
        ("--change-calibration", pair["calib"]): "calib.json: a calibration of the stocks of "
        "one year (agbm calibrate), not of the change between two years (agbm calibrate "
        "--change): give it as --calibration",
        ("--calibration", pair["paired"]): "paired.json: a calibration of the change between "
        "two years (agbm calibrate --change), not of the stocks of one year (agbm calibrate): "
        "give it as --change-calibration",
        ("--change-calibration", others): "others.json: calibrated for checkpoints",
    }
    for (flag, calib), message in refused.items():
        assert main([*maps, "--out", str(tmp_path / "c.tif"), flag, str(calib)]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err
    both = ["--calibration", str(pair["calib"]), "--change-calibration", str(pair["paired"])]
    assert main([*maps, "--out", str(tmp_path / "c.tif"), *both]) == 2
    assert "not both" in capsys.readouterr().err
    assert not (tmp_path / "c.tif").exists()


def test_maps_on_other_grids_or_of_other_models_are_refused_saying_which(
    pair: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shifted = _map(tmp_path / "shifted.tif", B, pair["model"], T @ Affine.translation(1, 0))
    other = tmp_path / "other.pt"
    other.write_bytes(b"other weights")
    another = _map(tmp_path / "another.tif", B, other)
    for b, message in ((shifted, "(its transform differ)"), (another, "different models")):
        args = ["change", "--from", str(pair["a"]), "--to", str(b)]
        assert main([*args, "--out", str(tmp_path / "c.tif")]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1
    assert not (tmp_path / "c.tif").exists()


def test_two_predict_folders_give_each_shared_chips_change(
    pair: dict[str, Path], tmp_path: Path
) -> None:
    before, after = tmp_path / "pred2020", tmp_path / "pred2021"
    for chip in ("aaaa0000", "bbbb1111"):
        _map(before / f"{chip}_agbm.tif", A, pair["model"])
        _map(after / f"{chip}_agbm.tif", B, pair["model"])
    _map(after / "cccc2222_agbm.tif", B, pair["model"])  # only in one year: left out
    out = tmp_path / "change"
    args = ["change", "--from", str(before), "--to", str(after), "--out", str(out)]
    assert main([*args, "--calibration", str(pair["calib"])]) == 0
    names = sorted(p.name for p in out.glob("*.tif"))
    assert len(names) == 8 and "aaaa0000_significant.tif" in names and "cccc" not in str(names)
    with rasterio.open(out / "bbbb1111_significant.tif") as src:
        np.testing.assert_array_equal(src.read(1), [[0, 0, 1], [-1, np.nan, 0]])
    assert (out / "CHANGE.json").is_file()


def test_without_a_calibration_the_change_map_has_the_change_only(
    pair: dict[str, Path], tmp_path: Path
) -> None:
    out = tmp_path / "change.tif"
    assert (
        main(["change", "--from", str(pair["a"]), "--to", str(pair["b"]), "--out", str(out)]) == 0
    )
    with rasterio.open(out) as src:
        assert src.count == 1
        np.testing.assert_array_equal(src.read(1), B - A)


@pytest.fixture
def stand(tmp_path: Path) -> dict[str, Path]:
    """4 x 4 pixels of 0.01 ha in an equal-area grid: 100 t/ha in year A; in year B a 2 x 2
    clear-cut (0) and 104 elsewhere; one zone, all of it; the model's calibrations."""
    import geopandas
    from shapely.geometry import box

    model = tmp_path / "m.pt"
    model.write_bytes(b"weights")
    calib = write_calibration(model, "none", WIDTHS, tmp_path / "calib.json")
    paired = write_calibration(model, "none", CHANGE_WIDTHS, tmp_path / "paired.json", "change")
    laea = Affine(10, 0, 4_000_000, 0, -10, 3_000_040)
    before = np.full((4, 4), 100.0, np.float32)
    after = np.full((4, 4), 104.0, np.float32)
    after[:2, :2] = 0.0
    maps = []
    for name, values in (("a", before), ("b", after)):
        tags = {CHECKPOINTS_TAG: file_sha256(model), TTA_TAG: "none"}
        path = tmp_path / f"{name}.tif"
        write_geotiff(path, values[None], "EPSG:3035", laea, np.nan, ["AGBM (t/ha)"], tags)
        maps.append(path)
    zones = tmp_path / "zones.gpkg"
    zone = box(4_000_000, 3_000_000, 4_000_040, 3_000_040)
    geopandas.GeoDataFrame({"name": ["stand"]}, geometry=[zone], crs="EPSG:3035").to_file(zones)
    return {"a": maps[0], "b": maps[1], "zones": zones, "calib": calib, "paired": paired}


def _stats_change(stand: dict[str, Path], out: Path, *calibration: str) -> int:
    """`agbm stats --change` of the stand's two years, 2020 and 2022, to `out`."""
    args = ["stats", "--change", "--from", str(stand["a"]), "--to", str(stand["b"]), "--zones",
            str(stand["zones"]), "--id", "name", "--out", str(out), *calibration,
            "--years", "2020", "2022"]  # fmt: skip
    return main(args)


def test_stats_change_gives_each_zones_net_change_and_emissions_as_by_hand(
    stand: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import pandas as pd

    out = tmp_path / "change.csv"
    assert _stats_change(stand, out, "--calibration", str(stand["calib"])) == 0
    row = pd.read_csv(out).iloc[0]
    delta = 12 * 0.01 * 104 - 16 * 0.01 * 100  # -3.52 t
    emissions = -delta * 0.47 * 44 / 12  # a loss: a positive emission
    half = 5.05 * 0.16  # each year's block half-width (5.05 t/ha at 95 %) x 0.16 ha
    expected = {
        "agb_t_from": 16.0, "agb_t_to": 12.48, "delta_agb_t": delta,
        "delta_agb_t_low": delta - 2 * half, "delta_agb_t_high": delta + 2 * half,
        "emissions_co2e_t": emissions, "emissions_co2e_t_per_year": emissions / 2,
        "emissions_co2e_t_high": -(delta - 2 * half) * 0.47 * 44 / 12,
        "loss_ha": 0.04, "gain_ha": 0.0,
    }  # fmt: skip
    for column, value in expected.items():
        assert row[column] == pytest.approx(value, rel=1e-3, abs=1e-6), column
    assert "emissions 6 t CO2e" in capsys.readouterr().out


def test_stats_change_with_a_paired_calibration_takes_its_block_quantile_once(
    stand: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The paired calibration's only block (1 px, 5.05 t/ha) serves the 16 px zone: the
    change's interval is delta +- 5.05 x 0.16 ha (the union bound's was twice that). The
    cut pixels (-100: bin -100 to -50, +- 20.05) are a loss; the others (+4: bin -5 to 5,
    +- 3.05) a gain."""
    import pandas as pd

    out = tmp_path / "change.csv"
    assert _stats_change(stand, out, "--change-calibration", str(stand["paired"])) == 0
    row = pd.read_csv(out).iloc[0]
    delta, half = 12 * 0.01 * 104 - 16 * 0.01 * 100, 5.05 * 0.16
    expected = {
        "delta_agb_t": delta, "delta_agb_t_low": delta - half, "delta_agb_t_high": delta + half,
        "interval_block_px": 1, "coverage": 0.9, "loss_ha": 0.04, "gain_ha": 0.12,
    }  # fmt: skip
    for column, value in expected.items():
        assert row[column] == pytest.approx(value, rel=1e-3, abs=1e-6), column
    capsys.readouterr()
    stock = ["--change-calibration", str(stand["calib"])]
    assert _stats_change(stand, tmp_path / "x.csv", *stock) == 2
    err = capsys.readouterr().err
    assert "calib.json: a calibration of the stocks" in err and err.count("\n") == 1
    assert not (tmp_path / "x.csv").exists()


def test_the_record_beside_the_change_map_never_replaces_an_input(
    pair: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--out change.tif --calibration change.json` wrote the record change.json over the
    calibration it had just read, exit 0."""
    calib = tmp_path / "change.json"
    calib.write_bytes(pair["calib"].read_bytes())
    before = calib.read_bytes()
    args = ["change", "--from", str(pair["a"]), "--to", str(pair["b"]),
            "--out", str(tmp_path / "change.tif"), "--calibration", str(calib)]  # fmt: skip
    assert main(args) == 2
    assert f"{calib} is one of this command's inputs" in capsys.readouterr().err
    assert calib.read_bytes() == before and not (tmp_path / "change.tif").exists()
