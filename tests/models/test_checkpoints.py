"""Every kind of bad checkpoint is one line naming the file, in predict, --init and --resume."""

from __future__ import annotations

import io
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from agbm.cli import main
from agbm.models import TemporalUNet, save_model


def small_model(**kwargs: object) -> TemporalUNet:
    return TemporalUNet("resnet18", decoder_channels=(16, 16, 16, 16, 16), **kwargs)


def valid_bytes() -> bytes:
    buf = io.BytesIO()
    model = small_model()
    torch.save({"model_config": model.config, "model": model.state_dict()}, buf)
    return buf.getvalue()


def torch_bytes(obj: object) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def mismatched() -> bytes:
    config = small_model().config
    weights = TemporalUNet("resnet18", decoder_channels=(32, 32, 32, 32, 32)).state_dict()
    return torch_bytes({"model_config": config, "model": weights})


FAULTS: dict[str, tuple[Callable[[], bytes], str]] = {
    "zero-byte": (lambda: b"", "not a PyTorch checkpoint file (it is empty)"),
    "truncated": (lambda: valid_bytes()[:5000], "unreadable, truncated or not a checkpoint"),
    "text": (lambda: b"a text file\n", "not a PyTorch checkpoint file (it begins b'a text file"),
    # 7 bytes that torch took for a pickle: "holds Python objects"
    "seven-bytes": (lambda: b"weights", "not a PyTorch checkpoint file (it begins b'weights')"),
    "lfs-pointer": (
        lambda: b"version https://git-lfs.github.com/spec/v1\noid sha256:00\nsize 9\n",
        "not a PyTorch checkpoint file (a Git LFS pointer: fetch the file itself",
    ),
    "module": (lambda: torch_bytes(torch.nn.Linear(2, 2)), "holds Python objects"),
    "foreign-dict": (lambda: torch_bytes({"weights": 1}), "not an agbm checkpoint"),
    "config-not-dict": (
        lambda: torch_bytes({"model_config": [1], "model": {}}),
        "model_config is a list, not a dict",
    ),
    "weights-misfit": (mismatched, "its weights do not fit its model_config"),
    "unknown-config-key": (
        lambda: torch_bytes({"model_config": {**small_model().config, "gamma": 1}, "model": {}}),
        "its model_config cannot build a model (unknown model config key(s) ['gamma']",
    ),
}


@pytest.mark.parametrize("fault", list(FAULTS))
@pytest.mark.parametrize("command", ["predict", "init", "resume"])
def test_a_bad_checkpoint_is_one_line_naming_the_file(
    fault: str,
    command: str,
    synth_root: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    make, message = FAULTS[fault]
    run = tmp_path / "run"
    run.mkdir()
    ckpt = run / "last.pt"
    ckpt.write_bytes(make())
    train = ["train", "--data", str(synth_root), "--backbone", "resnet18", "--pretrained", "none"]
    train += ["--workers", "0", "--batch-size", "2", "--epochs", "1", "--folds", "3"]
    args = {
        "predict": ["predict", "--data", str(synth_root), "--checkpoint", str(ckpt)]
        + ["--out", str(tmp_path / "pred"), "--workers", "0"],
        "init": [*train, "--out", str(tmp_path / "new"), "--init", str(ckpt)],
        "resume": [*train, "--out", str(run), "--resume"],
    }[command]
    if command == "resume" and fault in (
        "foreign-dict",
        "config-not-dict",
        "weights-misfit",
        "unknown-config-key",
    ):
        message = "not an agbm checkpoint (needs ['model_config', 'model', 'optimizer'"
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(ckpt) in err and message in err, err


def test_a_data_error_in_a_loader_worker_is_the_same_one_line(
    synth_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """It used to arrive as a 40-line worker traceback naming the file on its last line."""
    data = Path(shutil.copytree(synth_root, tmp_path / "data"))
    bad = sorted((data / "test_features").glob("*_S1_*.tif"))[-1]
    bad.write_bytes(b"not a tiff")
    ckpt = tmp_path / "model.pt"
    save_model(ckpt, small_model())
    args = ["predict", "--data", str(data), "--checkpoint", str(ckpt), "--out", str(tmp_path / "p")]
    assert main([*args, "--workers", "1", "--batch-size", "1"]) == 2
    err = capsys.readouterr().err  # the progress bar's line, then the error's
    assert err.splitlines()[-1].startswith(f"agbm predict: error: {bad}: unreadable")
    assert "Traceback" not in err and err.endswith("\n") and err.count("\n") == 2


def test_an_unwritable_output_fails_before_the_model_runs(
    synth_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch
) -> None:
    """It used to fail with a traceback at the first write, after the model had run."""
    ckpt = tmp_path / "model.pt"
    save_model(ckpt, small_model())
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")

    def no_model(*args: object) -> None:
        raise AssertionError("the model was loaded before the output was checked")

    monkeypatch.setattr("agbm.inference.chips.load_for_inference", no_model)
    monkeypatch.setattr("agbm.inference.scene.load_for_inference", no_model)
    out = blocker / "pred"
    args = ["predict", "--data", str(synth_root), "--checkpoint", str(ckpt), "--out", str(out)]
    assert main(args) == 2
    assert capsys.readouterr().err.startswith(f"agbm predict: error: {out}: cannot write there")
    features = synth_root / "test_features"
    chip = next(features.glob("*_S1_00.tif")).name.split("_")[0]
    s1, s2 = (f"{features}/{chip}_{s}_{{MM}}.tif" for s in ("S1", "S2"))
    scene = ["predict-scene", "--s1", s1, "--s2", s2, "--checkpoint", str(ckpt)]
    assert main([*scene, "--out", str(out / "agbm.tif")]) == 2
    assert f"{out}: cannot write there" in capsys.readouterr().err


def test_a_command_that_fails_before_writing_leaves_no_empty_folder(
    synth_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"")
    out = tmp_path / "new" / "pred"
    args = ["predict", "--data", str(synth_root), "--checkpoint", str(bad), "--out", str(out)]
    assert main(args) == 2
    assert not (tmp_path / "new").exists()
    run = tmp_path / "run"
    train = ["train", "--data", str(synth_root), "--out", str(run), "--init", str(bad)]
    assert main([*train, "--workers", "0", "--batch-size", "2", "--folds", "3"]) == 2
    assert not run.exists()


def test_train_without_data_says_what_is_missing(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train"]) == 2
    assert "--data ROOT is required" in capsys.readouterr().err
