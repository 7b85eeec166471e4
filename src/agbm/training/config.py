"""What a training run depends on: `TrainConfig`, the named recipes, and their checks.

Both recipes (`--recipe`, docs/recipes.md): RMSE per chip over target pixels below 400
t/ha; AdamW, lr 1e-3, weight decay 1e-2 (none on biases and norms), gradient clipping at
norm 5; cosine annealing over the run; flips, 90-degree turns, a +-45 degree rotation with
reflected borders (p 0.7) and month dropout; validation on one of 10 folds; then
fine-tuning on all chips from the fold's checkpoint (`--full --init CKPT`). `winner` (the
default) is the BioMassters winner's exact recipe: attention pooling over months, no output
scaling, the winner's input conventions, a cosine stepped per epoch down to a tenth of the
learning rate, the winner's fold split and rotation-centre jitter. `agbm` is agbm's variant:
self-attention over months, a scaled output, clipped inputs with absent months masked.
"""

from __future__ import annotations

import dataclasses
import importlib.util
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import yaml

from agbm.data.augment import Augment
from agbm.data.bands import InputConventions
from agbm.errors import DataError
from agbm.models.temporal import TEMPORAL_KINDS
from agbm.runtime import AMP_DTYPES
from agbm.training.split import SPLIT_METHODS, check_fold


def winner_min_lr(lr: float) -> float:
    """The winner's cosine floor: a tenth of the learning rate, at least 5e-5 (never above
    `lr`): 1e-3 anneals to 1e-4, and 1e-4 to 5e-5."""
    return min(lr, max(0.1 * lr, 5e-5))


@dataclass(frozen=True)
class Recipe:
    """What a named recipe sets: training settings, and model settings that have no flag."""

    train: dict[str, Any]
    model: dict[str, Any]
    #: Augmentation options under those the run gives.
    augment: dict[str, Any]
    #: The cosine's floor for a learning rate.
    min_lr: Callable[[float], float]


RECIPES: dict[str, Recipe] = {
    "winner": Recipe(
        train={"temporal": "pool", "cosine_step": "epoch", "split": "winner"},
        model={"output_scale": 1.0, "output_init": 0.0, "input_conventions": "winner"},
        augment={"rotate_shift": 0.1},
        min_lr=winner_min_lr,
    ),
    "agbm": Recipe(
        train={"temporal": "attention", "cosine_step": "batch", "split": "seeded"},
        model={"output_scale": 100.0, "output_init": 70.0, "input_conventions": "agbm"},
        augment={},
        min_lr=lambda lr: 0.0,
    ),
}


DEFAULT_BACKBONE = "tf_efficientnetv2_l.in21k"
#: How often the cosine moves.
COSINE_STEPS = ("epoch", "batch")


def setting(default: Any, help: str, choices: Sequence[str] | None = None) -> Any:
    """A `TrainConfig` field that is also an `agbm train` flag: its help text and, for a word,
    the words allowed. The CLI makes its flags from these fields (with their types from the
    annotations), and `check_config` enforces the same choices for YAML files."""
    return field(
        default=default, metadata={"help": help, "choices": tuple(choices) if choices else None}
    )


@dataclass
class TrainConfig:
    """Everything a training run depends on; saved in every checkpoint. A field made by
    `setting` is an `agbm train` flag too; the others (`decoder_channels`, `augment`,
    `model_options`) are set in YAML files only."""

    data: str = setting("", "data root (with train_features/) or an `agbm prepare` cache")
    out: str = setting("", "run directory")
    #: None: the winner's `DEFAULT_BACKBONE`, or with `init` the checkpoint's.
    backbone: str | None = setting(
        None, f"timm encoder name (default {DEFAULT_BACKBONE}; with --init the checkpoint's)"
    )
    #: "imagenet": timm's pretrained weights (the winner started from ImageNet-21k); "none":
    #: random init; else a local weights file. True and False also work (YAML booleans).
    pretrained: bool | str = setting(
        "imagenet",
        "'imagenet' for timm's pretrained weights, 'none' for random init, or a weights file",
    )
    #: "winner" (the winner's exact recipe) or "agbm"; the settings below that are None
    #: take the recipe's value (`RECIPES`), a value given overrides it.
    recipe: str = setting(
        "winner",
        "winner: the BioMassters winner's exact recipe; agbm: agbm's variant "
        "(docs/recipes.md). Settings below left unset take the recipe's value",
        choices=RECIPES,
    )
    temporal: str | None = setting(
        None,
        "month fusion (default: the recipe's, winner pool, agbm attention)",
        choices=TEMPORAL_KINDS,
    )
    decoder_channels: list[int] | None = None
    epochs: int = setting(800, "epochs to train")
    batch_size: int = setting(8, "chips per batch per process")
    #: Train on random `image_size` x `image_size` crops of the chips (0: whole chips).
    image_size: int = setting(
        0, "train on random crops of this side, a multiple of 32 (0: whole chips)"
    )
    lr: float = setting(1e-3, "peak learning rate")
    min_lr: float | None = setting(
        None,
        "learning rate at the end of the cosine (default: the recipe's, winner "
        "max(lr / 10, 5e-5), agbm 0)",
    )
    #: The cosine moves once per "epoch" (the winner) or once per "batch".
    cosine_step: str | None = setting(
        None,
        "the cosine moves once per epoch or per batch (default: the recipe's, winner epoch, "
        "agbm batch)",
        choices=COSINE_STEPS,
    )
    weight_decay: float = setting(1e-2, "AdamW weight decay")
    warmup_epochs: float = setting(0.0, "linear warm-up length")
    clip_grad: float = setting(5.0, "gradient norm clip")
    max_target: float = setting(400.0, "target pixels at or above this are left out of the loss")
    folds: int = setting(10, "number of folds")
    fold: int = setting(0, "held-out fold for validation")
    #: "winner": scikit-learn's KFold(shuffle=True, random_state=314159) over the chip ids in
    #: order, as the winner split; "seeded": a permutation drawn from --seed.
    split: str | None = setting(
        None,
        "folds: winner (its KFold, seed 314159) or seeded (by --seed) (default: the recipe's, "
        "winner winner, agbm seeded)",
        choices=SPLIT_METHODS,
    )
    full: bool = setting(False, "train on all chips, no validation (fine-tuning: with --init)")
    init: str | None = setting(None, "start from this checkpoint's weights")
    amp: str = setting(
        "auto", "mixed precision (auto: bf16 on GPU, off on CPU)", choices=("auto", *AMP_DTYPES)
    )
    channels_last: bool = setting(True, "channels_last memory format")
    compile: bool = setting(
        False, "torch.compile the model for training (faster steps on GPU after a slow first one)"
    )
    #: Loader workers per process; None: the CPUs this process may use, shared among the
    #: processes of the machine, at most 8.
    workers: int | None = setting(
        None,
        "data loader worker processes per process (default: the machine's CPUs shared among "
        "its processes, at most 8)",
    )
    seed: int = setting(0, "random seed")
    augment: dict[str, Any] = field(default_factory=dict)
    #: `TemporalUNet` arguments without a flag of their own (`output_scale`, `output_init`,
    #: `input_conventions`), over the recipe's; YAML files only.
    model_options: dict[str, Any] = field(default_factory=dict)
    tensorboard: bool = setting(False, "also log to TensorBoard in RUN_DIR/tb")


#: The settings that describe the model rather than its training.
MODEL_SETTINGS = ("backbone", "temporal", "decoder_channels", "model_options")


def resolve(config: TrainConfig) -> TrainConfig:
    """`config` with every setting left to the recipe filled in: what checkpoints record, so
    a resumed run compares concrete values. A run from `--init` takes its model settings from
    the checkpoint instead (`adopt_model`)."""
    if config.recipe not in RECIPES:
        raise ValueError(f"--recipe must be one of {', '.join(RECIPES)}, not {config.recipe!r}")
    recipe = RECIPES[config.recipe]
    values = {k: v for k, v in recipe.train.items() if getattr(config, k) is None}
    if config.min_lr is None:
        values["min_lr"] = recipe.min_lr(config.lr)
    values["augment"] = {**recipe.augment, **config.augment}
    if config.init:
        values.pop("temporal", None)
    else:
        values["backbone"] = config.backbone or DEFAULT_BACKBONE
        values["model_options"] = {**recipe.model, **config.model_options}
    return dataclasses.replace(config, **values)


def adopt_model(config: TrainConfig, model: torch.nn.Module) -> TrainConfig:
    """`config` with the model settings of the `--init` checkpoint's `model`; a setting given
    that contradicts the checkpoint is an error (the run would train one model and record
    another)."""
    arch = model.config
    actual = {
        "backbone": arch["backbone"],
        "temporal": arch["temporal"],
        "decoder_channels": list(arch["decoder_channels"]),
        "model_options": {k: arch[k] for k in ("output_scale", "output_init")}
        | {"input_conventions": model.conventions.to_dict()},
    }
    given = {k: getattr(config, k) for k in MODEL_SETTINGS if getattr(config, k)}
    if "decoder_channels" in given:
        given["decoder_channels"] = list(given["decoder_channels"])
    options = given.pop("model_options", {})
    conflicts = [f"--{k.replace('_', '-')} {v}" for k, v in given.items() if v != actual[k]]
    for key, value in options.items():
        same = (
            InputConventions.from_config(value) == model.conventions
            if key == "input_conventions"
            else float(value) == actual["model_options"][key]
        )
        if not same:
            conflicts.append(f"model_options {key}: {value}")
    if conflicts:
        raise ValueError(
            f"--init {config.init} holds a {arch['backbone']} model (temporal "
            f"{arch['temporal']}, decoder {actual['decoder_channels']}); it contradicts "
            f"{', '.join(conflicts)}: drop those options, or train without --init"
        )
    return dataclasses.replace(config, **actual)


def encoder_weights(pretrained: bool | str) -> bool | str:
    """`--pretrained` as `TemporalUNet` takes it: "imagenet" -> True, "none" -> False, a path
    as it is."""
    if isinstance(pretrained, bool):
        return pretrained
    return {"imagenet": True, "none": False}.get(pretrained, pretrained)


def read_config_file(path: Path | str) -> dict[str, Any]:
    """The settings of a YAML file (keys as `TrainConfig`'s fields), checked: an unknown key
    is a typo that would otherwise be trained without."""
    values = yaml.safe_load(Path(path).read_text()) or {}
    if not isinstance(values, dict):
        raise ValueError(f"{path}: not a YAML mapping of settings")
    unknown = set(values) - {f.name for f in dataclasses.fields(TrainConfig)}
    if unknown:
        raise ValueError(f"{path}: unknown key(s) {', '.join(sorted(unknown))}")
    return values


def check_config(config: TrainConfig) -> None:
    """Fail on bad options before any data is read or any model is built."""
    import timm

    if not config.data:
        raise ValueError("--data ROOT is required: the data root or cache to train on")
    if not Path(config.data).is_dir():
        raise DataError(f"data root {config.data!r} does not exist or is not a directory")
    if not config.out:
        raise ValueError("--out RUN_DIR is required")
    if config.backbone is not None and not timm.is_model(config.backbone):
        raise ValueError(f"unknown timm backbone {config.backbone!r} (see timm.list_models())")
    if not config.full:
        check_fold(config.folds, config.fold)
    if config.tensorboard and importlib.util.find_spec("tensorboard") is None:
        raise ValueError("--tensorboard needs the tensorboard package: pip install tensorboard")
    if config.epochs < 1 or config.batch_size < 1:
        raise ValueError("--epochs and --batch-size must be positive")
    for item in dataclasses.fields(TrainConfig):
        allowed, value = item.metadata.get("choices"), getattr(config, item.name)
        if allowed and value is not None and value not in allowed:
            raise ValueError(
                f"--{item.name.replace('_', '-')} must be {' or '.join(allowed)}, not {value!r}"
            )
    if not config.lr > 0 or not 0 <= config.min_lr <= config.lr:
        raise ValueError(
            f"need --lr > 0 and 0 <= --min-lr <= --lr, got {config.lr}, {config.min_lr}"
        )
    if config.image_size < 0 or config.image_size % 32:
        raise ValueError(f"--image-size must be a multiple of 32, got {config.image_size}")
    options = {f.name for f in dataclasses.fields(Augment)} - {"crop"}
    unknown = sorted(set(config.augment) - options)
    if unknown:
        raise ValueError(
            f"unknown augment option(s) {', '.join(unknown)}; known: {', '.join(sorted(options))}"
        )
    unknown = sorted(set(config.model_options) - set(RECIPES["agbm"].model))
    if unknown:
        raise ValueError(
            f"unknown model option(s) {', '.join(unknown)}; known: "
            f"{', '.join(sorted(RECIPES['agbm'].model))}"
        )
