"""Training throughput and peak memory of one TemporalUNet step; one line per figure.

    python bench/train_step.py [--backbone NAME] [--size 64] [--batch-size 2] [--amp auto]
                               [--channels-last | --no-channels-last] [--compile]

A step is exactly `agbm train`'s: autocast forward, `rmse_loss`, (scaled) backward,
gradient clipping at norm 5 and an AdamW update with the recipe's parameter groups, on
random chips (loading is measured by bench/loader.py). Warm-up steps are not timed.

On a GPU, the issue's target (effnetv2-l, 256 px, bf16, one H100: >= 25 chips/s)::

    python bench/train_step.py --backbone tf_efficientnetv2_l.in21k --size 256 \\
        --batch-size 8 --amp bf16 --steps 20 --warmup 5 [--compile]
"""

from __future__ import annotations

import argparse

import torch
from common import (
    add_model_options,
    describe,
    make_model,
    peak_memory,
    pick_device,
    random_chips,
    timed,
)

from agbm.metrics import rmse_loss
from agbm.train import autocast_dtype, build_optimizer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_model_options(parser, batch_size=2)
    parser.add_argument(
        "--channels-last",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="channels-last weights, as `agbm train` (default on)",
    )
    args = parser.parse_args()
    device = pick_device(args.device)
    model = make_model(args.backbone, device, args.channels_last).train()
    forward = torch.compile(model) if args.compile else model
    optimizer = build_optimizer(model, lr=1e-3, weight_decay=1e-2)
    amp = autocast_dtype(args.amp, device)
    scaler = torch.amp.GradScaler(enabled=amp == torch.float16)
    image, present, target = random_chips(args.batch_size, args.size, device)

    def step() -> None:
        with torch.autocast(device.type, dtype=amp, enabled=amp is not None):
            pred = forward(image, present)
        loss = rmse_loss(pred, target)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        scaler.step(optimizer)
        scaler.update()

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    seconds = timed(step, args.steps, args.warmup, device)
    label = "train_step " + describe(args, device, channels_last=args.channels_last)
    print(f"{label}: {args.batch_size / seconds:.3g} chips/s")
    print(f"{label}: {seconds:.3f} s/step")
    print(f"{label}: peak memory {peak_memory(device)}")


if __name__ == "__main__":
    main()
