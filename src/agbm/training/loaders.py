"""The chips a run trains and validates on, and the loaders that deal them to each process."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch.utils.data import DataLoader
from torch.utils.data.distributed import DistributedSampler

from agbm.data.dataset import ChipDataset
from agbm.data.sources import open_source
from agbm.labels.chips import (
    chip_grids,
    has_chip_labels,
    label_array,
    place_labels,
    read_chip_labels,
)
from agbm.labels.frame import read_labels
from agbm.runtime import Runtime
from agbm.training.config import TrainConfig
from agbm.training.split import fold_split


def chip_labels(config: TrainConfig, chips: list[str]) -> dict[str, Any] | None:
    """The chips' sparse labels: `config.labels` placed on them by their grids, or those the
    data root keeps (`train_labels/`); None when there are none (dense targets)."""
    if config.labels:
        grids = chip_grids(config.data, chips, "train")
        placed = place_labels(read_labels(config.labels), grids, config.labels)
        return {chip: label_array(frame) for chip, frame in placed.items()}
    if has_chip_labels(config.data, "train"):
        return read_chip_labels(config.data, "train", chips)
    return None


def split_chips(config: TrainConfig, chips: list[str]) -> tuple[list[str], list[str]]:
    """(training, validation) chip ids: all chips and none with `full`, else the fold's.
    Whole chips are held out, never single labels beside their training neighbours."""
    if config.full:
        return chips, []
    train_ids, val_ids = fold_split(chips, config.folds, config.fold, config.seed, config.split)
    if not val_ids:
        raise ValueError(
            f"fold {config.fold} of {config.folds} holds no chip: there are only "
            f"{len(chips)} training chips (use fewer `folds`)"
        )
    return train_ids, val_ids


@dataclass
class TrainingData:
    """A run's chips. The loaders move raw months (`ChipDataset(raw=True)`) and only read;
    normalisation and augmentation run on the training device."""

    train_set: ChipDataset
    val_set: ChipDataset | None
    #: Shards and shuffles the training chips across processes, reproducibly per epoch.
    sampler: DistributedSampler
    loader: DataLoader

    @classmethod
    def build(cls, config: TrainConfig, runtime: Runtime) -> TrainingData:
        """The run's data, checked against the batch and crop sizes before any work."""
        chips = open_source(config.data, "train").chip_ids()
        labels = chip_labels(config, chips)
        if labels is not None:  # chips without a label teach nothing
            chips = [chip for chip in chips if len(labels.get(chip, ()))]
            if not chips:
                raise ValueError(f"no chip of {config.data} carries a label")
        train_ids, val_ids = split_chips(config, chips)
        sparse = {"targets": False, "labels": labels} if labels is not None else {}
        train_set = ChipDataset(config.data, "train", train_ids, raw=True, **sparse)
        val_set = (
            ChipDataset(config.data, "train", val_ids, raw=True, **sparse) if val_ids else None
        )
        if config.batch_size * runtime.world > len(train_set):
            raise ValueError(
                f"batch size {config.batch_size} x {runtime.world} process(es) exceeds the "
                f"{len(train_set)} training chips"
            )
        if config.image_size and config.image_size > min(train_set.size):
            size = train_set.size
            raise ValueError(
                f"`image_size` {config.image_size} exceeds the chips' {size[0]}x{size[1]}"
            )
        sampler = DistributedSampler(
            train_set, runtime.world, runtime.rank, shuffle=True, seed=config.seed, drop_last=True
        )
        loader = DataLoader(
            train_set,
            batch_size=config.batch_size,
            sampler=sampler,
            num_workers=config.workers,
            drop_last=True,
            pin_memory=runtime.device.type == "cuda",
            persistent_workers=config.workers > 0,  # no worker start-up every epoch
        )
        return cls(train_set, val_set, sampler, loader)

    def validation_loader(self, runtime: Runtime, batch_size: int, workers: int) -> DataLoader:
        """This process's share of the validation chips (every `world`-th from its rank)."""
        indices = list(range(runtime.rank, len(self.val_set), runtime.world))
        return DataLoader(
            torch.utils.data.Subset(self.val_set, indices),
            batch_size=batch_size,
            num_workers=workers,
            pin_memory=runtime.device.type == "cuda",
        )
