"""`agbm synth`: the real layout and metadata, realistic values, learnable target, determinism."""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path

import numpy as np
import pytest
import rasterio

from agbm.cli import main
from agbm.data import FEATURES_METADATA_NAMES, MONTH_NAMES, list_chips, read_target
from agbm.data.layout import AGBM_METADATA_NAME, target_path
from agbm.data.synth import generate


def digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path: Path) -> None:
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        generate(tmp_path / name, chips=2, test_chips=1, seed=seed, size=32)
    a, b, c = (digest(tmp_path / n) for n in "abc")
    assert a == b
    assert a != c


def test_layout_names_and_metadata_are_the_real_ones(synth_root: Path) -> None:
    train, test = list_chips(synth_root, "train"), list_chips(synth_root, "test")
    assert len(train) == 6 and len(test) == 2 and not set(train) & set(test)
    assert all(len(c) == 8 and int(c, 16) >= 0 for c in train + test)
    with (synth_root / FEATURES_METADATA_NAMES[0]).open() as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == [
        "filename",
        "chip_id",
        "satellite",
        "split",
        "month",
        "size",
        "cksum",
        "s3path_us",
        "s3path_eu",
        "s3path_as",
        "corresponding_agbm",
    ]
    for row in rows:
        path = synth_root / f"{row['split']}_features" / row["filename"]
        assert path.stat().st_size == int(row["size"])
        month = MONTH_NAMES.index(row["month"])
        assert row["filename"] == f"{row['chip_id']}_{row['satellite']}_{month:02d}.tif"
        assert row["corresponding_agbm"] == f"{row['chip_id']}_agbm.tif"
    with (synth_root / AGBM_METADATA_NAME).open() as f:
        assert sorted(r["chip_id"] for r in csv.DictReader(f)) == train


def test_files_have_real_dtypes_bands_ranges_and_georeference(synth_root: Path) -> None:
    chip = list_chips(synth_root)[0]
    folder = synth_root / "train_features"
    s1_files = sorted(folder.glob(f"{chip}_S1_*.tif"))
    s2_files = sorted(folder.glob(f"{chip}_S2_*.tif"))
    with rasterio.open(s1_files[0]) as src:
        s1 = src.read()
        assert src.crs.to_epsg() == 3067 and src.transform.a == 10.0 and src.nodata == -9999
    valid = s1[s1 != -9999]
    assert s1.dtype == np.float32 and s1.shape[0] == 4
    assert -32 < np.percentile(valid, 1) and np.percentile(valid, 99) < 2
    s2 = np.stack([rasterio.open(p).read() for p in s2_files])
    assert s2.dtype == np.uint16 and s2.shape[1] == 11
    assert s2[:, :10].max() <= 10000 and set(np.unique(s2[:, 10])) <= set(range(101)) | {255}


def test_dataset_has_missing_months_clouds_and_a_realistic_target(tmp_path: Path) -> None:
    generate(tmp_path, chips=12, test_chips=0, seed=1, size=64)
    names = {p.name for p in (tmp_path / "train_features").iterdir()}
    chips = list_chips(tmp_path)
    s2 = sum(f"{c}_S2_{m:02d}.tif" in names for c in chips for m in range(12)) / (12 * 12)
    s1 = sum(f"{c}_S1_{m:02d}.tif" in names for c in chips for m in range(12)) / (12 * 12)
    assert 0.7 <= s2 <= 0.92 and 0.9 <= s1 < 1.0
    clouds = [
        rasterio.open(tmp_path / "train_features" / n).read(11).mean()
        for n in sorted(names)
        if "_S2_" in n
    ]
    assert max(clouds) > 30 and np.median(clouds) < 15
    targets = np.stack([read_target(tmp_path, c) for c in chips])
    assert 0.05 < (targets == 0).mean() < 0.6
    assert (targets > 400).any() and (targets > 400).mean() < 0.01
    assert 40 < targets[targets < 400].mean() < 200


def test_target_is_smooth_not_noise(synth_root: Path) -> None:
    target = read_target(synth_root, list_chips(synth_root)[0])
    target = np.where(target > 400, 0, target)
    step = np.abs(np.diff(target, axis=1)).mean()
    assert step < 0.1 * target.std()


def test_cli_synth_writes_a_readable_data_set(tmp_path: Path, capsys) -> None:
    assert (
        main(["synth", "--out", str(tmp_path), "--chips", "2", "--test-chips", "1", "--size", "32"])
        == 0
    )
    assert main(["info", "--data", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "train  chips      2" in out and "test   chips      1" in out


@pytest.mark.parametrize("size", [0, 48])
def test_size_must_be_a_multiple_of_32(tmp_path: Path, size: int) -> None:
    with pytest.raises(ValueError, match="multiple of 32"):
        generate(tmp_path, chips=1, test_chips=0, size=size)


def test_synth_into_a_folder_that_cannot_be_made_is_one_line(tmp_path: Path, capsys) -> None:
    """A read-only or impossible output folder gave a traceback."""
    from agbm.cli import main

    blocker = tmp_path / "file"
    blocker.write_text("")
    assert main(["synth", "--out", str(blocker / "data"), "--chips", "1", "--size", "32"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("agbm synth: error: ") and "cannot write there" in err


def test_the_next_year_is_the_same_chips_grown_cut_and_seen_again(
    synth_root: Path, tmp_path: Path, capsys
) -> None:
    """`synth --next-year-of`: the same chips on the same grids, stands a few t/ha higher,
    some chips clear-cut (truth 0 where it was forest), new imagery; deterministic."""
    from agbm.data.synth import next_year

    later = tmp_path / "2022"
    assert (
        main(["synth", "--next-year-of", str(synth_root), "--out", str(later), "--seed", "3"]) == 0
    )
    assert "one year after" in capsys.readouterr().out
    again = next_year(synth_root, tmp_path / "again", 3)
    growth, cut = [], 0
    for split in ("train", "test"):
        assert list_chips(later, split) == list_chips(synth_root, split) == sorted(again[split])
        for chip in list_chips(later, split):
            path = target_path(later, chip, split)
            assert path.read_bytes() == target_path(tmp_path / "again", chip, split).read_bytes()
            with rasterio.open(path) as b, rasterio.open(target_path(synth_root, chip, split)) as a:
                assert (b.transform, b.crs) == (a.transform, a.crs)
                change, before = b.read(1) - a.read(1), a.read(1)
            forest = (before > 50) & (before < 400)
            cut += (change[forest] < -50).mean() > 0.01  # a clear-cut or thinning this year
            growth.append(np.median(change[forest]))
    assert 1.0 < np.median(growth) < 5.0  # stands grow by a few t/ha a year
    assert 1 <= cut < len(growth)  # some chips, not all, lost their forest in places
    chip = list_chips(later)[0]
    s2 = sorted((later / "train_features").glob(f"{chip}_S2_*.tif"))[0]
    assert s2.read_bytes() != (synth_root / "train_features" / s2.name).read_bytes()


def test_the_next_year_of_a_root_that_is_not_synthetic_is_refused(tmp_path: Path, capsys) -> None:
    (tmp_path / "real" / "train_features").mkdir(parents=True)
    args = ["synth", "--next-year-of", str(tmp_path / "real"), "--out", str(tmp_path / "b")]
    assert main(args) == 2
    assert "synth.json: not the record of an agbm synth root" in capsys.readouterr().err
