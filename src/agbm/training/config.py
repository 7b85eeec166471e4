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
import math
import re
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from agbm.choices import AMP_NAMES, TEMPORAL_KINDS
from agbm.data.conventions import InputConventions
from agbm.errors import ConfigError, DataError
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


#: The words each word setting takes (its `Literal` annotation lists them for the checks).
RecipeName = Literal[tuple(RECIPES)]  # type: ignore[valid-type]
TemporalKind = Literal[TEMPORAL_KINDS]  # type: ignore[valid-type]
CosineStep = Literal[COSINE_STEPS]  # type: ignore[valid-type]
SplitMethod = Literal[SPLIT_METHODS]  # type: ignore[valid-type]
AmpName = Literal[("auto", *AMP_NAMES)]  # type: ignore[valid-type]
LabelWeights = Literal["none", "se"]


def setting(default: Any, help: str) -> Any:
    """A `TrainConfig` field that is also an `agbm train` flag, with its help text. The CLI
    makes its flags from these fields, their types and choices from the annotations, and
    `typed_settings` converts and checks a YAML file's values by the same annotations."""
    return field(default=default, metadata={"help": help})


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
    recipe: RecipeName = setting(
        "winner",
        "winner: the BioMassters winner's exact recipe; agbm: agbm's variant "
        "(docs/recipes.md). Settings below left unset take the recipe's value",
    )
    temporal: TemporalKind | None = setting(
        None,
        "month fusion (default: the recipe's, winner pool, agbm attention)",
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
    cosine_step: CosineStep | None = setting(
        None,
        "the cosine moves once per epoch or per batch (default: the recipe's, winner epoch, "
        "agbm batch)",
    )
    weight_decay: float = setting(1e-2, "AdamW weight decay")
    warmup_epochs: float = setting(0.0, "linear warm-up length")
    clip_grad: float = setting(5.0, "gradient norm clip")
    max_target: float = setting(400.0, "target pixels at or above this are left out of the loss")
    folds: int = setting(10, "number of folds")
    fold: int = setting(0, "held-out fold for validation")
    #: "winner": scikit-learn's KFold(shuffle=True, random_state=314159) over the chip ids in
    #: order, as the winner split; "seeded": a permutation drawn from --seed.
    split: SplitMethod | None = setting(
        None,
        "folds: winner (its KFold, seed 314159) or seeded (by --seed) (default: the recipe's, "
        "winner winner, agbm seeded)",
    )
    full: bool = setting(False, "train on all chips, no validation (fine-tuning: with --init)")
    init: str | None = setting(None, "start from this checkpoint's weights")
    amp: AmpName = setting("auto", "mixed precision (auto: bf16 on GPU, off on CPU)")
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
    #: Sparse labels to place on the chips by their grids (`agbm labels`' file); chips that
    #: carry labels of their own (`train_labels/`, from `agbm chips`) need none.
    labels: str | None = setting(
        None, "labels file (agbm labels) to train from points on any georeferenced chips"
    )
    label_weights: LabelWeights = setting(
        "none", "weight of each label in the footprint loss: none, or se (1 / agbd_se^2)"
    )
    shift_loss: bool = setting(
        False, "each footprint takes the best of its nine one-pixel shifts (GEDI geolocation)"
    )


#: The settings that describe the model rather than its training.
MODEL_SETTINGS = ("backbone", "temporal", "decoder_channels", "model_options")


def resolve(config: TrainConfig) -> TrainConfig:
    """`config` with everything left open settled, the one step between the settings given
    and the run: the recipe's values for settings left unset, the loader workers for this
    machine, and with `init` the model settings of its checkpoint (`adopt_model`). What
    checkpoints record, so that a resumed run compares concrete values; resolving twice
    changes nothing."""
    from agbm.models.checkpoint import checked_model_config, read_checkpoint
    from agbm.runtime import default_workers

    if config.recipe not in RECIPES:
        raise ValueError(f"`recipe` must be one of {', '.join(RECIPES)}, not {config.recipe!r}")
    recipe = RECIPES[config.recipe]
    values = {k: v for k, v in recipe.train.items() if getattr(config, k) is None}
    if config.min_lr is None:
        values["min_lr"] = recipe.min_lr(config.lr)
    if config.workers is None:
        values["workers"] = default_workers()
    values["augment"] = {**recipe.augment, **config.augment}
    if config.init:
        values.pop("temporal", None)
        arch = checked_model_config(read_checkpoint(config.init), config.init)
        config = adopt_model(config, arch)
    else:
        values["backbone"] = config.backbone or DEFAULT_BACKBONE
        values["model_options"] = {**recipe.model, **config.model_options}
    return dataclasses.replace(config, **values)


def adopt_model(config: TrainConfig, arch: Mapping[str, Any]) -> TrainConfig:
    """`config` with the model settings of the `--init` checkpoint's `model_config` (`arch`);
    a setting given that contradicts the checkpoint is an error (the run would train one
    model and record another)."""
    conventions = InputConventions.from_config(arch.get("input_conventions", "agbm"))
    actual = {
        "backbone": arch["backbone"],
        "temporal": arch["temporal"],
        "decoder_channels": list(arch["decoder_channels"]),
        "model_options": {k: arch[k] for k in ("output_scale", "output_init")}
        | {"input_conventions": conventions.to_dict()},
    }
    given = {k: getattr(config, k) for k in MODEL_SETTINGS if getattr(config, k)}
    if "decoder_channels" in given:
        given["decoder_channels"] = list(given["decoder_channels"])
    options = given.pop("model_options", {})
    conflicts = [f"`{k}` {v}" for k, v in given.items() if v != actual[k]]
    for key, value in options.items():
        same = (
            InputConventions.from_config(value) == conventions
            if key == "input_conventions"
            else float(value) == actual["model_options"][key]
        )
        if not same:
            conflicts.append(f"model_options {key}: {value}")
    if conflicts:
        raise ValueError(
            f"`init` {config.init} holds a {arch['backbone']} model (temporal "
            f"{arch['temporal']}, decoder {actual['decoder_channels']}); it contradicts "
            f"{', '.join(conflicts)}: drop those options, or train without `init`"
        )
    return dataclasses.replace(config, **actual)


def encoder_weights(pretrained: bool | str) -> bool | str:
    """`--pretrained` as `TemporalUNet` takes it: "imagenet" -> True, "none" -> False, a path
    as it is."""
    if isinstance(pretrained, bool):
        return pretrained
    return {"imagenet": True, "none": False}.get(pretrained, pretrained)


#: Keys a settings file may hold besides `TrainConfig`'s: the flags of `agbm train` that are
#: not settings of the run (what to do with a folder that holds one), and their types.
RUN_OPTIONS: dict[str, type] = {"resume": bool, "overwrite": bool, "no_augment": bool}


def read_config_file(path: Path | str) -> tuple[dict[str, Any], dict[str, bool]]:
    """The settings of a YAML file (keys as `TrainConfig`'s fields) converted to their
    fields' types, and its run options (`RUN_OPTIONS`); an unknown key (a typo that would
    otherwise be trained without), a malformed file or a value of the wrong type is a
    one-line `ConfigError` naming the file and the key."""
    try:
        values = yaml.safe_load(Path(path).read_text()) or {}
    except yaml.YAMLError as err:
        where = getattr(err, "problem_mark", None)
        line = f" at line {where.line + 1}" if where is not None else ""
        problem = getattr(err, "problem", None) or err
        raise ConfigError(f"{path}: not valid YAML{line} ({problem})") from None
    if not isinstance(values, dict):
        raise ConfigError(f"{path}: not a YAML mapping of settings")
    unknown = set(values) - {f.name for f in dataclasses.fields(TrainConfig)} - set(RUN_OPTIONS)
    if unknown:
        raise ConfigError(f"{path}: unknown key(s) {', '.join(sorted(map(str, unknown)))}")
    options = {k: values.pop(k) for k in RUN_OPTIONS if k in values}
    for key, value in options.items():
        if not isinstance(value, bool):
            raise ConfigError(f"{path}: {key}: {value!r} is not true or false")
    return typed_settings(values, str(path)), options


def typed_settings(values: Mapping[str, Any], source: str | None = None) -> dict[str, Any]:
    """`values` (a subset of `TrainConfig`'s fields) converted to their fields' types by
    jsonargparse: `1e-3` (a string to PyYAML) becomes 0.001, "false" False, "10" 10; a value
    its type cannot hold (`epochs: 1.5`, `backbone: 5`, a word outside a `Literal`) is
    refused in one line naming the key: a `ConfigError` naming the file `source`, or for
    settings given in code (no `source`) a `ValueError`."""
    from jsonargparse import ArgumentParser

    parser = ArgumentParser(exit_on_error=False)
    parser.add_class_arguments(TrainConfig, nested_key="train", fail_untyped=True)
    try:
        parsed = parser.parse_object({"train": dict(values)}, defaults=False)
    except Exception as err:  # jsonargparse's ArgumentError, with the key in its text
        found = re.search(r'key "train\.(\w+)"', str(err))
        key = found[1] if found else "?"
        hint = typing.get_type_hints(TrainConfig).get(key)
        expected = getattr(hint, "__name__", None) or str(hint).replace("typing.", "")
        message = f"{key}: {values.get(key)!r} is not a valid {expected}"
        if source is None:
            raise ValueError(f"setting {message}") from None
        raise ConfigError(f"{source}: {message}") from None
    return {k: parsed.train[k] for k in values}


def check_config(config: TrainConfig) -> None:
    """Fail on bad options before any data is read or any model is built."""
    import timm

    if not config.data:
        raise ValueError("`data` ROOT is required: the data root or cache to train on")
    if not Path(config.data).is_dir():
        raise DataError(f"data root {config.data!r} does not exist or is not a directory")
    if not config.out:
        raise ValueError("`out` RUN_DIR is required")
    if config.backbone is not None and not timm.is_model(config.backbone):
        raise ValueError(f"unknown timm backbone {config.backbone!r} (see timm.list_models())")
    if not config.full:
        check_fold(config.folds, config.fold)
    if config.tensorboard and importlib.util.find_spec("tensorboard") is None:
        raise ValueError("`tensorboard` needs the tensorboard package: pip install tensorboard")
    if config.epochs < 1 or config.batch_size < 1:
        raise ValueError("`epochs` and `batch_size` must be positive")
    typed_settings(dataclasses.asdict(config))  # every value of its field's type and words
    if not (math.isfinite(config.lr) and config.lr > 0) or not 0 <= config.min_lr <= config.lr:
        raise ValueError(
            f"need `lr` > 0 and 0 <= `min_lr` <= `lr`, got {config.lr}, {config.min_lr}"
        )
    if config.image_size < 0 or config.image_size % 32:
        raise ValueError(f"`image_size` must be a multiple of 32, got {config.image_size}")
    from agbm.training.augment import Augment

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
