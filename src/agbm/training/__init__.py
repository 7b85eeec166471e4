"""The training layer: `agbm train`'s library, on one CPU or many GPUs (torchrun + DDP).

`config` holds `TrainConfig` and the named recipes, `split` the folds, `optim` the
optimiser and schedule, `loaders` the run's chips and loaders, `state` the run directory,
checkpoints and exact resumption, `history` the metrics log and its plots, and `trainer`
the loop that puts them together.
"""

from agbm.training.config import RECIPES, TrainConfig, resolve
from agbm.training.split import fold_split
from agbm.training.trainer import Trainer, train

__all__ = ["RECIPES", "TrainConfig", "Trainer", "fold_split", "resolve", "train"]
