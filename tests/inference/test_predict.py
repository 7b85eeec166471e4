"""Prediction: flip TTA, submission files, resumability, and the end-to-end CLI path."""

from __future__ import annotations

import hashlib
import json
import tarfile
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch

from agbm.cli import main
from agbm.data import list_chips, open_source
from agbm.errors import CheckpointError, DataError
from agbm.inference import InferenceOptions, pack, predict, predict_batch, write_prediction
from agbm.inference.tta import predict_spread
from agbm.models import TemporalUNet, save_model
from tests.helpers import write_calibration


class Skewed(torch.nn.Module):
    """A deliberately asymmetric model: flips change its output, so TTA is visible."""

    def forward(self, image: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        x = image.mean(dim=(1, 2), keepdim=False)[:, None]
        ramp = torch.linspace(0, 1, x.shape[-1])
        return x * ramp + x.roll(1, dims=-2) * 3.0 - 0.5


def test_flip_tta_is_the_mean_of_four_hand_flipped_predictions() -> None:
    model = Skewed()
    image, present = torch.rand(2, 12, 15, 8, 8), torch.ones(2, 12, dtype=torch.bool)
    by_hand = []
    for dims in ((), (-1,), (-2,), (-2, -1)):
        flipped = image.flip(dims) if dims else image
        pred = model(flipped, present)
        by_hand.append(pred.flip(dims) if dims else pred)
    expected = torch.stack(by_hand).mean(0).clamp(min=0)
    torch.testing.assert_close(predict_batch([model], image, present, tta="flips"), expected)
    assert not torch.allclose(predict_batch([model], image, present, tta="none"), expected)


def test_predictions_are_clamped_to_non_negative() -> None:
    class Signed(torch.nn.Module):
        def forward(self, image, present):
            return image[:, 0, :1] * 200 - 100  # -100..100 t/ha, per pixel

    image, present = torch.rand(2, 12, 15, 8, 8), torch.ones(2, 12, dtype=torch.bool)
    raw = Signed()(image, present)
    assert (raw < 0).any() and (raw > 0).any()
    out = predict_batch([Signed()], image, present, tta="none")
    torch.testing.assert_close(out, raw.clamp(min=0), rtol=0, atol=0)


def test_an_ensemble_is_the_mean_of_its_models() -> None:
    class Scaled(torch.nn.Module):
        def __init__(self, factor: float) -> None:
            super().__init__()
            self.factor = factor

        def forward(self, image, present):
            return Skewed()(image, present) * self.factor

    image, present = torch.rand(2, 12, 15, 8, 8), torch.ones(2, 12, dtype=torch.bool)
    one, three = Scaled(1.0), Scaled(3.0)
    ensemble = predict_batch([one, three], image, present, tta="flips")
    expected = predict_batch([one], image, present, tta="flips") * 2  # (1 + 3) / 2 of model one
    torch.testing.assert_close(ensemble, expected)


def test_the_spread_of_members_near_300_t_ha_is_their_standard_deviation_to_float_precision() -> (
    None
):
    """Members 300 +- 0.01 t/ha: sums of their squares (9e4) cancelled to float32's
    rounding, 0.0 or ~0.03 instead of 0.01 (a scene map's spread band on AMD EPYC)."""

    class Offset(torch.nn.Module):
        def __init__(self, offset: float) -> None:
            super().__init__()
            self.offset = offset

        def forward(self, image, present):
            return image[:, 0, :1] * 0 + 300.0 + self.offset

    image, present = torch.rand(1, 12, 15, 8, 8), torch.ones(1, 12, dtype=torch.bool)
    mean, spread = predict_spread([Offset(-0.01), Offset(0.01)], image, present, tta="none")
    torch.testing.assert_close(mean, torch.full_like(mean, 300.0))
    torch.testing.assert_close(spread, torch.full_like(spread, 0.01), rtol=0, atol=1e-4)


def test_d4_tta_of_a_rotation_invariant_model_is_the_plain_prediction() -> None:
    class PixelWise(torch.nn.Module):
        def forward(self, image, present):
            return image.sum(dim=(1, 2))[:, None] * 10

    image, present = torch.rand(1, 12, 15, 8, 8), torch.ones(1, 12, dtype=torch.bool)
    model = PixelWise()
    torch.testing.assert_close(
        predict_batch([model], image, present, tta="d4"),
        predict_batch([model], image, present, tta="none"),
    )


def test_outputs_round_trip_with_georeference_and_runs_resume(trained, tmp_path: Path) -> None:
    data, ckpt = trained
    pred = tmp_path / "pred"
    chips = list_chips(data, "test")
    options = InferenceOptions((ckpt,))
    assert predict(data, pred, options=options, workers=0) == chips
    with rasterio.open(pred / f"{chips[0]}_agbm.tif") as out:
        with rasterio.open(next((data / "test_features").glob(f"{chips[0]}_S*.tif"))) as src:
            assert out.crs == src.crs and out.transform == src.transform
        agbm = out.read()
        assert agbm.shape == (1, 32, 32) and agbm.dtype == np.float32 and (agbm >= 0).all()
    (pred / f"{chips[1]}_agbm.tif").unlink()
    assert predict(data, pred, options=options, workers=0) == [chips[1]]  # only it is redone
    assert predict(data, pred, options=options, workers=0) == []
    assert predict(data, pred, options=options, workers=0, overwrite=True) == chips
    assert not list(pred.glob(".*"))  # no temporary files left behind


def test_missing_checkpoint_is_a_clear_error(trained, tmp_path: Path) -> None:
    data, _ = trained
    with pytest.raises(CheckpointError, match="nope.pt does not exist"):
        predict(data, tmp_path / "pred", options=InferenceOptions((tmp_path / "nope.pt",)))


@pytest.mark.parametrize(
    "damage",
    [
        lambda p: p.write_bytes(b""),
        lambda p: write_prediction(p, np.full((32, 32), np.nan, "f4"), {}),
        lambda p: write_prediction(p, np.zeros((16, 16), "f4"), {}),
    ],
    ids=["zero-byte", "all-NaN", "wrong-size"],
)
def test_a_bad_prediction_file_is_redone_and_never_archived(
    trained, tmp_path: Path, damage, capsys: pytest.CaptureFixture[str]
) -> None:
    """Resuming used to keep any file of the right name and pack it into the archive."""
    data, ckpt = trained
    pred, archive = tmp_path / "pred", tmp_path / "sub.tar.gz"
    chips = list_chips(data, "test")
    options = InferenceOptions((ckpt,))
    assert predict(data, pred, options=options, workers=0) == chips
    damage(pred / f"{chips[0]}_agbm.tif")
    with pytest.raises(DataError, match=f"not archiving {pred}: .*{chips[0]}_agbm.tif"):
        pack(pred, archive, open_source(data, "test"))
    assert not archive.exists()
    capsys.readouterr()
    assert predict(data, pred, options=options, workers=0, archive=archive) == [chips[0]]
    assert f"skipped {len(chips) - 1} chip(s) already predicted" in capsys.readouterr().out
    with tarfile.open(archive) as tar:
        assert tar.getnames() == [f"{c}_agbm.tif" for c in chips]


def test_archives_hold_the_chips_only_and_leftovers_of_killed_runs_go(
    trained, tmp_path: Path
) -> None:
    data, ckpt = trained
    pred, archive = tmp_path / "pred", tmp_path / "sub.tar.gz"
    chips = list_chips(data, "test")
    pred.mkdir()
    stale = pred / f".{chips[0]}_agbm.tif.tmp{2**22 + 12345}"  # its writer is gone
    stale.write_bytes(b"half a file")
    (pred / f"._{chips[0]}_agbm.tif").write_bytes(b"\x00\x05\x16\x07AppleDouble")
    (pred / ".DS_Store").write_bytes(b"Bud1")
    (pred / "notes_agbm.tif").write_bytes(b"not a chip")
    predict(data, pred, options=InferenceOptions((ckpt,)), workers=0, archive=archive)
    assert not stale.exists()
    with tarfile.open(archive) as tar:
        assert tar.getnames() == [f"{c}_agbm.tif" for c in chips]


def test_a_folder_of_another_models_predictions_is_refused(trained, tmp_path: Path, capsys) -> None:
    """It said "wrote 0 prediction(s)", exited 0, and --archive packed the mix of models."""
    data, checkpoint = trained
    other = tmp_path / "other.pt"
    save_model(other, TemporalUNet("resnet18", decoder_channels=(16, 16, 16, 16, 16)))
    out = tmp_path / "pred"
    base = ["predict", "--data", str(data), "--out", str(out), "--workers", "0"]
    assert main([*base, "--checkpoint", str(checkpoint)]) == 0
    record = json.loads((out / "predictions.json").read_text())
    assert record["tta"] == "flips" and record["split"] == "test"
    assert record["checkpoints"] == [hashlib.sha256(checkpoint.read_bytes()).hexdigest()]
    archive = tmp_path / "sub.tar.gz"
    for flags in (["--checkpoint", str(other)], ["--checkpoint", str(checkpoint), "--tta", "hv"]):
        assert main([*base, *flags, "--archive", str(archive)]) == 2
        err = capsys.readouterr().err
        assert "was made with other settings" in err and "--overwrite" in err
        assert not archive.exists()
    assert main([*base, "--checkpoint", str(other), "--overwrite"]) == 0
    assert "wrote 3 prediction(s)" in capsys.readouterr().out


def test_an_archive_path_that_is_a_directory_fails_before_predicting(
    trained, tmp_path: Path, capsys
) -> None:
    """`--archive DIR` gave a traceback once every chip had been predicted."""
    data, checkpoint = trained
    args = ["predict", "--data", str(data), "--out", str(tmp_path / "pred"), "--workers", "0"]
    assert main([*args, "--checkpoint", str(checkpoint), "--archive", str(tmp_path)]) == 2
    assert "is a directory" in capsys.readouterr().err
    assert not list((tmp_path / "pred").glob("*.tif"))


def _band(path: Path) -> np.ndarray:
    with rasterio.open(path) as src:
        return src.read(1)


def test_bounds_a_coverage_cannot_give_are_refused_or_left_out(
    trained, tmp_path: Path, capsys
) -> None:
    """--coverage 0.9999 wrote every _high.tif as +inf, and a bin with too few residuals its
    pixels', without a word."""
    data, checkpoint = trained
    calib = write_calibration(checkpoint, "none", [10.0] * 7, tmp_path / "calib.json")
    out = tmp_path / "pred"
    base = ["predict", "--data", str(data), "--checkpoint", str(checkpoint), "--tta", "none",
            "--workers", "0", "--amp", "off", "--calibration", str(calib),
            "--out", str(out)]  # fmt: skip
    assert main([*base, "--coverage", "0.9999"]) == 2  # 100 residuals a bin; it needs 9,999
    refused = ("calib.json: --coverage 0.9999 needs at least 9,999 residuals per bin, and its "
               "bins hold at most 100: lower --coverage, or calibrate on more chips\n")  # fmt: skip
    assert capsys.readouterr().err.endswith(refused) and not out.exists()
    record = json.loads(calib.read_text())
    record["pixel"][0] = [5]  # 5 residuals below 0.05 t/ha in the 0-25 t/ha bin: 0.9 needs 9
    calib.write_text(json.dumps(record))
    assert main(base) == 0
    said = ("too few residuals for --coverage 0.9 (it needs 9) in the bins 0-25 t/ha (5): "
            "pixels predicted there get no bounds (NaN)")  # fmt: skip
    assert said in capsys.readouterr().err
    for chip in list_chips(data, "test"):
        agbm, high = _band(out / f"{chip}_agbm.tif"), _band(out / f"{chip}_high.tif")
        assert not np.isinf(high).any()
        np.testing.assert_array_equal(np.isnan(high), agbm < 25)
