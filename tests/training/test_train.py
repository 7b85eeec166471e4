"""Training runs: exact resume, atomic checkpoints, run folders, --init, compile, loader workers."""

from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path

import pytest
import torch

from agbm.cli import main
from agbm.data import AGBM_CONVENTIONS, WINNER_CONVENTIONS
from agbm.errors import OutputError
from agbm.io import save_atomic
from agbm.models import TemporalUNet, load_model, save_model
from agbm.runtime import Runtime, default_workers
from agbm.training import TrainConfig, Trainer, resolve, train
from agbm.training.state import BEST_KEYS
from tests.helpers import SMALL, read_metrics


def test_resumed_run_ends_with_the_same_weights(tiny_data: Path, tmp_path: Path) -> None:
    def config(out: str, epochs: int) -> TrainConfig:
        return TrainConfig(
            data=str(tiny_data),
            out=str(tmp_path / out),
            epochs=epochs,
            batch_size=2,
            folds=4,
            **SMALL,
        )

    train(config("straight", 2))
    log = Trainer._log

    def killed_after_first_epoch(self: Trainer, row, val) -> None:
        log(self, row, val)
        raise KeyboardInterrupt  # the job dies right after epoch 1 was checkpointed

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Trainer, "_log", killed_after_first_epoch)
        with pytest.raises(KeyboardInterrupt):
            train(config("resumed", 2))
    assert torch.load(tmp_path / "resumed" / "last.pt", weights_only=False)["epoch"] == 1
    train(config("resumed", 2), resume=True)
    a = torch.load(tmp_path / "straight" / "last.pt", weights_only=False)["model"]
    b = torch.load(tmp_path / "resumed" / "last.pt", weights_only=False)["model"]
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0, msg=key)
    assert [r["epoch"] for r in read_metrics(tmp_path / "resumed")] == ["1", "2"]


def test_persistent_loader_workers_train_as_the_main_process(
    tiny_data: Path, tmp_path: Path
) -> None:
    """Loader workers live across epochs and augmentation runs in the training step, so a run
    with two workers ends with exactly the weights of a run loading in the main process."""
    runs = {}
    for workers in (0, 2):
        options = {**SMALL, "workers": workers}
        out = tmp_path / f"workers{workers}"
        train(TrainConfig(data=str(tiny_data), out=str(out), epochs=2, batch_size=2, **options))
        runs[workers] = torch.load(out / "last.pt", weights_only=False)["model"]
    for key, value in runs[0].items():
        torch.testing.assert_close(value, runs[2][key], rtol=0, atol=0, msg=key)


def test_compile_flag_compiles_the_training_forward_only(
    tiny_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    compiled = []

    def fake_compile(module: torch.nn.Module) -> torch.nn.Module:
        compiled.append(module)
        return module

    monkeypatch.setattr(torch, "compile", fake_compile)
    out = tmp_path / "run"
    args = ["--data", str(tiny_data), "--out", str(out), "--backbone", "resnet18"]
    args += ["--pretrained", "none"]
    main(["train", *args, "--epochs", "1", "--batch-size", "2", "--workers", "0", "--compile"])
    assert len(compiled) == 1 and isinstance(compiled[0], torch.nn.Module)
    keys = torch.load(out / "last.pt", weights_only=False)["model"]
    assert not any(k.startswith("_orig_mod") for k in keys)


def test_checkpoint_write_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "last.pt"
    save_atomic({"version": 1}, path)

    def crash(obj, f, *args, **kwargs):
        Path(f).write_bytes(b"half a checkpo")
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(KeyboardInterrupt):
        save_atomic({"version": 2}, path)
    monkeypatch.undo()
    assert torch.load(path)["version"] == 1


@pytest.mark.parametrize(
    ("recipe", "scale", "conventions"),
    [("winner", 1.0, WINNER_CONVENTIONS), ("agbm", 100.0, AGBM_CONVENTIONS)],
)
def test_the_recipe_builds_its_model_and_feeds_it_its_conventions(
    recipe: str, scale: float, conventions: object, tiny_data: Path, tmp_path: Path
) -> None:
    config = TrainConfig(
        data=str(tiny_data), out=str(tmp_path), recipe=recipe, batch_size=2, **SMALL
    )
    trainer = Trainer(resolve(config), Runtime(0, 1, torch.device("cpu")))
    assert trainer.model.output_scale == scale and trainer.conventions == conventions
    assert trainer.model.config["temporal"] == ("pool" if recipe == "winner" else "attention")


def test_missing_weights_file_fails_clearly(tiny_data: Path, tmp_path: Path, capsys) -> None:
    weights = tmp_path / "nope.safetensors"
    args = ["train", "--data", str(tiny_data), "--out", str(tmp_path / "r"), "--batch-size", "2"]
    assert main([*args, "--backbone", "resnet18", "--pretrained", str(weights)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("agbm train: error: ") and f"no weights file at {weights}" in err


def test_resume_refuses_a_checkpoint_of_other_settings(tiny_data: Path, tmp_path: Path) -> None:
    config = TrainConfig(data=str(tiny_data), out=str(tmp_path), epochs=1, batch_size=2, **SMALL)
    train(config)
    changed = r"other settings \(lr: 0.001 -> 0.002; min_lr: 0.0001 -> 0.0002\)"  # the floor too
    with pytest.raises(OutputError, match=changed):
        train(dataclasses.replace(config, lr=2e-3), resume=True)
    train(dataclasses.replace(config, workers=1), resume=True)  # where, not what: allowed
    ckpt = torch.load(tmp_path / "last.pt", weights_only=False)
    del ckpt["train_config"]["image_size"]  # a checkpoint of a version without the option
    torch.save(ckpt, tmp_path / "last.pt")
    train(config, resume=True)  # the missing setting counts as its default


def test_a_run_from_before_recipes_resumes_as_the_agbm_recipe(
    tiny_data: Path, tmp_path: Path
) -> None:
    config = TrainConfig(
        data=str(tiny_data), out=str(tmp_path), recipe="agbm", epochs=1, batch_size=2, **SMALL
    )
    train(config)
    ckpt = torch.load(tmp_path / "last.pt", weights_only=False)
    for key in ("recipe", "cosine_step", "split", "model_options"):
        del ckpt["train_config"][key]
    torch.save(ckpt, tmp_path / "last.pt")
    train(config, resume=True)
    with pytest.raises(OutputError, match="recipe: 'agbm' -> 'winner'"):
        train(dataclasses.replace(config, recipe="winner"), resume=True)


def test_image_size_trains_on_crops_and_validates_on_whole_chips(
    synth_root: Path, tmp_path: Path
) -> None:
    seen = []
    forward = Trainer.train_step

    def spy(self: Trainer, batch):
        image = self.augment(*self._to_device(batch), self._draws(batch))[0]
        seen.append(tuple(image.shape[-2:]))
        return forward(self, batch)

    config = TrainConfig(
        data=str(synth_root), out=str(tmp_path), epochs=1, batch_size=2, folds=3, image_size=32
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Trainer, "train_step", spy)
        train(dataclasses.replace(config, **SMALL))
    assert seen == [(32, 32), (32, 32)]  # 4 training chips of 64x64, batches of 2
    assert float(read_metrics(tmp_path)[0]["val_rmse"]) > 0


def test_fp16_scales_the_loss_on_any_device(tiny_data: Path, tmp_path: Path) -> None:
    runtime = Runtime(0, 1, torch.device("cpu"))
    for amp, scaled in (("fp16", True), ("bf16", False), ("off", False)):
        config = TrainConfig(data=str(tiny_data), out=str(tmp_path), amp=amp, batch_size=2, **SMALL)
        assert Trainer(resolve(config), runtime).scaler.is_enabled() == scaled, amp


def test_a_run_folder_is_continued_or_replaced_only_when_asked(
    tiny_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Training twice into one folder used to restart at epoch 1 over the first run."""
    out = tmp_path / "run"
    cfg = tmp_path / "small.yaml"
    cfg.write_text("decoder_channels: [32, 32, 16, 16, 16]\n")
    args = ["train", "--config", str(cfg), "--data", str(tiny_data), "--out", str(out)]
    args += ["--backbone", "resnet18", "--pretrained", "none", "--batch-size", "2"]
    args += ["--workers", "0", "--epochs", "2"]
    assert main(args) == 0
    first = (out / "last.pt").read_bytes()
    capsys.readouterr()
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "already holds a training run (2 epoch(s) done, best val RMSE" in err
    assert "--resume" in err and "--overwrite" in err
    assert (out / "last.pt").read_bytes() == first
    assert main([*args, "--resume"]) == 0
    assert "run complete: 2/2 epochs, best val RMSE" in capsys.readouterr().out
    assert (out / "last.pt").read_bytes() == first
    dead = out / f".best.pt.tmp{2**22 + 12345}"  # above Linux's default pid_max: no process
    live = out / f".last.pt.tmp{os.getppid()}"  # a running process may still be writing it
    dead.write_bytes(b"half a checkpoint")
    live.write_bytes(b"being written")
    assert main([*args[:-1], "1", "--overwrite"]) == 0  # a new run of 1 epoch
    assert len(read_metrics(out)) == 1
    assert torch.load(out / "last.pt", weights_only=False)["epoch"] == 1
    assert not dead.exists() and live.exists()


def test_model_options_that_contradict_the_init_checkpoint_are_refused(
    tiny_data: Path, tmp_path: Path
) -> None:
    """`--init CKPT --backbone resnet34` used to train CKPT's resnet18 and record resnet34."""
    ckpt = tmp_path / "init.pt"
    save_model(ckpt, TemporalUNet("resnet18", decoder_channels=(32, 32, 16, 16, 16)))
    base = TrainConfig(data=str(tiny_data), init=str(ckpt), batch_size=2, workers=0, epochs=1)
    runtime = Runtime(0, 1, torch.device("cpu"))
    for given, message in [
        ({"backbone": "resnet34"}, "`backbone` resnet34"),
        ({"temporal": "pool"}, "`temporal` pool"),
        ({"decoder_channels": [16, 16, 16, 16, 16]}, "`decoder_channels` [16, 16, 16, 16, 16]"),
        (
            {"model_options": {"input_conventions": "winner"}},
            "model_options input_conventions: winner",
        ),
    ]:
        config = dataclasses.replace(base, out=str(tmp_path / "r"), **given)
        with pytest.raises(
            ValueError, match=f"holds a resnet18 model .*contradicts {re.escape(message)}"
        ):
            Trainer(resolve(config), runtime)
    agreeing = dataclasses.replace(base, out=str(tmp_path / "ok"), backbone="resnet18")
    trainer = Trainer(resolve(agreeing), runtime)
    recorded = trainer.state()["train_config"]
    assert (recorded["backbone"], recorded["temporal"]) == ("resnet18", "attention")
    assert recorded["decoder_channels"] == [32, 32, 16, 16, 16]
    assert recorded["model_options"]["output_scale"] == 100.0


def test_a_run_starts_with_one_line_on_what_it_trains_and_fits_the_machines_cores(
    tiny_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch
) -> None:
    """It printed no header, and asked for 4 loader workers on a 2-core machine."""
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    config = TrainConfig(
        data=str(tiny_data), out=str(tmp_path), epochs=1, batch_size=2, folds=4,
        **{**SMALL, "workers": None},
    )  # fmt: skip
    trainer = Trainer(resolve(config), Runtime(0, 1, torch.device("cpu")))
    assert trainer.config.workers == 2 and trainer.data.loader.num_workers == 2
    params = sum(p.numel() for p in trainer.model.parameters()) / 1e6
    assert trainer.describe() == (
        f"training resnet18 ({params:.1f} M parameters, recipe winner) on cpu, amp off: "
        "6 training chips, 2 validation chips (fold 0 of 4), 2 loader workers per process"
    )
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "4")
    assert default_workers() == 0
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(64)), raising=False)
    assert default_workers() == 8


def test_best_pt_holds_the_model_without_the_optimiser(tiny_data: Path, tmp_path: Path) -> None:
    """best.pt used to carry the optimiser's state too (315 MB for resnet18's default run)."""
    train(TrainConfig(data=str(tiny_data), out=str(tmp_path), epochs=1, batch_size=2, **SMALL))
    best = torch.load(tmp_path / "best.pt", weights_only=True)
    assert sorted(best) == sorted(BEST_KEYS) and "optimizer" in torch.load(tmp_path / "last.pt")
    assert (tmp_path / "best.pt").stat().st_size < 0.5 * (tmp_path / "last.pt").stat().st_size
    assert isinstance(load_model(tmp_path / "best.pt"), TemporalUNet)
