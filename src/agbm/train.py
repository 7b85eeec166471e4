"""`agbm train`: the winning recipe, on one CPU or many GPUs (torchrun + DDP), resumable.

Both recipes (`--recipe`, docs/recipes.md): RMSE per chip over target pixels below 400
t/ha; AdamW, lr 1e-3, weight decay 1e-2 (none on biases and norms), gradient clipping at
norm 5; cosine annealing over the run; flips, 90-degree turns, a +-45 degree rotation with
reflected borders (p 0.7) and month dropout; validation on one of 10 folds; then
fine-tuning on all chips from the fold's checkpoint (`--full --init CKPT`). `winner` (the
default) is the BioMassters winner's exact recipe: attention pooling over months, no output
scaling, the winner's input conventions, a cosine stepped per epoch down to a tenth of the
learning rate, the winner's fold split and rotation-centre jitter. `agbm` is agbm's variant:
self-attention over months, a scaled output, clipped inputs with absent months masked.

Reproducibility is by construction: the data order depends only on (seed, epoch) and each
chip's augmentation only on (seed, epoch, chip id), so a run resumed from `last.pt` ends
with the same weights as one that was never interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import dataclasses
import importlib.util
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import yaml
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader
from torch.utils.data.distributed import DistributedSampler
from tqdm import tqdm

from agbm.augment import Augment, chip_generator
from agbm.cache import open_source
from agbm.data import ChipDataset, DataError, InputConventions, model_input
from agbm.io import output_folder, remove_stale_temporaries, replacing, save_atomic
from agbm.metrics import chip_rmse, rmse_loss
from agbm.model import TEMPORAL_KINDS, build_model, load_model, read_checkpoint
from agbm.plots import plot_history
from agbm.runtime import (
    AMP_DTYPES,
    Runtime,
    autocast_dtype,
    default_workers,
    init_runtime,
)

METRICS_FIELDS = ("epoch", "train_loss", "val_rmse", "lr", "seconds", "chips_per_s")


@dataclass
class TrainConfig:
    """Everything a training run depends on; saved in every checkpoint."""

    data: str = ""
    out: str = ""
    #: None: the winner's `DEFAULT_BACKBONE`, or with `init` the checkpoint's.
    backbone: str | None = None
    #: "imagenet": timm's pretrained weights (the winner started from ImageNet-21k); "none":
    #: random init; else a local weights file. True and False also work (YAML booleans).
    pretrained: bool | str = "imagenet"
    #: "winner" (the winner's exact recipe) or "agbm"; the settings below that are None
    #: take the recipe's value (`RECIPES`), a value given overrides it.
    recipe: str = "winner"
    temporal: str | None = None
    decoder_channels: list[int] | None = None
    epochs: int = 800
    batch_size: int = 8
    #: Train on random `image_size` x `image_size` crops of the chips (0: whole chips).
    image_size: int = 0
    lr: float = 1e-3
    min_lr: float | None = None
    #: The cosine moves once per "epoch" (the winner) or once per "batch".
    cosine_step: str | None = None
    weight_decay: float = 1e-2
    warmup_epochs: float = 0.0
    clip_grad: float = 5.0
    max_target: float = 400.0
    folds: int = 10
    fold: int = 0
    #: "winner": scikit-learn's KFold(shuffle=True, random_state=314159) over the chip ids in
    #: order, as the winner split; "seeded": a permutation drawn from --seed.
    split: str | None = None
    full: bool = False
    init: str | None = None
    amp: str = "auto"
    channels_last: bool = True
    compile: bool = False
    #: Loader workers per process; None: the CPUs this process may use, shared among the
    #: processes of the machine, at most 8.
    workers: int | None = None
    seed: int = 0
    augment: dict[str, Any] = field(default_factory=dict)
    #: `TemporalUNet` arguments without a flag of their own (`output_scale`, `output_init`,
    #: `input_conventions`), over the recipe's; YAML files only.
    model_options: dict[str, Any] = field(default_factory=dict)
    tensorboard: bool = False


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


# --- splits and data -------------------------------------------------------------------------


def check_fold(folds: int, fold: int) -> None:
    if folds < 2:
        raise ValueError(f"--folds must be at least 2, got {folds}")
    if not 0 <= fold < folds:
        raise ValueError(f"--fold {fold} is out of range for {folds} folds (0..{folds - 1})")


#: The winner's KFold random_state.
WINNER_SPLIT_SEED = 314159


def fold_split(
    chips: list[str], folds: int, fold: int, seed: int = 0, method: str = "seeded"
) -> tuple[list, list]:
    """(train, validation) chip ids: a shuffled K-fold partition by chip.

    "seeded" deals a permutation drawn from `seed` into the folds. "winner" is scikit-learn's
    `KFold(folds, shuffle=True, random_state=314159)` (NumPy's legacy generator shuffles the
    indices, the first `n % folds` folds take one chip more, each fold is a contiguous run of
    the shuffled order), so that fold 0 validates on the winner's chips.
    """
    check_fold(folds, fold)
    if method == "winner":
        order = np.arange(len(chips))
        np.random.RandomState(WINNER_SPLIT_SEED).shuffle(order)
        sizes = np.full(folds, len(chips) // folds)
        sizes[: len(chips) % folds] += 1
        start = int(sizes[:fold].sum())
        held = order[start : start + sizes[fold]]
    elif method == "seeded":
        held = np.random.default_rng(seed).permutation(len(chips))[fold::folds]
    else:
        raise ValueError(f"--split must be winner or seeded, not {method!r}")
    held_out = {chips[i] for i in held}
    return [c for c in chips if c not in held_out], [c for c in chips if c in held_out]


# --- optimisation ----------------------------------------------------------------------------


def build_optimizer(model: torch.nn.Module, lr: float, weight_decay: float) -> torch.optim.AdamW:
    """AdamW with weight decay on weight matrices and kernels only (not biases, norms, embeddings
    of one dimension), as decaying those only pulls scales and offsets towards zero."""
    decay, no_decay = [], []
    for param in model.parameters():
        if param.requires_grad:
            (decay if param.ndim > 1 else no_decay).append(param)
    groups = [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=lr)


def build_scheduler(
    optimizer: torch.optim.Optimizer,
    total_steps: int,
    warmup_steps: int,
    min_ratio: float,
    every: int = 1,
) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up, then cosine annealing to `min_ratio` x lr. Stepped every batch; the
    cosine moves every `every` batches (an epoch's worth: PyTorch's CosineAnnealingLR
    stepped per epoch, as the winner's was)."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        step -= (step - warmup_steps) % every
        progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
        return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def encoder_weights(pretrained: bool | str) -> bool | str:
    """`--pretrained` as `TemporalUNet` takes it: "imagenet" -> True, "none" -> False, a path
    as it is."""
    if isinstance(pretrained, bool):
        return pretrained
    return {"imagenet": True, "none": False}.get(pretrained, pretrained)


# --- checkpoints -----------------------------------------------------------------------------


def rng_state() -> dict[str, Any]:
    """The global torch RNG states (augmentation draws from its own seeded generators)."""
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# --- the run ---------------------------------------------------------------------------------


#: What `Trainer.state` writes and `Trainer.resume` needs.
RESUME_KEYS = (
    "model_config", "model", "optimizer", "scheduler", "scaler", "epoch", "step", "best", "rng",
    "train_config",
)  # fmt: skip


#: What `best.pt` keeps of `Trainer.state`: the model and how it was trained, no optimiser.
BEST_KEYS = ("model_config", "model", "epoch", "best", "train_config")


class Trainer:
    """One training run: builds everything from a `TrainConfig`, then `fit()`s."""

    def __init__(self, config: TrainConfig, runtime: Runtime) -> None:
        config = resolve(config)
        if config.workers is None:
            config = dataclasses.replace(config, workers=default_workers())
        self.config, self.rt = config, runtime
        self.out = Path(config.out)
        train_ids, val_ids = self._split()
        self.augment = Augment(crop=config.image_size, **config.augment)
        # Raw months: the loaders only read; normalisation and augmentation run on the device.
        self.train_set = ChipDataset(config.data, "train", train_ids, raw=True)
        self.val_set = ChipDataset(config.data, "train", val_ids, raw=True) if val_ids else None
        if config.batch_size * runtime.world > len(self.train_set):
            raise ValueError(
                f"batch size {config.batch_size} x {runtime.world} process(es) exceeds the "
                f"{len(self.train_set)} training chips"
            )
        if config.image_size:
            size = tuple(self.train_set[0]["s1"].shape[-2:])  # one chip read: before any work
            if config.image_size > min(size):
                raise ValueError(
                    f"--image-size {config.image_size} exceeds the chips' {size[0]}x{size[1]}"
                )
        torch.manual_seed(config.seed)
        self.model = self._build_model().to(runtime.device)
        #: Inputs are made as the model's checkpoint says (an `--init` model keeps its own).
        self.conventions = self.model.conventions
        if config.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.amp_dtype = autocast_dtype(config.amp, runtime.device)
        self.scaler = torch.amp.GradScaler(
            runtime.device.type, enabled=self.amp_dtype == torch.float16
        )
        self.ddp = (
            DistributedDataParallel(
                self.model,
                device_ids=[runtime.device.index] if runtime.device.type == "cuda" else None,
            )
            if runtime.world > 1
            else self.model
        )
        #: What the training step calls; checkpoints keep saving the plain `self.model`.
        self.forward = torch.compile(self.ddp) if config.compile else self.ddp
        self.sampler = DistributedSampler(
            self.train_set,
            runtime.world,
            runtime.rank,
            shuffle=True,
            seed=config.seed,
            drop_last=True,
        )
        self.loader = DataLoader(
            self.train_set,
            batch_size=config.batch_size,
            sampler=self.sampler,
            num_workers=config.workers,
            drop_last=True,
            pin_memory=runtime.device.type == "cuda",
            persistent_workers=config.workers > 0,  # no worker start-up every epoch
        )
        steps_per_epoch = len(self.loader)
        self.optimizer = build_optimizer(self.model, config.lr, config.weight_decay)
        self.scheduler = build_scheduler(
            self.optimizer,
            config.epochs * steps_per_epoch,
            round(config.warmup_epochs * steps_per_epoch),
            config.min_lr / config.lr,
            every=steps_per_epoch if config.cosine_step == "epoch" else 1,
        )
        self.epoch, self.step, self.best = 0, 0, math.inf

    def _split(self) -> tuple[list[str], list[str]]:
        chips = open_source(self.config.data, "train").chip_ids()
        if self.config.full:
            return chips, []
        train_ids, val_ids = fold_split(
            chips, self.config.folds, self.config.fold, self.config.seed, self.config.split
        )
        if not val_ids:
            raise ValueError(
                f"fold {self.config.fold} of {self.config.folds} holds no chip: there are only "
                f"{len(chips)} training chips (use fewer --folds)"
            )
        return train_ids, val_ids

    def _build_model(self) -> torch.nn.Module:
        if self.config.init:
            model = load_model(self.config.init)
            self.config = adopt_model(self.config, model)
            return model
        arch = {
            "backbone": self.config.backbone,
            "pretrained": encoder_weights(self.config.pretrained),
            "temporal": self.config.temporal,
            **self.config.model_options,
        }
        if self.config.decoder_channels:
            arch["decoder_channels"] = tuple(self.config.decoder_channels)
        return build_model(arch)

    # checkpoints

    def state(self) -> dict[str, Any]:
        return {
            "model_config": self.model.config,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "epoch": self.epoch,
            "step": self.step,
            "best": self.best,
            "rng": rng_state(),
            "train_config": dataclasses.asdict(self.config),
        }

    def resume(self, path: Path) -> None:
        """Continue from a checkpoint written by `state()` by a run with the same settings."""
        ckpt = read_checkpoint(path, RESUME_KEYS)
        if not isinstance(ckpt["train_config"], dict):
            raise ValueError(f"{path}: its train_config is not a dict")
        check_same_run(ckpt["train_config"], dataclasses.asdict(self.config), path)
        self.model.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.scheduler.load_state_dict(ckpt["scheduler"])
        self.scaler.load_state_dict(ckpt["scaler"])
        self.epoch, self.step, self.best = ckpt["epoch"], ckpt["step"], ckpt["best"]
        set_rng_state(ckpt["rng"])

    # loops

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.rt.device.type, dtype=self.amp_dtype)

    def _to_device(self, batch: dict[str, Any]) -> tuple[torch.Tensor, ...]:
        image, present = model_input(batch, self.rt.device, self.conventions)
        target = batch["target"].to(self.rt.device, non_blocking=True)
        return image, present, target

    def _augmented(self, batch: dict[str, Any], *tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Augment a batch already on the device; the random choices come from the CPU copy
        of `present`, so drawing them never waits for the device."""
        size = tuple(batch["s1"].shape[-2:])
        attended = self.conventions.attended(batch["present"])
        draws = [
            self.augment.draw(present, size, chip_generator(self.config.seed, self.epoch, chip))
            for chip, present in zip(batch["chip_id"], attended, strict=True)
        ]
        return self.augment(*tensors, draws)

    def train_step(self, batch: dict[str, Any]) -> torch.Tensor:
        """One optimisation step on a loader batch (normalised and augmented on the device);
        returns the detached loss without waiting for it."""
        image, present, target = self._augmented(batch, *self._to_device(batch))
        with self._autocast():
            pred = self.forward(image, present)
        loss = rmse_loss(pred, target, self.config.max_target)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.unscale_(self.optimizer)
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.clip_grad)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        self.step += 1
        return loss.detach()

    def train_epoch(self) -> float:
        """One pass over the training chips; returns the mean loss over all ranks."""
        self.ddp.train()
        self.sampler.set_epoch(self.epoch)
        total = torch.zeros(2, device=self.rt.device)
        bar = tqdm(
            self.loader,
            desc=f"epoch {self.epoch + 1}/{self.config.epochs}",
            unit="batch",
            disable=not self.rt.main,
            leave=False,
        )
        for batch in bar:
            loss = self.train_step(batch)
            total += torch.stack([loss, torch.ones((), device=self.rt.device)])
            if self.rt.main and self.step % 10 == 0:
                bar.set_postfix(loss=f"{(total[0] / total[1]).item():.2f}")
        if self.rt.world > 1:
            dist.all_reduce(total)
        return (total[0] / total[1]).item()

    @torch.no_grad()
    def validate(self) -> float:
        """The challenge metric (average per-chip RMSE, all pixels) on the held-out fold."""
        if self.rt.world > 1:
            # Each rank's batch-norm statistics moved with its own last batches: validate, on
            # every rank, the model that rank 0 saves.
            for buffer in self.model.buffers():
                dist.broadcast(buffer, 0)
        self.model.eval()
        indices = list(range(self.rt.rank, len(self.val_set), self.rt.world))
        loader = DataLoader(
            torch.utils.data.Subset(self.val_set, indices),
            batch_size=self.config.batch_size,
            num_workers=self.config.workers,
            pin_memory=self.rt.device.type == "cuda",
        )
        total = torch.zeros(2, dtype=torch.float64, device=self.rt.device)
        for batch in loader:
            image, present, target = self._to_device(batch)
            with self._autocast():
                pred = self.model(image, present).float().clamp(min=0)
            rmse = chip_rmse(pred.cpu(), target.cpu())
            total += torch.tensor(
                [rmse.sum(), len(rmse)], dtype=torch.float64, device=self.rt.device
            )
        if self.rt.world > 1:
            dist.all_reduce(total)
        return (total[0] / total[1]).item()

    def describe(self) -> str:
        """One line on what this run trains, where and on what."""
        config, amp = self.config, self.amp_dtype
        params = sum(p.numel() for p in self.model.parameters()) / 1e6
        held = "" if config.full else f" (fold {config.fold} of {config.folds})"
        where = f"{self.rt.device}" + (f" x {self.rt.world} processes" if self.rt.world > 1 else "")
        return (
            f"training {config.backbone} ({params:.1f} M parameters, recipe {config.recipe}) on "
            f"{where}, amp {str(amp).removeprefix('torch.') if amp else 'off'}: "
            f"{len(self.train_set)} training chips, "
            f"{len(self.val_set) if self.val_set else 0} validation chips{held}, "
            f"{config.workers} loader workers per process"
        )

    def fit(self) -> None:
        """Train until `epochs`, checkpointing and logging after every epoch."""
        if self.rt.main:
            tqdm.write(self.describe())
            self.out.mkdir(parents=True, exist_ok=True)
            _trim_metrics(self.out / "metrics.csv", self.epoch)
        while self.epoch < self.config.epochs:
            start = time.perf_counter()
            loss = self.train_epoch()
            seconds = time.perf_counter() - start
            val = self.validate() if self.val_set is not None else math.nan
            self.epoch += 1
            row = {
                "epoch": self.epoch,
                "train_loss": f"{loss:.4f}",
                "val_rmse": f"{val:.4f}",
                "lr": f"{self.scheduler.get_last_lr()[0]:.3e}",
                "seconds": f"{seconds:.2f}",
                "chips_per_s": f"{len(self.sampler) * self.rt.world / seconds:.2f}",
            }
            if self.rt.main:
                self._log(row, val)
        if self.rt.world > 1:
            dist.barrier()

    def _log(self, row: dict[str, Any], val: float) -> None:
        """Record a finished epoch. `last.pt` goes last: a run killed before it redoes the
        epoch on `--resume`, rewriting the metrics row and `best.pt` it may have written."""
        improved = not math.isnan(val) and val < self.best
        if improved:
            self.best = val
        _append_metrics(self.out / "metrics.csv", row)
        state = self.state()
        if improved or (math.isnan(val) and self.epoch == self.config.epochs):
            # The model for predict and --init: without the optimiser's state (2/3 of last.pt).
            save_atomic({k: state[k] for k in BEST_KEYS}, self.out / "best.pt")
        save_atomic(state, self.out / "last.pt")
        plot_history(self.out / "metrics.csv", self.out / "loss.png")
        if self.config.tensorboard:
            self._tensorboard(row)
        tqdm.write(
            f"epoch {row['epoch']:>4}  loss {row['train_loss']}  val RMSE {row['val_rmse']}  "
            f"lr {row['lr']}  {row['chips_per_s']} chips/s" + ("  *best*" if improved else "")
        )

    def _tensorboard(self, row: dict[str, Any]) -> None:
        if not hasattr(self, "_writer"):
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(str(self.out / "tb"))
        for key in ("train_loss", "val_rmse", "lr", "chips_per_s"):
            self._writer.add_scalar(key, float(row[key]), self.epoch)
        self._writer.flush()


def _append_metrics(path: Path, row: dict[str, Any]) -> None:
    new = not path.exists()
    with path.open("a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=METRICS_FIELDS)
        if new:
            writer.writeheader()
        writer.writerow(row)


def _trim_metrics(path: Path, epoch: int) -> None:
    """Drop rows past `epoch` (a resumed run redoes them) so the log never has duplicates;
    rewritten under a temporary name, so a kill never loses the rows kept."""
    if not path.exists():
        return
    with path.open(newline="") as f:
        rows = [r for r in csv.DictReader(f) if int(r["epoch"]) <= epoch]
    with replacing(path) as tmp, tmp.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=METRICS_FIELDS)
        writer.writeheader()
        writer.writerows(rows)


#: Settings a resumed run may change: where things are and how they are computed, not what.
_RESUMABLE_CHANGES = frozenset({"data", "out", "workers", "tensorboard", "compile"})


def check_same_run(saved: dict[str, Any], current: dict[str, Any], path: Path) -> None:
    """Refuse to resume a checkpoint with other settings: the result would be neither run.
    A setting the checkpoint predates counts as its default; one that predates recipes was
    written by the agbm recipe."""
    recipe = saved.get("recipe", "agbm")
    saved = {**dataclasses.asdict(resolve(TrainConfig(recipe=recipe))), **saved}
    changed = sorted(
        k
        for k in saved.keys() | current.keys()
        if k not in _RESUMABLE_CHANGES and saved.get(k) != current.get(k)
    )
    if changed:
        detail = ", ".join(f"{k}: {saved.get(k)!r} -> {current.get(k)!r}" for k in changed)
        raise ValueError(
            f"{path} was written by a run with other settings ({detail}); resume with the same "
            "options, or start a new run from its weights with --init"
        )


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
    if config.amp not in ("auto", *AMP_DTYPES):
        raise ValueError(f"--amp must be auto, bf16, fp16 or off, not {config.amp!r}")
    if config.epochs < 1 or config.batch_size < 1:
        raise ValueError("--epochs and --batch-size must be positive")
    for name in ("cosine_step", "split"):
        allowed = _CHOICES[name]
        if getattr(config, name) not in allowed:
            raise ValueError(
                f"--{name.replace('_', '-')} must be {' or '.join(allowed)}, "
                f"not {getattr(config, name)!r}"
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


#: What a run writes into its directory (besides TensorBoard's `tb/`).
RUN_FILES = ("metrics.csv", "loss.png", "best.pt", "last.pt")


def existing_run(out: Path) -> str | None:
    """A one-line account of the run in `out` (epochs done, best validation RMSE), or None
    when `out` holds none."""
    if not any((out / name).exists() for name in RUN_FILES):
        return None
    try:
        with (out / "metrics.csv").open(newline="") as f:
            rows = list(csv.DictReader(f))
        vals = [float(r["val_rmse"]) for r in rows if r["val_rmse"] != "nan"]
        best = f", best val RMSE {min(vals):.2f}" if vals else ""
        return f"{len(rows)} epoch(s) done{best}"
    except (OSError, KeyError, ValueError):
        return "its files, but no readable metrics.csv"


def claim_run_dir(out: Path, resume: bool, overwrite: bool) -> None:
    """Refuse to start over a run that `out` already holds unless told what to do with it:
    continue it (`resume`) or replace it (`overwrite`, which deletes its files now so that
    none of the old run mixes into the new). Temporary files of killed runs are removed."""
    remove_stale_temporaries(out)
    found = existing_run(out)
    if found is None or resume:
        return
    if not overwrite:
        raise ValueError(
            f"{out} already holds a training run ({found}); pass --resume to continue it "
            "or --overwrite to start again (deleting it)"
        )
    for name in RUN_FILES:
        (out / name).unlink(missing_ok=True)


def train(config: TrainConfig, resume: bool = False, overwrite: bool = False) -> Path:
    """Run (or resume) training; returns the run directory."""
    config = resolve(config)
    check_config(config)
    runtime = init_runtime()
    out = Path(config.out)
    # Rank 0 owns the run directory: writable before any work, gone again if nothing came of it.
    with output_folder(out) if runtime.main else contextlib.nullcontext():
        if runtime.main:
            claim_run_dir(out, resume, overwrite)
        if runtime.world > 1:
            dist.barrier()  # no rank reads the directory before rank 0 has claimed it
        trainer = Trainer(config, runtime)
        if resume and (out / "last.pt").exists():
            trainer.resume(out / "last.pt")
            if trainer.epoch >= config.epochs:
                if runtime.main:
                    best = trainer.best
                    text = f", best val RMSE {best:.2f}" if math.isfinite(best) else ""
                    print(f"run complete: {trainer.epoch}/{config.epochs} epochs{text}")
                return out
        trainer.fit()
    return out


# --- command line ----------------------------------------------------------------------------

_FLAGS: dict[str, tuple[type, str]] = {
    "backbone": (
        str,
        f"timm encoder name (default {DEFAULT_BACKBONE}; with --init the checkpoint's)",
    ),
    "pretrained": (
        str,
        "'imagenet' for timm's pretrained weights, 'none' for random init, or a weights file",
    ),
    "recipe": (
        str,
        "winner: the BioMassters winner's exact recipe; agbm: agbm's variant "
        "(docs/recipes.md). Settings below left unset take the recipe's value",
    ),
    "temporal": (str, "month fusion (default: the recipe's, winner pool, agbm attention)"),
    "epochs": (int, "epochs to train"),
    "batch_size": (int, "chips per batch per process"),
    "image_size": (int, "train on random crops of this side, a multiple of 32 (0: whole chips)"),
    "lr": (float, "peak learning rate"),
    "min_lr": (
        float,
        "learning rate at the end of the cosine (default: the recipe's, winner "
        "max(lr / 10, 5e-5), agbm 0)",
    ),
    "cosine_step": (
        str,
        "the cosine moves once per epoch or per batch (default: the recipe's, "
        "winner epoch, agbm batch)",
    ),  # fmt: skip
    "weight_decay": (float, "AdamW weight decay"),
    "warmup_epochs": (float, "linear warm-up length"),
    "clip_grad": (float, "gradient norm clip"),
    "max_target": (float, "target pixels at or above this are left out of the loss"),
    "folds": (int, "number of folds"),
    "fold": (int, "held-out fold for validation"),
    "split": (
        str,
        "folds: winner (its KFold, seed 314159) or seeded (by --seed) (default: "
        "the recipe's, winner winner, agbm seeded)",
    ),  # fmt: skip
    "init": (str, "start from this checkpoint's weights"),
    "amp": (str, "mixed precision (auto: bf16 on GPU, off on CPU)"),
    "workers": (
        int,
        "data loader worker processes per process (default: the machine's CPUs shared among "
        "its processes, at most 8)",
    ),
    "seed": (int, "random seed"),
}


#: The flags that take one of a few words.
_CHOICES: dict[str, list[str]] = {
    "recipe": list(RECIPES),
    "temporal": list(TEMPORAL_KINDS),
    "cosine_step": ["epoch", "batch"],
    "split": ["winner", "seeded"],  # fold_split's methods
    "amp": ["auto", *AMP_DTYPES],
}


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """Defaults, then the `--config` YAML file, then the flags given on the command line."""
    values: dict[str, Any] = {}
    if args.config:
        values.update(yaml.safe_load(Path(args.config).read_text()) or {})
        unknown = set(values) - {f.name for f in dataclasses.fields(TrainConfig)}
        if unknown:
            raise ValueError(f"{args.config}: unknown key(s) {', '.join(sorted(unknown))}")
    for name in (*_FLAGS, "data", "out", "full", "channels_last", "compile", "tensorboard"):
        value = getattr(args, name)
        if value is not None:
            values[name] = str(value) if isinstance(value, Path) else value
    if args.no_augment:
        values["augment"] = {
            "flip_prob": 0.0,
            "rot90": False,
            "rotate_prob": 0.0,
            "month_dropout_prob": 0.0,
        }
    return TrainConfig(**values)


def _run(args: argparse.Namespace) -> int:
    train(config_from_args(args), resume=args.resume, overwrite=args.overwrite)
    return 0


def add_command(subparsers: argparse._SubParsersAction) -> None:
    """`agbm train`."""
    parser = subparsers.add_parser(
        "train",
        help="train a model (CPU, one GPU, or many with torchrun)",
        description=(
            "Train the temporal UNet with the BioMassters-winning recipe. Run under "
            "`torchrun --nproc_per_node=N -m agbm train ...` for several GPUs or nodes. "
            "Writes metrics.csv, last.pt and best.pt to --out."
        ),
    )
    parser.add_argument("--data", type=Path, help="data root (with train_features/)")
    parser.add_argument("--out", type=Path, help="run directory")
    parser.add_argument("--config", type=Path, help="YAML file of options (flags override it)")
    for name, (kind, text) in _FLAGS.items():
        default = getattr(TrainConfig, name, None)
        parser.add_argument(
            f"--{name.replace('_', '-')}",
            type=kind,
            default=None,
            choices=_CHOICES.get(name),
            help=text if default is None else f"{text} (default {default})",
        )
    parser.add_argument(
        "--full",
        action="store_true",
        default=None,
        help="train on all chips, no validation (fine-tuning: with --init)",
    )
    parser.add_argument(
        "--channels-last",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="channels_last memory format (default on)",
    )
    parser.add_argument(
        "--compile",
        action="store_true",
        default=None,
        help="torch.compile the model for training (faster steps on GPU after a slow first one)",
    )
    parser.add_argument(
        "--tensorboard",
        action="store_true",
        default=None,
        help="also log to TensorBoard in RUN_DIR/tb",
    )
    parser.add_argument("--no-augment", action="store_true", help="switch augmentation off")
    parser.add_argument(
        "--resume", action="store_true", help="continue from RUN_DIR/last.pt if it exists"
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="start again in a RUN_DIR that holds a run, deleting that run's files",
    )
    parser.set_defaults(func=_run)
