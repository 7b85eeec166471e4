"""`agbm chips` from a static catalog with the labels in place, then training from them."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rasterio
from pyproj import Transformer

from agbm.cli import main
from agbm.labels.frame import labels_frame, write_labels
from agbm.training import TrainConfig, train
from agbm.training.history import read_metrics
from bench.catalog import CRS, X0, Y0, S1Item, S2Item, build

D = dt.date
#: Labels (x, y from the catalog's corner, m): three on its first square, two on a second
#: square 3.2 km east, one chip each.
POINTS = [(100, -100), (300, -450), (520, -300), (3300, -200), (3500, -500)]


@pytest.fixture(scope="module")
def chips(tmp_path_factory: pytest.TempPathFactory, scheduler: str) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("chips")
    s1 = [S1Item(D(2021, 7, 2), "ascending", 0.1, 0.01, x_shift=x) for x in (0, 3200)]
    s2 = [S2Item(D(2021, 7, 20), 3000, 4, x_shift=x, gradient=True) for x in (0, 3200)]
    stac = build(root / "stac", s1, s2)
    to_lonlat = Transformer.from_crs(CRS, "EPSG:4326", always_xy=True)
    lon, lat = to_lonlat.transform([X0 + x for x, _ in POINTS], [Y0 + y for _, y in POINTS])
    labels = write_labels(
        labels_frame(lon, lat, [50, 60, 70, 80, 90], 8.0, 12.5, None, "test"),
        root / "labels.gpkg",
    )
    out = root / "chips"
    args = ["chips", "--labels", str(labels), "--year", "2021", "--catalog", str(stac)]
    assert main([*args, "--scheduler", scheduler, "--out", str(out)]) == 0
    return out, labels


def test_chips_are_made_where_the_labels_are_in_the_layout_with_their_labels(
    chips: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out, labels = chips
    tables = sorted((out / "train_labels").glob("*_labels.csv"))
    assert len(tables) == 2  # five labels, clustered on two chips
    frames = [pd.read_csv(t) for t in tables]
    assert sorted(len(f) for f in frames) == [2, 3]
    for table, frame in zip(tables, frames, strict=True):
        chip = table.name.removesuffix("_labels.csv")
        assert chip.isalnum()
        with rasterio.open(out / "train_features" / f"{chip}_S2_10.tif") as src:  # July
            assert (src.count, src.shape) == (11, (256, 256))
            rows, cols = frame["row"].to_numpy(), frame["col"].to_numpy()
            xs, ys = src.transform @ (cols, rows)  # the labels' own place, back on the map
        lon, lat = Transformer.from_crs(src.crs, "EPSG:4326", always_xy=True).transform(xs, ys)
        np.testing.assert_allclose(lon, frame["lon"], atol=1e-7)
        np.testing.assert_allclose(lat, frame["lat"], atol=1e-7)
        assert (frame["radius_px"] == 1.25).all()
        assert not (out / "train_features" / f"{chip}_S2_00.tif").exists()  # no September data
    other = shutil.copytree(out.parent / "stac", tmp_path / "stac")
    args = ["chips", "--labels", str(labels), "--year", "2021", "--catalog", str(other)]
    assert main([*args, "--out", str(out)]) == 2  # another catalog: refused
    assert "was made with other settings" in capsys.readouterr().err


def test_a_garbage_scheduler_file_is_one_line_naming_it(
    chips: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out, labels = chips
    garbage = tmp_path / "scheduler.json"
    garbage.write_text("garbage")
    args = [
        "chips",
        "--labels",
        str(labels),
        "--year",
        "2021",
        "--catalog",
        str(out.parent / "stac"),
    ]
    assert main([*args, "--scheduler", str(garbage), "--out", str(tmp_path / "out")]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert f"--scheduler {garbage}: not a Dask scheduler file (Expecting value" in line
    assert not (tmp_path / "out").exists()  # checked before the folder is claimed


def test_training_learns_from_the_chips_labels(chips: tuple[Path, Path], tmp_path: Path) -> None:
    out, _ = chips
    config = TrainConfig(
        data=str(out), out=str(tmp_path), backbone="test_efficientnet", pretrained="none",
        recipe="agbm", epochs=2, batch_size=1, decoder_channels=[16] * 5, folds=2, workers=0,
    )  # fmt: skip
    train(config)
    rows = read_metrics(tmp_path / "metrics.csv")
    assert len(rows) == 2 and all(np.isfinite(float(r["val_rmse"])) for r in rows)
    assert float(rows[1]["train_loss"]) < float(rows[0]["train_loss"])  # the footprint loss


def test_many_labels_are_placed_on_the_lattice_as_on_each_chips_own_grid() -> None:
    """10,000 labels over ~750 chips: each lands on its pixel's chip of the lattice at its
    pixel position, and placing them on the chips' own grids (`agbm train --labels`, by a
    spatial index) gives the same chips, positions and order."""
    from pyproj import CRS as ProjCRS

    from agbm.labels.chips import place_labels
    from agbm.region.chips import CHIP, chips_with_labels, labels_grid
    from agbm.region.tiles import tile_transform

    rng = np.random.default_rng(3)
    x, y = X0 + rng.uniform(0, 70_000, 10_000), Y0 - rng.uniform(0, 70_000, 10_000)
    lon, lat = Transformer.from_crs(CRS, "EPSG:4326", always_xy=True).transform(x, y)
    labels = labels_frame(lon, lat, np.arange(10_000.0), 8.0, 12.5, None, "test")
    grid = labels_grid(labels, CRS)
    chips = chips_with_labels(grid, labels, Path("labels.gpkg"))
    assert sum(len(frame) for _, frame in chips.values()) == 10_000 and len(chips) > 700
    cols, rows = ~grid.transform @ (x, y)
    for tile, frame in chips.values():
        label = frame["agbd"].to_numpy().astype(int)  # the label's number
        assert (rows[label] // CHIP * CHIP == tile.top).all()
        np.testing.assert_allclose(frame["row"] + tile.top, rows[label], atol=1e-6)
        np.testing.assert_allclose(frame["col"] + tile.left, cols[label], atol=1e-6)
    crs = ProjCRS.from_user_input(grid.crs)
    grids = {c: (crs, tile_transform(grid, t), (t.height, t.width)) for c, (t, _) in chips.items()}
    placed = place_labels(labels, grids, "labels.gpkg")
    assert placed.keys() == chips.keys()
    for cid, frame in placed.items():
        pd.testing.assert_frame_equal(frame.reset_index(drop=True),
                                      chips[cid][1].reset_index(drop=True), atol=1e-6)  # fmt: skip
