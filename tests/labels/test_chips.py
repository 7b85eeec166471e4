"""Labels placed on georeferenced chips by their grids (`agbm train --labels`)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pyproj import Transformer

from agbm.data.cache import prepare
from agbm.data.layout import list_chips
from agbm.data.synth import generate
from agbm.errors import DataError
from agbm.labels.chips import chip_grids, place_labels
from agbm.labels.frame import labels_frame, write_labels
from agbm.training import TrainConfig
from agbm.training.loaders import chip_labels


def test_labels_are_placed_on_their_chip_and_one_outside_every_chip_is_refused(
    tmp_path: Path,
) -> None:
    root = tmp_path / "data"
    generate(root, 2, 0, 0, 32)
    chips = list_chips(root, "train")
    crs, transform, shape = chip_grids(root, chips, "train")[chips[1]]
    x, y = transform @ (10.5, 20.25)  # column 10.5, row 20.25 of the second chip
    to_lonlat = Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
    lon, lat = to_lonlat.transform([x, x + 50_000], [y, y])  # the second: 50 km away
    labels = write_labels(labels_frame(lon[:1], lat[:1], [42.0], 5.0, 12.5), tmp_path / "l.gpkg")
    config = TrainConfig(data=str(root), out=str(tmp_path / "run"), labels=str(labels))
    placed = chip_labels(config, chips)
    assert list(placed) == [chips[1]]
    row, col, radius, agbd, se = placed[chips[1]][0]
    assert (row, col, radius, agbd, se) == pytest.approx((20.25, 10.5, 1.25, 42.0, 5.0), abs=1e-4)
    outside = labels_frame(lon, lat, [42.0, 7.0], 5.0, 12.5)
    grids = chip_grids(root, chips, "train")
    with pytest.raises(DataError, match=r"far\.gpkg: label 1 at .* lies outside every chip"):
        place_labels(outside, grids, tmp_path / "far.gpkg")


def test_labels_are_placed_on_a_prepared_cache_as_on_its_raw_chips(tmp_path: Path) -> None:
    """`train --labels` on an `agbm prepare` cache failed: the grids were read from GeoTIFFs
    that a cache does not hold ("no GeoTIFF in .../train_features")."""
    root, cache = tmp_path / "data", tmp_path / "cache"
    generate(root, 2, 0, 0, 32)
    chips = prepare(root, cache, "train")
    raw, cached = chip_grids(root, chips, "train"), chip_grids(cache, chips, "train")
    assert cached == raw and cached[chips[0]][2] == (32, 32)
    crs, transform, _ = raw[chips[0]]
    lon, lat = Transformer.from_crs(crs, "EPSG:4326", always_xy=True).transform(
        *(transform @ (3.5, 7.25))
    )
    labels = write_labels(labels_frame([lon], [lat], [42.0], 5.0, 12.5), tmp_path / "l.gpkg")
    placed = chip_labels(TrainConfig(data=str(cache), out="r", labels=str(labels)), chips)
    assert placed[chips[0]][0, :2].tolist() == pytest.approx([7.25, 3.5], abs=1e-4)


def test_validation_holds_out_whole_chips_with_all_their_labels(tmp_path: Path) -> None:
    import torch

    from agbm.runtime import Runtime
    from agbm.training import resolve
    from agbm.training.loaders import TrainingData

    root = tmp_path / "data"
    generate(root, 6, 0, 0, 32)
    lon, lat = [], []
    for crs, transform, _ in chip_grids(root, list_chips(root, "train"), "train").values():
        to_lonlat = Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
        for r, c in ((5.5, 5.5), (20.5, 9.5), (28.5, 30.5)):  # three labels on every chip
            point = to_lonlat.transform(*(transform @ (c, r)))
            lon.append(point[0])
            lat.append(point[1])
    labels = write_labels(labels_frame(lon, lat, range(len(lon)), 5.0, 12.5), tmp_path / "l.gpkg")
    config = TrainConfig(data=str(root), out=str(tmp_path / "run"), labels=str(labels),
                         folds=3, batch_size=2, workers=0)  # fmt: skip
    data = TrainingData.build(resolve(config), Runtime(0, 1, torch.device("cpu")))
    train_chips, val_chips = set(data.train_set.chip_ids), set(data.val_set.chip_ids)
    assert len(val_chips) == 2 and not train_chips & val_chips
    for dataset in (data.train_set, data.val_set):
        for index in range(len(dataset)):
            assert int(dataset[index]["labels"][:, 3].isfinite().sum()) == 3  # all on its chip


def test_chips_and_train_refuse_a_labels_file_without_labels_or_with_bad_values(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """They went through: `agbm chips` ended in a traceback, `train --labels` trained on -80."""
    from agbm.cli import main

    empty = write_labels(labels_frame([], [], []), tmp_path / "empty.gpkg")
    north = write_labels(labels_frame([27.0], [95.0], [42.0]), tmp_path / "north.gpkg")
    for labels, message in ((empty, "empty.gpkg: holds no labels"),
                            (north, "north.gpkg: label 0: lat 95 is not a latitude")):  # fmt: skip
        out = tmp_path / "chips"
        assert main(["chips", "--labels", str(labels), "--year", "2021", "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, err
        assert not out.exists()
    root = tmp_path / "data"
    generate(root, 2, 0, 0, 32)
    crs, transform, _ = chip_grids(root, list_chips(root, "train"), "train")[
        list_chips(root, "train")[0]
    ]
    lon, lat = Transformer.from_crs(crs, "EPSG:4326", always_xy=True).transform(
        *(transform @ (3.5, 7.25))
    )
    negative = write_labels(labels_frame([lon], [lat], [-80.0]), tmp_path / "negative.gpkg")
    run = tmp_path / "run"
    args = ["train", "--data", str(root), "--out", str(run), "--labels", str(negative)]
    assert main([*args, "--epochs", "1", "--workers", "0", "--pretrained", "none"]) == 2
    err = capsys.readouterr().err
    assert "negative.gpkg: label 0: agbd -80 is not a biomass, t/ha >= 0" in err, err
    assert len(err.strip().splitlines()) == 1
