"""The training layer: `agbm train`'s library, on one CPU or many GPUs (torchrun + DDP).

`config` holds `TrainConfig` and the named recipes, `split` the folds, `optim` the
optimiser and schedule, `loaders` the run's chips and loaders, `state` the run directory,
checkpoints and exact resumption, `history` the metrics log and its plots, and `trainer`
the loop that puts them together. The names below are imported when first used
(`agbm.lazy`): `config` loads no torch, so that `agbm train --help` does not either.
"""

from agbm.lazy import lazy_package

__all__ = lazy_package(
    __name__,
    {
        "config": ["RECIPES", "TrainConfig", "resolve"],
        "split": ["fold_split"],
        "trainer": ["Trainer", "train"],
    },
)
