"""Milliseconds per chip of the training augmentation, applied to a batch on a device.

    python bench/augment.py [--size 256] [--batch-size 8] [--threads 1 2] [--device auto]
                            [--steps 5]

Augmentation runs in the training step on whole batches (see `agbm.training.augment`): this times it
with the recipe's defaults (flips, 90-degree turns, the +-45 degree rotation with p 0.7,
month dropout) on random chips, the draws included. On CPU once per --threads value (a
loader worker has one thread); on a GPU once. Prints one line per figure.
"""

from __future__ import annotations

import argparse

import torch
from common import pick_device, timed

from agbm.data import CHANNELS, MONTHS
from agbm.training.augment import Augment, chip_generator


def ms_per_chip(device: torch.device, size: int, batch: int, steps: int) -> float:
    """Mean milliseconds per chip over `steps` batches, after one untimed batch."""
    augment = Augment()
    image = torch.rand(batch, MONTHS, CHANNELS, size, size, device=device)
    target = 300 * torch.rand(batch, 1, size, size, device=device)
    present = torch.ones(batch, MONTHS, dtype=torch.bool)

    epochs = iter(range(10**9))  # fresh draws at every step, as in training

    def step() -> None:
        epoch = next(epochs)
        draws = [
            augment.draw(p, (size, size), chip_generator(0, epoch, f"chip{i}"))
            for i, p in enumerate(present)
        ]
        augment(image, present.to(device), target, draws)

    return timed(step, steps, warmup=1, device=device) * 1000 / batch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=256, help="chip side in pixels (default 256)")
    parser.add_argument("--batch-size", type=int, default=8, help="chips per batch (default 8)")
    parser.add_argument(
        "--threads", type=int, nargs="+", default=[1, 2], help="CPU thread counts (default 1 2)"
    )
    parser.add_argument("--steps", type=int, default=5, help="timed batches (default 5)")
    parser.add_argument("--device", default="auto", help="auto (cuda if present), cuda or cpu")
    args = parser.parse_args()
    device = pick_device(args.device)
    label = f"augment {args.size}px batch={args.batch_size}"
    if device.type == "cuda":
        ms = ms_per_chip(device, args.size, args.batch_size, args.steps)
        print(f"{label} device={torch.cuda.get_device_name(device)}: {ms:.2f} ms/chip")
        return
    for threads in args.threads:
        torch.set_num_threads(threads)
        ms = ms_per_chip(device, args.size, args.batch_size, args.steps)
        print(f"{label} device=cpu threads={threads}: {ms:.1f} ms/chip")


if __name__ == "__main__":
    main()
