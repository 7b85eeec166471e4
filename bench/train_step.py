"""Training throughput and peak memory of one `agbm train` step; one line per figure.

    python bench/train_step.py [--backbone NAME] [--size 64] [--batch-size 2] [--amp auto]
                               [--channels-last | --no-channels-last] [--compile]

The step timed is `Trainer.train_step` itself, on one batch of synthetic chips already
loaded: normalisation and augmentation on the device, autocast forward, `rmse_loss`,
(scaled) backward, gradient clipping at norm 5 and the AdamW update with the recipe's
parameter groups (loading is measured by bench/loader.py). Warm-up steps are not timed.

On a GPU, the issue's target (effnetv2-l, 256 px, bf16, one H100: >= 25 chips/s)::

    python bench/train_step.py --backbone tf_efficientnetv2_l.in21k --size 256 \\
        --batch-size 8 --amp bf16 --steps 20 --warmup 5 [--compile]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch
from common import add_model_options, describe, peak_memory, pick_device, timed

from agbm.data.synth import generate
from agbm.runtime import Runtime
from agbm.training import TrainConfig, Trainer, resolve


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_model_options(parser, batch_size=2)
    args = parser.parse_args()
    device = pick_device(args.device)
    with tempfile.TemporaryDirectory(prefix="agbm-bench-") as tmp:
        generate(Path(tmp) / "data", chips=args.batch_size, test_chips=0, seed=0, size=args.size)
        config = TrainConfig(
            data=str(Path(tmp) / "data"),
            out=str(Path(tmp) / "run"),
            backbone=args.backbone,
            recipe=args.recipe,
            pretrained="none",
            batch_size=args.batch_size,
            epochs=args.warmup + args.steps,
            full=True,
            amp=args.amp,
            channels_last=args.channels_last,
            compile=args.compile,
            workers=0,
        )
        torch.manual_seed(0)
        trainer = Trainer(resolve(config), Runtime(rank=0, world=1, device=device))
        batch = next(iter(trainer.data.loader))
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        seconds = timed(lambda: trainer.train_step(batch), args.steps, args.warmup, device)
    label = "train_step " + describe(args, device)
    print(f"{label}: {args.batch_size / seconds:.3g} chips/s")
    print(f"{label}: {seconds:.3f} s/step")
    print(f"{label}: peak memory {peak_memory(device)}")


if __name__ == "__main__":
    main()
