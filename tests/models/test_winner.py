"""The winner's published checkpoints: imported without its code, reproducing its predictions,
and read by an unpickler that runs nothing from the file."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch

from agbm.cli import main
from agbm.data import AGBM_CONVENTIONS, WINNER_CONVENTIONS
from agbm.errors import CheckpointError
from agbm.models import TemporalUNet, load_model, save_model
from agbm.models.winner.convert import import_winner
from agbm.runtime import init_runtime
from agbm.training import TrainConfig, Trainer, resolve
from tests.helpers import WINNER_FIXTURE

WINNER = WINNER_FIXTURE
pytestmark = pytest.mark.skipif(not WINNER.is_dir(), reason="../shared/fixtures/winner absent")
CHIPS = ("0c1a2b3d", "f00dcafe")
#: The issue's bar for reproducing the winner's predictions, in t/ha.
TOLERANCE = 0.05


@pytest.fixture(scope="module", params=["model_best.pth", "modelo_best.pth"])
def imported(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Each of the winner's two file formats, imported once through the CLI."""
    out = tmp_path_factory.mktemp("imported") / "winner.pt"
    assert (
        main(["import-winner", str(WINNER / "checkpoints" / request.param), "--out", str(out)]) == 0
    )
    return out


def expected(chip: str, tta: str) -> np.ndarray:
    """The winner's own prediction, clamped at 0 as agbm's predictions are."""
    name = {"none": "tta-none", "hv": "tta-submission"}[tta]
    return np.load(WINNER / "expected" / f"{chip}_agbm_{name}.npy").clip(min=0)


@pytest.mark.parametrize("tta", ["none", "hv"])
def test_predict_with_an_imported_checkpoint_reproduces_the_winner(
    imported: Path, tta: str, tmp_path: Path
) -> None:
    args = ["predict", "--data", str(WINNER / "data"), "--checkpoint", str(imported)]
    assert (
        main([*args, "--out", str(tmp_path), "--tta", tta, "--workers", "0", "--amp", "off"]) == 0
    )
    for chip in CHIPS:
        with rasterio.open(tmp_path / f"{chip}_agbm.tif") as src:
            agbm = src.read(1)
        assert np.abs(agbm - expected(chip, tta)).max() < TOLERANCE, chip


def test_predict_scene_with_an_imported_checkpoint_reproduces_the_winner(
    imported: Path, tmp_path: Path
) -> None:
    """A chip's monthly files read as a scene (one window, so no blending) give the winner's
    submission prediction: predict-scene applies the checkpoint's conventions too."""
    files = WINNER / "data" / "test_features"
    out = tmp_path / "agbm.tif"
    scene = [f"--s1={files}/0c1a2b3d_S1_{{MM}}.tif", f"--s2={files}/0c1a2b3d_S2_{{MM}}.tif"]
    args = ["predict-scene", *scene, "--checkpoint", str(imported), "--out", str(out)]
    assert main([*args, "--tta", "hv", "--amp", "off"]) == 0
    with rasterio.open(out) as src:
        assert np.abs(src.read(1) - expected("0c1a2b3d", "hv")).max() < TOLERANCE


def test_the_imported_checkpoint_records_the_winners_model_and_conventions(imported: Path) -> None:
    model = load_model(imported)
    assert model.conventions == WINNER_CONVENTIONS
    assert model.config["temporal"] == "pool" and model.config["output_scale"] == 1.0
    assert model.config["backbone"] == "tf_mobilenetv3_small_minimal_100"
    assert model.config["decoder_channels"] == [64, 48, 32, 24, 16]
    # The same weights fed agbm's own conventions miss by far more than the tolerance: the
    # conventions, not the weights, are what reproduction hinges on.
    model.conventions = AGBM_CONVENTIONS
    agbm_model = imported.with_name("agbm-conventions.pt")
    save_model(agbm_model, model, {**model.config, "input_conventions": "agbm"})
    assert load_model(agbm_model).conventions == AGBM_CONVENTIONS


def test_fine_tuning_an_imported_model_feeds_it_the_winners_conventions(
    imported: Path, synth_root: Path, tmp_path: Path
) -> None:
    config = TrainConfig(
        data=str(synth_root),
        out=str(tmp_path),
        init=str(imported),
        folds=3,
        batch_size=2,
        epochs=1,
        workers=0,
        channels_last=False,
    )
    trainer = Trainer(resolve(config), init_runtime())
    assert trainer.conventions == WINNER_CONVENTIONS
    trainer.fit()
    assert load_model(tmp_path / "last.pt").conventions == WINNER_CONVENTIONS


def efficientnetv2_l_state_dict() -> dict[str, torch.Tensor]:
    """A state dict with the real winner model's key set and shapes (from the fixture's
    manifest), stored as stride-0 views so that the file stays a few kilobytes."""
    lines = (WINNER / "efficientnetv2_l_state_dict_keys.tsv").read_text().splitlines()[1:]
    state = {}
    for line in lines:
        key, shape = line.split("\t")
        size = [int(s) for s in shape.strip("[]").split(",") if s.strip()]
        dtype = torch.int64 if key.endswith("num_batches_tracked") else torch.float32
        state[key] = torch.zeros((), dtype=dtype).expand(size)
    return state


def test_the_real_models_key_set_imports(tmp_path: Path) -> None:
    """EfficientNetV2-L under its timm 0.6 name, decoder widths inferred from the shapes."""
    src = tmp_path / "model_best.pth"
    args = argparse.Namespace(backbone="tf_efficientnetv2_l_in21k", in_channels=15)
    state = efficientnetv2_l_state_dict()
    # NumPy values, as training scripts often store scores, are read as data too.
    extra = {"epoch": 9, "best_score": np.float64(27.5), "history": np.arange(3.0)}
    torch.save({"state_dict": state, "args": args, **extra}, src)
    report = import_winner(src, tmp_path / "l.pt")
    assert (report["epoch"], report["best_score"]) == (9, 27.5)
    assert report["model_config"]["backbone"] == "tf_efficientnetv2_l.in21k"
    assert report["model_config"]["decoder_channels"] == [384, 368, 352, 336, 320]
    assert report["dropped"] == 6  # the last decoder block's unused scSE
    assert round(report["parameters"] / 1e5) == 1308  # 130.8 M, as the winner's model


def test_tensors_that_do_not_fit_are_named(tmp_path: Path) -> None:
    state = efficientnetv2_l_state_dict()
    del state["attn.2.attn.0.bias"]
    state["segmentation_head.weight"] = torch.zeros(1, 320, 5, 5)
    src = tmp_path / "model_best.pth"
    args = argparse.Namespace(backbone="tf_efficientnetv2_l_in21k")
    torch.save({"state_dict": state, "args": args}, src)
    with pytest.raises(CheckpointError, match=r"2 tensor\(s\) do not fit") as err:
        import_winner(src, tmp_path / "l.pt")
    assert "temporal.2.score.0.bias: missing from the file" in str(err.value)
    assert "head.weight: shape (1, 320, 5, 5) in the file, (1, 320, 3, 3)" in str(err.value)
    assert not (tmp_path / "l.pt").exists()


def test_an_ensemble_of_models_with_different_conventions_is_refused(
    imported: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    agbm_model = tmp_path / "agbm.pt"
    save_model(agbm_model, TemporalUNet("resnet18", decoder_channels=(16, 16, 16, 16, 16)))
    args = ["predict", "--data", str(WINNER / "data"), "--out", str(tmp_path / "pred")]
    assert main([*args, "--checkpoint", str(imported), str(agbm_model)]) == 2
    assert "different conventions (agbm, winner)" in capsys.readouterr().err
