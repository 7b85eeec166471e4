"""Run under torchrun by tests/e2e/test_training.py: one epoch of DDP training, each rank saving its
own final weights so the test can check that all ranks agree."""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from agbm.runtime import init_runtime
from agbm.training import TrainConfig, Trainer, resolve


def main(data: str, out: str) -> None:
    config = TrainConfig(
        data=data,
        out=out,
        backbone="resnet18",
        pretrained="none",
        epochs=1,
        batch_size=2,
        folds=4,
        workers=0,
        decoder_channels=[32, 32, 16, 16, 16],
        channels_last=False,
    )
    runtime = init_runtime()
    trainer = Trainer(resolve(config), runtime)
    trainer.fit()
    torch.save(trainer.model.state_dict(), Path(out) / f"rank{runtime.rank}.pt")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
