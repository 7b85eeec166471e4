"""The chip cache: bit-identical to the GeoTIFFs, resumable, atomic, and usable by train/predict."""

from __future__ import annotations

import json
import logging
import shutil
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch

from agbm.cli import main
from agbm.data import S1_NODATA, S2_NODATA_CLOUD, ChipDataset, cache, features_path, list_chips
from agbm.data.cache import CacheSource, is_done, prepare
from agbm.errors import DataError
from agbm.inference import InferenceOptions, predict
from agbm.training import TrainConfig, train
from agbm.viz import plot_predictions
from tests.helpers import SMALL

TRAIN = {
    **SMALL,
    "decoder_channels": [16, 16, 16, 16, 16],
    "epochs": 1,
    "batch_size": 2,
    "folds": 2,  # 3 chips: one step of 2, then validation on 3
}
#: The month whose S1 and S2 files the data set below lacks for its first training chip.
GAP = 4


@pytest.fixture(scope="module")
def raw(tmp_path_factory: pytest.TempPathFactory, synth_root: Path) -> Path:
    """The synthetic set with one chip missing a whole month (both satellites)."""
    root = Path(shutil.copytree(synth_root, tmp_path_factory.mktemp("raw") / "data"))
    chip = list_chips(root)[0]
    for satellite in ("S1", "S2"):
        features_path(root, chip, satellite, GAP, "train").unlink(missing_ok=True)
    return root


@pytest.fixture(scope="module")
def cached(tmp_path_factory: pytest.TempPathFactory, raw: Path) -> Path:
    """`raw` prepared: train in-process, test with a worker pool."""
    out = tmp_path_factory.mktemp("cache") / "cache"
    assert prepare(raw, out, "train", workers=0) == list_chips(raw, "train")
    assert prepare(raw, out, "test", workers=2) == list_chips(raw, "test")
    return out


@pytest.fixture
def scratch_cache(cached: Path, tmp_path: Path) -> Path:
    """A private copy of the cache that a test may damage."""
    return Path(shutil.copytree(cached, tmp_path / "cache"))


def bits(tensor: torch.Tensor) -> bytes:
    """The exact bytes of a tensor: equality of these is bit-identity (-0.0 differs from 0.0)."""
    return tensor.contiguous().numpy().tobytes()


@pytest.mark.parametrize("split", ["train", "test"])
def test_cache_gives_bit_identical_samples(raw: Path, cached: Path, split: str) -> None:
    from_raw, from_cache = ChipDataset(raw, split), ChipDataset(cached, split)
    assert from_cache.chip_ids == from_raw.chip_ids
    assert from_cache.with_target == from_raw.with_target
    for a, b in zip(from_raw, from_cache, strict=True):
        assert a.keys() == b.keys() and a["chip_id"] == b["chip_id"]
        for key in ("image", "present", "target"):
            if key in a:
                assert a[key].dtype == b[key].dtype and a[key].shape == b[key].shape
                assert bits(a[key]) == bits(b[key]), (a["chip_id"], key)


def test_the_round_trip_covered_gaps_no_data_and_clouds(cached: Path) -> None:
    """The identity test above means something only if the data has every special case."""
    folder = cached / "train"
    s1 = np.concatenate([np.load(p / "s1.npy") for p in folder.iterdir()])
    s2 = np.concatenate([np.load(p / "s2.npy") for p in folder.iterdir()])
    acquired = np.stack([np.load(p / "acquired.npy") for p in folder.iterdir()])
    assert (s1 == S1_NODATA).any() and (s2[:, -1] == S2_NODATA_CLOUD).any()
    assert (s2[:, -1] > 50).any()  # cloudy pixels
    assert not acquired[:, 1].all()  # missing S2 months
    first = ChipDataset(cached, chip_ids=[sorted(p.name for p in folder.iterdir())[0]])[0]
    assert not first["present"][GAP] and not first["image"][GAP].any()


def test_second_run_converts_nothing_and_redoes_only_a_damaged_chip(
    raw: Path, scratch_cache: Path
) -> None:
    assert prepare(raw, scratch_cache, "train") == []
    chip = list_chips(raw)[2]
    (scratch_cache / "train" / chip / "s2.npy").unlink()
    assert prepare(raw, scratch_cache, "train") == [chip]
    shutil.rmtree(scratch_cache / "train" / chip)
    assert prepare(raw, scratch_cache, "train") == [chip]


def test_interrupted_chip_does_not_count_as_done(
    raw: Path, scratch_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    chip = list_chips(raw)[1]
    shutil.rmtree(scratch_cache / "train" / chip)
    save = np.save
    calls = []

    def killed_mid_chip(path, array, **kwargs) -> None:
        calls.append(path)
        if len(calls) == 2:
            raise KeyboardInterrupt
        save(path, array, **kwargs)

    monkeypatch.setattr(cache.np, "save", killed_mid_chip)
    with pytest.raises(KeyboardInterrupt):
        prepare(raw, scratch_cache, "train")
    monkeypatch.undo()
    assert not (scratch_cache / "train" / chip).exists()
    assert not is_done(scratch_cache / "train" / chip, targets=True)
    with pytest.raises(DataError, match=f"1 of 6 train chip.*first: {chip}.*agbm prepare"):
        ChipDataset(scratch_cache)
    killed = scratch_cache / "train" / f".{chip}.tmp{2**22 + 12345}"  # its writer is gone
    killed.mkdir()
    (killed / "s1.npy").write_bytes(b"half a chip")
    assert prepare(raw, scratch_cache, "train") == [chip]
    assert not list(scratch_cache.rglob(".*tmp*"))  # the killed run's leftovers are gone
    ChipDataset(scratch_cache)[list_chips(raw).index(chip)]


@pytest.fixture(scope="module")
def run_from_cache(tmp_path_factory: pytest.TempPathFactory, cached: Path) -> Path:
    """One tiny epoch of `agbm train` reading the cache; returns the run directory."""
    out = tmp_path_factory.mktemp("runs") / "cache"
    train(TrainConfig(data=str(cached), out=str(out), **TRAIN))
    return out


def test_training_from_the_cache_ends_with_the_same_weights(
    raw: Path, run_from_cache: Path, tmp_path: Path
) -> None:
    train(TrainConfig(data=str(raw), out=str(tmp_path / "raw"), **TRAIN))
    a = torch.load(tmp_path / "raw" / "last.pt", weights_only=False)["model"]
    b = torch.load(run_from_cache / "last.pt", weights_only=False)["model"]
    for key, value in a.items():
        assert bits(value) == bits(b[key]), key


def test_predicting_and_plotting_from_the_cache_as_from_the_raw_root(
    raw: Path, cached: Path, run_from_cache: Path, tmp_path: Path
) -> None:
    options = InferenceOptions((run_from_cache / "last.pt",), tta="none")
    chips = list_chips(raw, "test")
    assert predict(raw, tmp_path / "a", options=options, workers=0) == chips
    assert predict(cached, tmp_path / "b", options=options, workers=0) == chips
    for chip in chips:
        with (
            rasterio.open(tmp_path / "a" / f"{chip}_agbm.tif") as a,
            rasterio.open(tmp_path / "b" / f"{chip}_agbm.tif") as b,
        ):
            assert b.crs is not None and a.crs == b.crs and a.transform == b.transform
            assert a.read().tobytes() == b.read().tobytes()
    figures = plot_predictions(cached, tmp_path / "b", tmp_path / "fig", "test")
    assert [p.name for p in figures] == [f"{c}.png" for c in chips]


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda p: p.write_bytes(p.read_bytes()[:1000]), "s2.npy: corrupt or truncated"),
        (lambda p: p.write_bytes(b"garbage"), "s2.npy: corrupt or truncated"),
        (lambda p: p.unlink(), "s2.npy: cache file missing"),
        (lambda p: np.save(p, np.zeros((12, 11, 64, 64), np.float32)), "s2.npy: holds float32"),
    ],
)
def test_damaged_cache_file_is_a_clear_error(scratch_cache: Path, damage, message: str) -> None:
    dataset = ChipDataset(scratch_cache)
    damage(scratch_cache / "train" / dataset.chip_ids[0] / "s2.npy")
    with pytest.raises(DataError, match=message):
        dataset[0]
    dataset[1]  # the other chips still read


def test_bad_manifest_or_missing_split_is_a_clear_error(scratch_cache: Path, raw: Path) -> None:
    with pytest.raises(DataError, match="already a cache"):
        prepare(scratch_cache, scratch_cache / "x")
    manifest = scratch_cache / cache.MANIFEST
    content = json.loads(manifest.read_text())
    del content["splits"]["test"]
    manifest.write_text(json.dumps(content))
    with pytest.raises(DataError, match="no 'test' split.*--split test"):
        CacheSource.open(scratch_cache, "test")
    manifest.write_text(json.dumps({**content, "version": 0}))
    with pytest.raises(DataError, match="version 0.*prepare"):
        ChipDataset(scratch_cache)
    manifest.write_text("{")
    with pytest.raises(DataError, match="unreadable cache manifest"):
        ChipDataset(scratch_cache)


def test_prepare_command_line(raw: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "cache"
    assert main(["prepare", "--data", str(raw), "--out", str(out), "--workers", "0"]) == 0
    assert "train: converted 6" in capsys.readouterr().out
    assert main(["prepare", "--data", str(raw), "--out", str(out), "--split", "test"]) == 0
    assert "test: converted 0" in capsys.readouterr().out
    other = tmp_path / "other"
    shutil.copytree(raw, other)
    assert main(["prepare", "--data", str(other), "--out", str(out)]) == 2
    assert "was made with other settings (source: " in capsys.readouterr().err


def test_info_reads_a_cache_as_its_data_root(raw: Path, cached: Path, capsys) -> None:
    """`agbm info --data CACHE` used to refuse the cache the README says is read like ROOT."""
    assert main(["info", "--data", str(raw)]) == 0
    from_raw = capsys.readouterr().out
    assert main(["info", "--data", str(cached)]) == 0
    assert capsys.readouterr().out == from_raw and from_raw.startswith("train  chips      6")


def test_prepare_workers_start_while_another_thread_holds_a_lock(raw: Path, tmp_path: Path) -> None:
    """A forked pool waits for (or inherits) locks other threads hold; `agbm prepare` hung
    once at 1/8 that way. Here a thread holds logging's lock, which every fork takes first:
    forked workers would wait the full minute; spawned ones do not."""
    release = threading.Event()

    def hold() -> None:
        with logging._lock:  # noqa: SLF001 - the lock os.fork() takes through logging's hook
            release.wait(60)

    holder = threading.Thread(target=hold, daemon=True)
    holder.start()
    try:
        start = time.perf_counter()
        assert prepare(raw, tmp_path / "cache", "test", workers=2) == list_chips(raw, "test")
        assert time.perf_counter() - start < 45
    finally:
        release.set()
        holder.join()


def test_a_cache_that_cannot_be_written_is_one_line(raw: Path, tmp_path: Path, capsys) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    out = blocker / "cache"
    assert main(["prepare", "--data", str(raw), "--out", str(out), "--workers", "0"]) == 2
    assert capsys.readouterr().err.startswith(f"agbm prepare: error: {out / 'train'}: cannot write")
