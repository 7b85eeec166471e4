"""Maps scored against labelled points: footprint means by hand, in any CRS, end to end."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rasterio
from affine import Affine
from pyproj import Transformer

from agbm.cli import main
from agbm.data.geotiff import MosaicPart, write_geotiff, write_mosaic_vrt
from agbm.evaluation.points import score
from agbm.labels.footprints import footprint_means_on_map
from agbm.labels.frame import labels_frame, write_labels

UTM = "EPSG:32635"
X0, Y0 = 500000.0, 6800040.0  # the map's top-left corner
#: 4 x 4 pixels of 10 m, values 0..15 in raster order, pixel (0, 0) without data.
VALUES = np.arange(16, dtype=np.float32).reshape(4, 4)
VALUES[0, 0] = np.nan


def _map(path: Path, values: np.ndarray = VALUES, crs: str = UTM, transform: Affine = None) -> Path:
    transform = transform or Affine(10, 0, X0, 0, -10, Y0)
    names = ["agbm", "low", "high", "spread"][: len(values) if values.ndim == 3 else 1]
    write_geotiff(path, values, crs, transform, np.nan, names, {})
    return path


def _labels(xy: list[tuple[float, float]], radius: list[float], agbd: list[float]):
    xs, ys = (np.array(v) for v in zip(*xy, strict=True))
    lon, lat = Transformer.from_crs(UTM, "EPSG:4326", always_xy=True).transform(xs, ys)
    return labels_frame(lon, lat, agbd, 1.0, radius, None, "test")


def test_a_footprint_mean_weights_each_pixel_by_the_share_of_the_disc_on_it(
    tmp_path: Path,
) -> None:
    # a calibrated map's four bands: the means are of the first, the AGBM
    agbd_map = _map(tmp_path / "m.tif", np.stack([VALUES, VALUES - 1, VALUES + 1, VALUES * 0]))
    labels = _labels(
        [
            (X0 + 20, Y0 - 20),  # r = 10 m on the corner of pixels (1,1) (1,2) (2,1) (2,2)
            (X0 + 30, Y0 - 35),  # r = 5 m across the edge of (3,2) and (3,3): half on each
            (X0 + 10, Y0 - 10),  # r = 10 m on (0,0) without data, (0,1), (1,0), (1,1)
            (X0 + 15, Y0 - 25),  # r = 2 m inside pixel (2,1)
            (X0 + 500, Y0 - 500),  # off the map
        ],
        [10, 5, 10, 2, 10],
        [0, 0, 0, 0, 0],
    )
    means = footprint_means_on_map(agbd_map, labels)
    expected = [(5 + 6 + 9 + 10) / 4, (14 + 15) / 2, (1 + 4 + 5) / 3, 9]
    np.testing.assert_allclose(means[:4], expected, atol=1e-3)
    assert np.isnan(means[4])


def test_a_map_in_degrees_gets_discs_drawn_in_metres_and_reprojected(tmp_path: Path) -> None:
    """As ESA CCI Biomass is: a 4326 grid of ~0.001 degrees (~100 m) pixels."""
    lon, lat = 27.0, 61.3
    values = np.array([[1, 2], [3, 4]], np.float32) * 10
    transform = Affine(0.001, 0, lon, 0, -0.001, lat)
    agbd_map = _map(tmp_path / "cci.tif", values, "EPSG:4326", transform)
    labels = labels_frame([lon + 0.0015, lon + 0.001], [lat - 0.0005, lat - 0.001], [0, 0], 1.0,
                          [12.5, 12.5])  # fmt: skip
    means = footprint_means_on_map(agbd_map, labels)
    assert means[0] == pytest.approx(20.0, abs=1e-6)  # inside pixel (0, 1)
    assert means[1] == pytest.approx(25.0, abs=0.5)  # on the four pixels' common corner


def test_scores_are_the_rmse_bias_and_r2_of_the_footprint_means() -> None:
    agbd, predicted = np.array([10.0, 20.0, 30.0, 40.0]), np.array([12.0, 18.0, 33.0, np.nan])
    scores = score(agbd, predicted)
    assert (scores.n, scores.missing) == (3, 1)
    assert scores.rmse == pytest.approx(math.sqrt((4 + 4 + 9) / 3))
    assert scores.bias == pytest.approx((2 - 2 + 3) / 3)
    assert scores.r2 == pytest.approx(1 - 17 / 200)


def test_evaluate_scores_a_region_vrt_against_labels_and_writes_each_point(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "tiles").mkdir()
    tile = _map(tmp_path / "tiles" / "t.tif")
    vrt = tmp_path / "agbm.vrt"
    grid = Affine(10, 0, X0, 0, -10, Y0)
    parts = [MosaicPart(tile, 0, 0, 4, 4)]
    write_mosaic_vrt(vrt, parts, (4, 4), UTM, grid, 1, "float32", float("nan"), ["agbm"])
    labels = tmp_path / "labels.gpkg"
    write_labels(_labels([(X0 + 15, Y0 - 25), (X0 + 35, Y0 - 35)], [2, 2], [10, 12]), labels)
    per_point = tmp_path / "points.csv"
    args = ["evaluate", "--labels", str(labels), "--map", str(vrt), "--per-point", str(per_point)]
    assert main(args) == 0
    printed = capsys.readouterr().out
    # predicted 9 and 15 against 10 and 12: errors -1 and 3
    rows = dict(line.rsplit(None, 1) for line in printed.strip().splitlines())
    rows = {name.strip(): float(value) for name, value in rows.items()}
    assert rows["labels scored (footprint means)"] == 2
    assert rows["RMSE (t/ha)"] == pytest.approx(math.sqrt(5), abs=1e-3)
    assert rows["bias, map - label (t/ha)"] == pytest.approx(1.0, abs=1e-3)
    table = pd.read_csv(per_point)
    assert list(table["agbd"]) == [10, 12] and list(table["predicted"]) == [9, 15]
    with rasterio.open(vrt) as src:
        assert src.read(1)[2, 1] == 9
    assert main(["evaluate", "--labels", str(labels)]) == 2  # no --map
    assert "give either --pred DIR --truth ROOT, or --labels FILE --map MAP" in (
        capsys.readouterr().err
    )


def test_a_label_without_a_value_is_skipped_and_counted_not_every_score_nan(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """One NaN label turned every `evaluate --labels` score into NaN."""
    agbd, predicted = np.array([10.0, np.nan, 30.0, 40.0]), np.array([12.0, 18.0, 33.0, np.nan])
    scores = score(agbd, predicted)
    assert (scores.n, scores.missing, scores.unlabelled) == (2, 1, 1)
    assert scores.rmse == pytest.approx(math.sqrt((4 + 9) / 2))
    tile = _map(tmp_path / "m.tif")
    labels = tmp_path / "labels.gpkg"
    write_labels(_labels([(X0 + 15, Y0 - 25), (X0 + 35, Y0 - 35)], [2, 2], [10, np.nan]), labels)
    assert main(["evaluate", "--labels", str(labels), "--map", str(tile)]) == 0
    rows = dict(line.rsplit(None, 1) for line in capsys.readouterr().out.strip().splitlines())
    rows = {name.strip(): float(value) for name, value in rows.items()}
    assert rows["labels scored (footprint means)"] == 1
    assert rows["labels without a value (skipped)"] == 1
    assert rows["RMSE (t/ha)"] == pytest.approx(1.0, abs=1e-3)  # 9 against 10


def test_labels_of_another_place_are_refused_not_scored_nan(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Labels that all fall off the map printed NaN for every score, with exit 0."""
    tile, labels = _map(tmp_path / "m.tif"), tmp_path / "labels.gpkg"
    far = [(X0 - 5000, Y0), (X0 + 5, Y0 - 5)]  # 5 km west; on the pixel without data
    write_labels(_labels(far, [2, 2], [10, 20]), labels)
    assert main(["evaluate", "--labels", str(labels), "--map", str(tile)]) == 2
    err = capsys.readouterr().err
    assert f"{tile}: none of the 2 labels of {labels} falls on the map's data" in err


def test_a_truncated_map_is_named_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """It said "Read failed. See previous exception for details."."""
    whole = _map(tmp_path / "agbm.tif", np.ones((64, 64), np.float32))
    truncated = tmp_path / "truncated.tif"
    truncated.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    labels = tmp_path / "labels.gpkg"
    write_labels(_labels([(X0 + 15, Y0 - 25), (X0 + 335, Y0 - 335)], [2, 2], [10, 12]), labels)
    assert main(["evaluate", "--labels", str(labels), "--map", str(truncated)]) == 2
    err = capsys.readouterr().err
    assert f"error: {truncated}: unreadable or truncated map (" in err
    assert err.count("\n") == 1 and "previous exception" not in err
