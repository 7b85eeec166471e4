"""The data layer: layout, normalisation, present mask, torch Dataset, and every bad input."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
from torch.utils.data import default_collate

from agbm.cli import main
from agbm.data import (
    AGBM_CONVENTIONS,
    FEATURES_METADATA_NAMES,
    S2_MAX,
    ChipDataset,
    features_path,
    list_chips,
    model_input,
    read_chip,
    read_target,
    splits_present,
    target_path,
)
from agbm.errors import DataError
from tests.helpers import write_tif


def s1_image(value: float = -10.0, size: int = 4) -> np.ndarray:
    return np.full((4, size, size), value, dtype=np.float32)


def s2_image(value: int = 1000, size: int = 4) -> np.ndarray:
    return np.full((11, size, size), value, dtype=np.uint16)


@pytest.fixture
def tiny_root(tmp_path: Path) -> Path:
    """A hand-made chip 'abcd0123': S1 + S2 in month 0, S2 only in month 1, nothing else."""
    write_tif(features_path(tmp_path, "abcd0123", "S1", 0, "train"), s1_image())
    write_tif(features_path(tmp_path, "abcd0123", "S2", 0, "train"), s2_image())
    write_tif(features_path(tmp_path, "abcd0123", "S2", 1, "train"), s2_image())
    write_tif(target_path(tmp_path, "abcd0123", "train"), np.ones((1, 4, 4), np.float32))
    return tmp_path


def test_synthetic_chip_round_trips_with_documented_shapes(synth_root: Path) -> None:
    sample = ChipDataset(synth_root)[0]
    assert sample["image"].shape == (12, 15, 64, 64) and sample["image"].dtype == torch.float32
    assert sample["present"].shape == (12,) and sample["present"].dtype == torch.bool
    assert sample["target"].shape == (1, 64, 64) and sample["target"].dtype == torch.float32
    assert sample["chip_id"] == list_chips(synth_root)[0]
    assert 0.0 <= sample["image"].min() and sample["image"].max() <= 1.0
    np.testing.assert_array_equal(
        sample["target"][0].numpy(), read_target(synth_root, sample["chip_id"])
    )


def test_synthetic_files_come_back_normalised_as_computed_by_hand(synth_root: Path) -> None:
    """Every synthetic file, read with rasterio and normalised here with NumPy, equals what
    `read_chip` gives (absent months zero, no data zero)."""
    chip = list_chips(synth_root)[0]
    image, present = read_chip(synth_root, chip)
    s1_min = np.array([-25, -62, -25, -60], np.float64)[:, None, None]
    s1_max = np.array([29, 28, 30, 22], np.float64)[:, None, None]
    cases = set()  # the chip must exercise no data of both satellites and an absent file
    for month in range(12):
        expected = np.zeros((15, 64, 64))
        for satellite in ("S1", "S2"):
            path = features_path(synth_root, chip, satellite, month, "train")
            if not path.is_file():
                cases.add("absent")
                continue
            with rasterio.open(path) as src:
                raw = src.read().astype(np.float64)
            if (raw == -9999).any() or (raw[-1] == 255).any():
                cases.add(f"{satellite} no data")
            if satellite == "S1":
                expected[:4] = np.where(
                    raw == -9999, 0, np.clip((raw - s1_min) / (s1_max - s1_min), 0, 1)
                )
            else:
                norm = np.clip(raw / S2_MAX.astype(np.float64)[:, None, None], 0, 1)
                expected[4:] = np.where(raw[10] == 255, 0, norm)
        np.testing.assert_allclose(
            image[month], expected, rtol=0, atol=1e-6, err_msg=f"month {month}"
        )
        assert present[month] == any(
            features_path(synth_root, chip, s, month, "train").is_file() for s in ("S1", "S2")
        )
    assert cases == {"absent", "S1 no data", "S2 no data"}


def test_raw_samples_normalised_on_the_device_equal_the_normalised_samples(
    synth_root: Path,
) -> None:
    """What train and predict load (raw months, normalised by `model_input`) is bit for bit
    what `ChipDataset` and `read_chip` give."""
    chips = list_chips(synth_root)[:3]
    batch = default_collate(list(ChipDataset(synth_root, chip_ids=chips, raw=True)))
    assert batch["s2"].dtype == torch.uint16  # half the bytes of the normalised bands
    image, present = model_input(batch, torch.device("cpu"), AGBM_CONVENTIONS)
    for i, sample in enumerate(ChipDataset(synth_root, chip_ids=chips)):
        assert torch.equal(image[i], sample["image"]) and torch.equal(present[i], sample["present"])


def test_s2_values_above_32767_are_read_as_unsigned(tmp_path: Path) -> None:
    write_tif(features_path(tmp_path, "00000001", "S2", 0, "train"), s2_image(40000))
    write_tif(target_path(tmp_path, "00000001", "train"), np.ones((1, 4, 4), np.float32))
    batch = default_collate([ChipDataset(tmp_path, raw=True)[0]])
    image, _ = model_input(batch, torch.device("cpu"), AGBM_CONVENTIONS)
    expected = np.minimum(np.float32(40000) / S2_MAX[:-1], 1)  # clipped where max < 40000
    np.testing.assert_array_equal(image[0, 0, 4:14, 0, 0].numpy(), expected)


def test_present_mask_follows_files_on_disk(synth_root: Path) -> None:
    for chip in list_chips(synth_root):
        image, present = read_chip(synth_root, chip)
        for month in range(12):
            has_file = any(
                features_path(synth_root, chip, sat, month, "train").is_file()
                for sat in ("S1", "S2")
            )
            assert present[month] == has_file
            if not has_file:
                assert not image[month].any()


def test_normalisation_matches_hand_computed_values(tmp_path: Path) -> None:
    s1 = np.empty((4, 2, 2), np.float32)
    s1[:, 0, 0] = [-25.0, -62.0, -25.0, -60.0]  # the minima -> 0
    s1[:, 0, 1] = [29.0, 28.0, 30.0, 22.0]  # the maxima -> 1
    s1[:, 1, 0] = [2.0, -17.0, 2.5, -19.0]  # the midpoints -> 0.5
    s1[:, 1, 1] = [-9999.0, 100.0, -10.0, -80.0]  # no data -> 0; out of range -> clipped
    s2 = np.zeros((11, 2, 2), np.uint16)
    s2[:, 0, 0] = [9808, 9200, 8768, 0, 16928, 0, 0, 0, 0, 15226, 51]
    s2[:, 1, 1] = [5000] * 10 + [255]  # cloud 255 = no data -> whole pixel 0
    write_tif(features_path(tmp_path, "00000001", "S1", 3, "train"), s1, nodata=-9999)
    write_tif(features_path(tmp_path, "00000001", "S2", 3, "train"), s2)
    image, present = read_chip(tmp_path, "00000001")
    month = image[3]
    np.testing.assert_allclose(month[:4, 0, 0], 0.0)
    np.testing.assert_allclose(month[:4, 0, 1], 1.0)
    np.testing.assert_allclose(month[:4, 1, 0], 0.5, atol=1e-6)
    np.testing.assert_allclose(month[:4, 1, 1], [0.0, 1.0, 15 / 55, 0.0], atol=1e-6)
    np.testing.assert_allclose(
        month[4:, 0, 0], [0.5, 0.5, 0.5, 0, 1, 0, 0, 0, 0, 1, 0.2], atol=1e-6
    )
    assert not month[4:, 1, 1].any()
    assert present.tolist() == [m == 3 for m in range(12)]


def test_month_with_one_satellite_is_present_with_other_bands_zero(tiny_root: Path) -> None:
    image, present = read_chip(tiny_root, "abcd0123")
    assert present.tolist() == [True, True] + [False] * 10
    assert image[0, :4].any() and image[0, 4:].any()
    assert not image[1, :4].any() and image[1, 4:].any()
    assert not image[2:].any()


def test_chip_list_from_metadata_equals_chip_list_from_file_names(scratch_root: Path) -> None:
    from_csv = list_chips(scratch_root, "test")
    (scratch_root / FEATURES_METADATA_NAMES[0]).unlink()
    assert list_chips(scratch_root, "test") == from_csv and len(from_csv) == 2


@pytest.mark.parametrize(
    ("name", "encoding"),
    [
        ("features_metadata.csv", "utf-8"),
        ("biomassters_features_metadata.csv", "utf-8"),  # TorchGeo's fixture
        ("features_metadata_FzP19JI.csv", "utf-8"),  # the winner's copy
        ("features_metadata.csv", "utf-8-sig"),  # saved by a spreadsheet, with a BOM
    ],
)
def test_features_metadata_csv_is_found_by_any_published_name(
    tiny_root: Path, name: str, encoding: str
) -> None:
    """TorchGeo's name was not recognised, and a BOM made the file lack `chip_id`."""
    with (tiny_root / name).open("w", newline="", encoding=encoding) as f:
        writer = csv.writer(f)
        writer.writerow(["filename", "chip_id", "split"])
        writer.writerow(["ffff0000_S2_00.tif", "ffff0000", "train"])
        writer.writerow(["abcd0123_S2_00.tif", "abcd0123", "train"])
        writer.writerow(["eeee0000_S2_00.tif", "eeee0000", "test"])
    assert list_chips(tiny_root) == ["abcd0123", "ffff0000"]
    with pytest.raises(DataError, match="ffff0000_S2_00.tif|no S1 or S2 file"):
        ChipDataset(tiny_root)[1]


def test_a_metadata_csv_that_is_not_utf8_is_named(tiny_root: Path) -> None:
    path = tiny_root / "features_metadata.csv"
    path.write_bytes("chip_id,split\nabcd0123,tr\xe4in\n".encode("latin-1"))
    with pytest.raises(DataError, match=f"{path}: not a UTF-8 CSV file"):
        list_chips(tiny_root)


def test_truncated_tif_raises_data_error_naming_it(scratch_root: Path) -> None:
    chip = list_chips(scratch_root)[0]
    path = next(
        features_path(scratch_root, chip, "S2", m, "train")
        for m in range(12)
        if features_path(scratch_root, chip, "S2", m, "train").is_file()
    )
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match=path.name):
        ChipDataset(scratch_root)[0]


@pytest.mark.parametrize(
    ("satellite", "array", "fault"),
    [
        ("S1", np.zeros((3, 4, 4), np.float32), "3 band"),
        ("S2", np.zeros((10, 4, 4), np.uint16), "10 band"),
        ("S1", np.zeros((4, 8, 8), np.float32), "size"),
        ("S1", np.full((4, 4, 4), np.nan, np.float32), "NaN"),
        ("S1", np.full((4, 4, 4), np.inf, np.float32), "NaN or infinite"),
        ("S2", np.full((11, 4, 4), 0.5, np.float32), "float32 values cannot all be held as"),
        ("S2", np.full((11, 4, 4), 70000, np.int32), "int32 values cannot all be held as"),
        ("S1", np.full((4, 4, 4), 2**30, np.int32), "int32 values cannot all be held as"),
    ],
)
def test_bad_feature_file_raises_data_error(
    tiny_root: Path, satellite: str, array: np.ndarray, fault: str
) -> None:
    path = features_path(tiny_root, "abcd0123", satellite, 5, "train")
    write_tif(path, array)
    with pytest.raises(DataError, match=rf"{path.name}.*{fault}"):
        read_chip(tiny_root, "abcd0123")


def test_features_stored_in_other_types_are_read_as_the_values_they_hold(
    tiny_root: Path,
) -> None:
    """TorchGeo's fixture stores S1 as uint16; some tools write S2 as float. Both used to be
    refused for their type alone."""
    expected, _ = read_chip(tiny_root, "abcd0123")
    s1 = features_path(tiny_root, "abcd0123", "S1", 0, "train")
    s2 = features_path(tiny_root, "abcd0123", "S2", 0, "train")
    write_tif(s2, rasterio.open(s2).read().astype(np.float64))
    image, _ = read_chip(tiny_root, "abcd0123")
    np.testing.assert_array_equal(image, expected)
    write_tif(s1, np.full((4, 4, 4), 7, np.uint16))
    image, _ = read_chip(tiny_root, "abcd0123")
    np.testing.assert_allclose(image[0, 0], (7 + 25) / 54)  # VV_asc: (x - min) / (max - min)


def test_one_dtype_policy_for_chips_and_scenes(tiny_root: Path) -> None:
    """Chips refused negative S2 reflectance that scenes clipped, and scenes truncated the
    fractions that chips refused: one policy now, clip below zero, refuse the rest."""
    from agbm.data.bands import S2
    from agbm.data.geotiff import as_sensor_dtype

    path = Path("x.tif")
    signed = np.array([[-3, 0, 12000]], dtype=np.int16)
    assert as_sensor_dtype(signed, S2, path).tolist() == [[0, 0, 12000]]
    assert as_sensor_dtype(np.array([[-2.0, 5.0]]), S2, path).dtype == np.uint16
    with pytest.raises(DataError, match="x.tif: its float64 values cannot all be held as S2"):
        as_sensor_dtype(np.array([[0.25, 0.5]]), S2, path)  # reflectance 0..1, not x 10,000
    s2 = features_path(tiny_root, "abcd0123", "S2", 0, "train")
    values = rasterio.open(s2).read().astype(np.int32)
    values[0, 0, 0] = -40
    write_tif(s2, values)
    image, _ = read_chip(tiny_root, "abcd0123")
    assert image[0, 4, 0, 0] == 0.0  # B2's -40 read as 0


def test_a_file_of_another_size_is_named_not_its_neighbour(tiny_root: Path) -> None:
    """One S1 file of 5x4 among 4x4 files: the S2 file read after it used to be blamed."""
    path = features_path(tiny_root, "abcd0123", "S1", 0, "train")
    write_tif(path, np.zeros((4, 5, 4), np.float32))
    with pytest.raises(DataError, match=rf"{path.name}: size \(5, 4\) differs from the \(4, 4\)"):
        read_chip(tiny_root, "abcd0123")


def test_garbage_file_raises_data_error(tiny_root: Path) -> None:
    path = features_path(tiny_root, "abcd0123", "S1", 7, "train")
    path.write_bytes(b"not a tiff at all")
    with pytest.raises(DataError, match=path.name):
        read_chip(tiny_root, "abcd0123")


def test_missing_target_raises_data_error(tiny_root: Path) -> None:
    target_path(tiny_root, "abcd0123", "train").unlink()
    with pytest.raises(DataError, match="abcd0123_agbm.tif.*missing"):
        ChipDataset(tiny_root)[0]


@pytest.mark.parametrize(
    ("write", "fault"),
    [
        (lambda p: write_tif(p, np.ones((1, 8, 8), np.float32)), "size"),
        (lambda p: write_tif(p, np.ones((2, 4, 4), np.float32)), "2 band"),
        (lambda p: write_tif(p, np.full((1, 4, 4), np.nan, np.float32)), "NaN"),
        (lambda p: p.write_bytes(p.read_bytes()[:200]), "unreadable or truncated"),
    ],
)
def test_bad_target_raises_data_error(tiny_root: Path, write, fault: str) -> None:
    write(target_path(tiny_root, "abcd0123", "train"))
    with pytest.raises(DataError, match=f"abcd0123_agbm.tif.*{fault}"):
        ChipDataset(tiny_root)[0]


def test_chip_without_any_month_raises_data_error(tiny_root: Path) -> None:
    with pytest.raises(DataError, match="no S1 or S2 file for any month"):
        read_chip(tiny_root, "0badc0de")


def test_an_empty_split_directory_is_not_a_split(tiny_root: Path, capsys) -> None:
    (tiny_root / "test_features").mkdir()
    assert splits_present(tiny_root) == ["train"]
    assert main(["info", "--data", str(tiny_root)]) == 0
    assert capsys.readouterr().out.startswith("train  chips      1")


def test_empty_or_wrong_root_raises_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        ChipDataset(tmp_path / "nowhere")
    with pytest.raises(DataError, match="no train_features/"):
        ChipDataset(tmp_path)
    (tmp_path / "train_features").mkdir()
    with pytest.raises(DataError, match="no chips found"):
        ChipDataset(tmp_path)
    with pytest.raises(DataError, match="unknown split"):
        list_chips(tmp_path, "val")


def test_test_split_without_targets_gives_no_target(tiny_root: Path) -> None:
    src = features_path(tiny_root, "abcd0123", "S2", 0, "train")
    dst = features_path(tiny_root, "abcd0123", "S2", 0, "test")
    dst.parent.mkdir()
    dst.write_bytes(src.read_bytes())
    sample = ChipDataset(tiny_root, split="test")[0]
    assert "target" not in sample and sample["present"].sum() == 1


def test_transform_is_applied(synth_root: Path) -> None:
    def flip(sample: dict) -> dict:
        return {**sample, "image": sample["image"].flip(-1)}

    plain = ChipDataset(synth_root, chip_ids=list_chips(synth_root)[:1])[0]
    flipped = ChipDataset(synth_root, chip_ids=[plain["chip_id"]], transform=flip)[0]
    torch.testing.assert_close(flipped["image"], plain["image"].flip(-1))


def test_a_chip_of_another_size_is_named_when_loaded(tiny_root: Path) -> None:
    """It used to pass and crash training with `stack expects each tensor to be equal size`."""
    write_tif(features_path(tiny_root, "ffff0000", "S1", 0, "train"), np.zeros((4, 8, 8), "f4"))
    write_tif(target_path(tiny_root, "ffff0000", "train"), np.ones((1, 8, 8), np.float32))
    dataset = ChipDataset(tiny_root)
    assert dataset.chip_ids == ["abcd0123", "ffff0000"]
    dataset[0]
    with pytest.raises(DataError, match=r"chip ffff0000: size \(8, 8\) differs from the \(4, 4\)"):
        dataset[1]
