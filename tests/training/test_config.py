"""Settings: recipes, folds, the optimiser and schedule, flags and YAML files, and the checks
that refuse bad ones before any work."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from agbm.cli import main
from agbm.training import TrainConfig, fold_split, resolve
from agbm.training.config import check_config, encoder_weights, read_config_file
from agbm.training.optim import build_optimizer, build_scheduler
from tests.helpers import read_metrics


def test_winner_split_is_scikit_learns_kfold_with_the_winners_seed() -> None:
    """Validation chips as `KFold(10, shuffle=True, random_state=314159)` gave them
    (scikit-learn 1.8, run once by hand: fold 0 of 25 -> 4, 13, 20; fold 1 of 23 -> 13, 18,
    20), whatever --seed."""
    chips = [f"{i:08x}" for i in range(25)]
    assert fold_split(chips, 10, 0, seed=5, method="winner")[1] == [chips[i] for i in (4, 13, 20)]
    assert fold_split(chips[:23], 10, 1, method="winner")[1] == [chips[i] for i in (13, 18, 20)]
    vals = [fold_split(chips, 10, k, method="winner")[1] for k in range(10)]
    assert sorted(sum(vals, [])) == chips and [len(v) for v in vals] == [3] * 5 + [2] * 5


def test_recipes_fill_what_the_run_leaves_unset() -> None:
    winner = resolve(TrainConfig())
    assert (winner.recipe, winner.temporal, winner.cosine_step, winner.split) == (
        "winner",
        "pool",
        "epoch",
        "winner",
    )
    assert winner.min_lr == pytest.approx(1e-4) and winner.augment == {"rotate_shift": 0.1}
    assert resolve(TrainConfig(lr=1e-4)).min_lr == pytest.approx(5e-5)  # the winner's floor
    agbm = resolve(TrainConfig(recipe="agbm"))
    assert (agbm.temporal, agbm.cosine_step, agbm.split, agbm.min_lr, agbm.augment) == (
        "attention",
        "batch",
        "seeded",
        0.0,
        {},
    )
    mixed = resolve(
        TrainConfig(
            temporal="attention", augment={"rotate_shift": 0.0}, model_options={"output_scale": 2}
        )
    )
    assert mixed.temporal == "attention" and mixed.augment == {"rotate_shift": 0.0}
    assert mixed.model_options == {
        "output_scale": 2,
        "output_init": 0.0,
        "input_conventions": "winner",
    }
    assert resolve(mixed) == mixed
    with pytest.raises(ValueError, match="`recipe` must be one of winner, agbm"):
        resolve(TrainConfig(recipe="best"))


def test_fold_split_is_a_deterministic_partition() -> None:
    chips = [f"{i:08x}" for i in range(23)]
    vals = [fold_split(chips, 5, k)[1] for k in range(5)]
    assert sorted(sum(vals, [])) == chips
    train_ids, val_ids = fold_split(chips, 5, 2)
    assert not set(train_ids) & set(val_ids) and fold_split(chips, 5, 2) == (train_ids, val_ids)


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--backbone", "no_such_net"], "unknown timm backbone"),
        (["--fold", "10"], "out of range"),
        (["--batch-size", "64"], "exceeds"),
        (["--folds", "10", "--fold", "9"], "holds no chip"),  # 8 chips in 10 folds
        (["--lr", "0"], "need --lr > 0"),
        (["--image-size", "48"], "multiple of 32"),
        (["--image-size", "64", "--batch-size", "2"], "exceeds the chips' 32x32"),
    ],
)
def test_bad_options_fail_before_work(
    tiny_data: Path, tmp_path: Path, flags, message, capsys, monkeypatch: pytest.MonkeyPatch
):
    def no_model(config):
        raise AssertionError("a model was built before the options were checked")

    monkeypatch.setattr("agbm.training.trainer.build_model", no_model)
    args = ["train", "--data", str(tiny_data), "--out", str(tmp_path / "run"), *flags]
    assert main(args) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "run" / "last.pt").exists()


@pytest.mark.parametrize("flag", ["--amp", "--temporal", "--recipe", "--split", "--cosine-step"])
def test_word_options_list_and_enforce_their_choices(
    flag: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        main(["train", flag, "fp8"])
    assert f"argument {flag}: invalid choice: 'fp8'" in capsys.readouterr().err


def test_missing_data_root_fails_clearly(tmp_path: Path, capsys) -> None:
    assert main(["train", "--data", str(tmp_path / "nope"), "--out", str(tmp_path / "r")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_config_file_with_flag_override(tiny_data: Path, tmp_path: Path) -> None:
    cfg = tmp_path / "run.yaml"
    cfg.write_text(
        f"data: {tiny_data}\nbackbone: resnet18\nepochs: 5\nbatch_size: 2\nworkers: 0\n"
        "decoder_channels: [16, 16, 16, 16, 16]\nchannels_last: false\nfolds: 4\npretrained: none\n"
    )
    assert (
        main(
            [
                "train",
                "--config",
                str(cfg),
                "--out",
                str(tmp_path / "run"),
                "--epochs",
                "1",
                "--no-augment",
            ]
        )
        == 0
    )
    ckpt = torch.load(tmp_path / "run" / "last.pt", weights_only=False)
    assert ckpt["train_config"]["epochs"] == 1 and ckpt["train_config"]["batch_size"] == 2
    assert ckpt["train_config"]["augment"]["flip_prob"] == 0.0  # --no-augment
    assert ckpt["train_config"]["augment"]["month_dropout_prob"] == 0.0
    assert len(read_metrics(tmp_path / "run")) == 1


@pytest.mark.parametrize(
    ("text", "message"),
    [("- epochs\n- 5\n", "not a YAML mapping"), ("epoch: 5\n", "unknown key(s) epoch")],
)
def test_a_config_file_that_is_not_settings_fails_in_one_line(
    tmp_path: Path, capsys, text: str, message: str
) -> None:
    cfg = tmp_path / "run.yaml"
    cfg.write_text(text)
    assert main(["train", "--config", str(cfg), "--data", str(tmp_path), "--out", "x"]) == 2
    err = capsys.readouterr().err
    assert message in err and str(cfg) in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        ("augment:\n  flip: 0.5\n", "unknown augment option(s) flip"),
        ("model_options:\n  months: 6\n", "unknown model option(s) months"),
    ],
)
def test_unknown_augment_or_model_option_in_the_config_file_fails_clearly(
    yaml_text: str, message: str, tiny_data: Path, tmp_path: Path, capsys
) -> None:
    cfg = tmp_path / "run.yaml"
    cfg.write_text(yaml_text)
    args = ["train", "--config", str(cfg), "--data", str(tiny_data), "--out", str(tmp_path / "r")]
    assert main(args) == 2
    assert message in capsys.readouterr().err


def test_pretrained_words_map_to_the_model_argument() -> None:
    assert TrainConfig().pretrained == "imagenet"  # the winning recipe starts from ImageNet
    assert [encoder_weights(w) for w in ("imagenet", "none", True, False, "w.safetensors")] == [
        True,
        False,
        True,
        False,
        "w.safetensors",
    ]


def test_weight_decay_spares_biases_and_norms() -> None:
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
    decayed, spared = build_optimizer(model, lr=1e-3, weight_decay=1e-2).param_groups
    assert decayed["weight_decay"] == 1e-2 and spared["weight_decay"] == 0.0
    assert [p.shape for p in decayed["params"]] == [model[0].weight.shape]
    assert len(spared["params"]) == 3  # conv bias, norm weight and bias


def test_schedule_warms_up_linearly_then_anneals_by_cosine() -> None:
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    scheduler = build_scheduler(optimizer, total_steps=12, warmup_steps=2, min_ratio=0.1)
    lrs = []
    for _ in range(12):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    lrs.append(optimizer.param_groups[0]["lr"])
    expected = [0.5, 1.0] + [0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * i / 10)) for i in range(11)]
    np.testing.assert_allclose(lrs, expected, rtol=1e-6)


def test_an_epoch_stepped_cosine_holds_each_epoch() -> None:
    """The winner's CosineAnnealingLR stepped per epoch: 4 epochs of 3 batches."""
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    scheduler = build_scheduler(optimizer, total_steps=12, warmup_steps=0, min_ratio=0.1, every=3)
    lrs = []
    for _ in range(12):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    per_epoch = [0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * e / 4)) for e in range(4)]
    np.testing.assert_allclose(lrs, np.repeat(per_epoch, 3), rtol=1e-6)


def test_yaml_values_are_converted_to_their_settings_types(tmp_path: Path) -> None:
    """PyYAML reads `lr: 1e-3` as the string '1e-3' (the winner's floor then computed
    0.1 * '1e-3', a TypeError), and `full: "false"` as a true string (a full run)."""
    cfg = tmp_path / "run.yaml"
    cfg.write_text('lr: 1e-3\nfull: "false"\nepochs: "10"\nresume: true\nno_augment: true\n')
    values, options = read_config_file(cfg)
    assert values == {"lr": 0.001, "full": False, "epochs": 10}
    assert options == {"resume": True, "no_augment": True}
    assert resolve(TrainConfig(**values)).min_lr == pytest.approx(1e-4)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("epochs: 1.5\n", "epochs: 1.5 is not a valid int"),  # trained 2 epochs of "1.5"
        ("backbone: 5\n", "backbone: 5 is not a valid"),
        ("lr: [1, 2]\n", "lr: [1, 2] is not a valid float"),
        ("temporal: transformer\n", "temporal: 'transformer' is not a valid"),
        ("epochs: 5\n  batch_size: 2\n", "not valid YAML at line"),
        ("overwrite: maybe\n", "overwrite: 'maybe' is not true or false"),
    ],
    ids=["float-for-int", "int-for-word", "list-for-number", "word-choice", "malformed", "flag"],
)
def test_a_yaml_value_its_setting_cannot_hold_is_one_line_naming_the_key(
    text: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = tmp_path / "run.yaml"
    cfg.write_text(text)
    assert main(["train", "--config", str(cfg), "--data", str(tmp_path), "--out", "x"]) == 2
    err = capsys.readouterr().err
    assert message in err and str(cfg) in err and len(err.strip().splitlines()) == 1, err


def test_settings_given_in_code_are_checked_by_the_same_types(tiny_data: Path) -> None:
    config = resolve(TrainConfig(data=str(tiny_data), out="x", amp="fp8"))
    with pytest.raises(ValueError, match="setting amp: 'fp8' is not a valid"):
        check_config(config)
    with pytest.raises(ValueError, match="need `lr` > 0"):
        check_config(resolve(TrainConfig(data=str(tiny_data), out="x", lr=math.inf)))
