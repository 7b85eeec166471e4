"""The training loop of `agbm train`: on one CPU or many GPUs (torchrun + DDP), resumable.

`Trainer` puts the run together from its `TrainConfig`: the chips and loaders
(`TrainingData`), the model on its device (DDP under torchrun, optionally compiled), AMP,
the optimiser and schedule; then `fit()` trains epoch by epoch, validating on the held-out
fold and recording each epoch (`History`, `best.pt`, `last.pt`). `train()` is the entry
point: it checks the options, claims the run directory and resumes a run when asked.

Reproducibility is by construction: the data order depends only on (seed, epoch) and each
chip's augmentation only on (seed, epoch, chip id), so a run resumed from `last.pt` ends
with the same weights as one that was never interrupted.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import time
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from agbm.data.normalise import model_input
from agbm.errors import DivergedError
from agbm.io import hold_folder, output_folder, refuse_overwriting_inputs, save_atomic
from agbm.labels.footprints import label_reach
from agbm.metrics import chip_rmse, rmse_loss
from agbm.models.checkpoint import build_model, load_model, read_checkpoint
from agbm.runtime import Runtime, autocast, autocast_dtype, init_runtime
from agbm.training.augment import Augment, chip_generator
from agbm.training.config import TrainConfig, check_config, encoder_weights, resolve
from agbm.training.history import History
from agbm.training.loaders import TrainingData
from agbm.training.optim import build_optimizer, build_scheduler
from agbm.training.sparse import footprint_errors, footprint_loss
from agbm.training.state import (
    BEST_KEYS,
    RESUME_KEYS,
    RUN_FILES,
    check_same_run,
    claim_run_dir,
    rng_state,
    set_rng_state,
)


class Trainer:
    """One training run: builds everything from a `TrainConfig`, then `fit()`s."""

    def __init__(self, config: TrainConfig, runtime: Runtime) -> None:
        """`config` as `resolve` settles it: the trainer changes none of it, so what it
        records is what it trained."""
        if config.workers is None or config.min_lr is None or config.temporal is None:
            raise ValueError("Trainer needs a resolved config: Trainer(resolve(config), ...)")
        self.config, self.rt = config, runtime
        self.out = Path(config.out)
        self.data = TrainingData.build(config, runtime)
        self.augment = Augment(crop=config.image_size, **config.augment)
        torch.manual_seed(config.seed)
        self._setup_model()
        self._setup_optimisation()
        self.history = History(self.out, config.tensorboard)
        self.epoch, self.step, self.best = 0, 0, math.inf

    def _setup_model(self) -> None:
        """The model on its device and memory format, its DDP wrapper and compiled forward."""
        self.model = self._build_model().to(self.rt.device)
        #: Inputs are made as the model's checkpoint says (an `--init` model keeps its own).
        self.conventions = self.model.conventions
        if self.config.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.ddp = (
            DistributedDataParallel(
                self.model,
                device_ids=[self.rt.device.index] if self.rt.device.type == "cuda" else None,
            )
            if self.rt.world > 1
            else self.model
        )
        #: What the training step calls; checkpoints keep saving the plain `self.model`.
        self.forward = torch.compile(self.ddp) if self.config.compile else self.ddp

    def _build_model(self) -> torch.nn.Module:
        if self.config.init:  # `resolve` took the model settings from it
            return load_model(self.config.init)
        arch = {
            "backbone": self.config.backbone,
            "pretrained": encoder_weights(self.config.pretrained),
            "temporal": self.config.temporal,
            **self.config.model_options,
        }
        if self.config.decoder_channels:
            arch["decoder_channels"] = tuple(self.config.decoder_channels)
        return build_model(arch)

    def _setup_optimisation(self) -> None:
        """AMP's precision and gradient scaler, the optimiser and the learning-rate schedule."""
        config = self.config
        self.amp_dtype = autocast_dtype(config.amp, self.rt.device)
        self.scaler = torch.amp.GradScaler(
            self.rt.device.type, enabled=self.amp_dtype == torch.float16
        )
        steps_per_epoch = len(self.data.loader)
        self.optimizer = build_optimizer(self.model, config.lr, config.weight_decay)
        self.scheduler = build_scheduler(
            self.optimizer,
            config.epochs * steps_per_epoch,
            round(config.warmup_epochs * steps_per_epoch),
            config.min_lr / config.lr,
            every=steps_per_epoch if config.cosine_step == "epoch" else 1,
        )

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
        return autocast(self.rt.device, self.amp_dtype)

    def _to_device(self, batch: dict[str, Any]) -> tuple[torch.Tensor, ...]:
        """The batch's model input and target (None for sparse labels) on the device."""
        image, present = model_input(batch, self.rt.device, self.conventions)
        target = batch.get("target")
        return (
            image,
            present,
            None if target is None else target.to(self.rt.device, non_blocking=True),
        )

    def _draws(self, batch: dict[str, Any]) -> list[Any]:
        """Each chip's augmentation draw, from the CPU copy of `present`: drawing them never
        waits for the device."""
        size = tuple(batch["s1"].shape[-2:])
        attended = self.conventions.attended(batch["present"])
        return [
            self.augment.draw(present, size, chip_generator(self.config.seed, self.epoch, chip))
            for chip, present in zip(batch["chip_id"], attended, strict=True)
        ]

    def _loss(
        self, pred: torch.Tensor, target: torch.Tensor | None, labels: Any, reach: int
    ) -> torch.Tensor:
        """The dense RMSE against targets, or the footprint loss against sparse labels."""
        if labels is None:
            return rmse_loss(pred, target, self.config.max_target)
        weights, shifts = self.config.label_weights, self.config.shift_loss
        return footprint_loss(pred, labels, weights, shifts, reach)

    def train_step(self, batch: dict[str, Any]) -> torch.Tensor:
        """One optimisation step on a loader batch (normalised and augmented on the device);
        returns the detached loss without waiting for it."""
        draws = self._draws(batch)
        image, present, target = self.augment(*self._to_device(batch), draws)
        labels, reach = batch.get("labels"), 0
        if labels is not None:  # moved on the CPU, then sent: no wait for the device
            size, reach = tuple(batch["s1"].shape[-2:]), label_reach(labels)
            labels = self.augment.move_labels(labels, draws, size).to(
                self.rt.device, non_blocking=True
            )
        with self._autocast():
            pred = self.forward(image, present)
        loss = self._loss(pred, target, labels, reach)
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
        self.data.sampler.set_epoch(self.epoch)
        total = torch.zeros(2, device=self.rt.device)
        bar = tqdm(
            self.data.loader,
            desc=f"epoch {self.epoch + 1}/{self.config.epochs}",
            unit="batch",
            disable=not self.rt.main,
            leave=False,
        )
        #: The first step whose loss was not finite (-1: none), kept on the device so that
        #: watching it costs no sync; looked at with the progress bar and at the epoch's end.
        first_bad = torch.full((), -1, dtype=torch.long, device=self.rt.device)
        shown = time.monotonic()
        for index, batch in enumerate(bar, start=1):
            loss = self.train_step(batch)
            total += torch.stack([loss, torch.ones((), device=self.rt.device)])
            first_bad.masked_fill_((first_bad < 0) & ~torch.isfinite(loss), self.step)
            if self.rt.main and (time.monotonic() - shown >= 1.0 or index == len(bar)):
                if self.rt.world == 1:  # under DDP every rank stops together, below
                    self._stop_if_diverged(first_bad)
                bar.set_postfix(loss=f"{(total[0] / total[1]).item():.2f}")
                shown = time.monotonic()
        if self.rt.world > 1:
            dist.all_reduce(total)
            dist.all_reduce(first_bad, op=dist.ReduceOp.MAX)
        self._stop_if_diverged(first_bad)
        return (total[0] / total[1]).item()

    def _stop_if_diverged(self, first_bad: torch.Tensor) -> None:
        """Stop the run at a loss that is not finite (an lr too high, bad data): training on
        would only write NaN weights over the last good checkpoint."""
        step = int(first_bad)
        if step >= 0:
            per_epoch = len(self.data.loader)
            raise DivergedError(
                f"training diverged: the loss is not finite at epoch {(step - 1) // per_epoch + 1}"
                f", step {(step - 1) % per_epoch + 1} of {per_epoch}; nothing of this epoch was "
                "saved (lower `lr`, or check the data; `resume` goes on from the last epoch saved)"
            )

    @torch.no_grad()
    def validate(self) -> float:
        """The challenge metric (average per-chip RMSE, all pixels) on the held-out fold; for
        chips with sparse labels, the RMSE of the footprint means over all held-out labels."""
        if self.rt.world > 1:
            # Each rank's batch-norm statistics moved with its own last batches: validate, on
            # every rank, the model that rank 0 saves.
            for buffer in self.model.buffers():
                dist.broadcast(buffer, 0)
        self.model.eval()
        loader = self.data.validation_loader(self.rt, self.config.batch_size, self.config.workers)
        total = torch.zeros(2, dtype=torch.float64, device=self.rt.device)
        for batch in loader:
            image, present, target = self._to_device(batch)
            with self._autocast():
                pred = self.model(image, present).float().clamp(min=0).cpu()
            if "labels" in batch:  # pooled over labels: sum of squared errors, count
                part = footprint_errors(pred, batch["labels"])
            else:  # the challenge metric: per-chip RMSEs, count
                rmse = chip_rmse(pred, target.cpu())
                part = (rmse.sum(), len(rmse))
            total += torch.tensor(part, dtype=torch.float64, device=self.rt.device)
        if self.rt.world > 1:
            dist.all_reduce(total)
        mean = (total[0] / total[1]).item()
        return math.sqrt(mean) if self.data.train_set.labels is not None else mean

    def describe(self) -> str:
        """One line on what this run trains, where and on what."""
        config, amp = self.config, self.amp_dtype
        params = sum(p.numel() for p in self.model.parameters()) / 1e6
        held = "" if config.full else f" (fold {config.fold} of {config.folds})"
        where = f"{self.rt.device}" + (f" x {self.rt.world} processes" if self.rt.world > 1 else "")
        return (
            f"training {config.backbone} ({params:.1f} M parameters, recipe {config.recipe}) on "
            f"{where}, amp {str(amp).removeprefix('torch.') if amp else 'off'}: "
            f"{len(self.data.train_set)} training chips, "
            f"{len(self.data.val_set) if self.data.val_set else 0} validation chips{held}, "
            f"{config.workers} loader workers per process"
        )

    def fit(self) -> None:
        """Train until `epochs`, checkpointing and logging after every epoch."""
        if self.rt.main:
            tqdm.write(self.describe())
            self.out.mkdir(parents=True, exist_ok=True)
            self.history.start(self.epoch)
        while self.epoch < self.config.epochs:
            start = time.perf_counter()
            loss = self.train_epoch()
            seconds = time.perf_counter() - start
            val = self.validate() if self.data.val_set is not None else math.nan
            self.epoch += 1
            row = {
                "epoch": self.epoch,
                "train_loss": f"{loss:.4f}",
                "val_rmse": f"{val:.4f}",
                "lr": f"{self.scheduler.get_last_lr()[0]:.3e}",
                "seconds": f"{seconds:.2f}",
                "chips_per_s": f"{len(self.data.sampler) * self.rt.world / seconds:.2f}",
            }
            if self.rt.main:
                self._log(row, val)
        if self.rt.world > 1:
            dist.barrier()

    def _log(self, row: dict[str, Any], val: float) -> None:
        """Record a finished epoch. `last.pt` goes last: a run killed before it redoes the
        epoch on `--resume`, rewriting the metrics row and `best.pt` it may have written.
        Nothing is written of an epoch whose validation score or weights are not finite."""
        if self.data.val_set is not None and not math.isfinite(val):
            raise DivergedError(
                f"training diverged: the validation RMSE of epoch {self.epoch} is {val}; "
                "nothing of this epoch was saved (lower `lr`, or check the data)"
            )
        if not all(torch.isfinite(p).all() for p in self.model.parameters()):
            raise DivergedError(
                f"training diverged: weights are not finite after epoch {self.epoch}; nothing "
                "of this epoch was saved (lower `lr`, or check the data)"
            )
        improved = not math.isnan(val) and val < self.best
        if improved:
            self.best = val
        self.history.record(row, improved)
        state = self.state()
        if improved or (math.isnan(val) and self.epoch == self.config.epochs):
            # The model for predict and --init: without the optimiser's state (2/3 of last.pt).
            save_atomic({k: state[k] for k in BEST_KEYS}, self.out / "best.pt")
        save_atomic(state, self.out / "last.pt")


def train(config: TrainConfig, resume: bool = False, overwrite: bool = False) -> Path:
    """Run (or resume) training; returns the run directory."""
    config = resolve(config)
    check_config(config)
    runtime = init_runtime()
    out = Path(config.out)
    # Rank 0 owns the run directory: writable before any work, gone again if nothing came of it.
    with contextlib.ExitStack() as held:
        if runtime.main:
            refuse_overwriting_inputs(  # a run writes (and --overwrite deletes) these
                [out / name for name in RUN_FILES], [config.init, config.labels]
            )
            held.enter_context(output_folder(out))
            held.enter_context(hold_folder(out, "agbm train"))  # one run per folder at a time
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
