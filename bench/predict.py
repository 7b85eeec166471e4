"""Inference throughput with and without flip TTA; one line per figure.

    python bench/predict.py [--backbone NAME] [--size 64] [--batch-size 4] [--amp auto]
                            [--channels-last | --no-channels-last] [--tta none flips]

Times `agbm.inference.predict_batch` (what `agbm predict` runs per batch) on random chips;
loading and writing files are left out (see bench/loader.py). Warm-up batches are not timed.

On a GPU, the issue's target (flip TTA, one H100: >= 60 chips/s)::

    python bench/predict.py --backbone tf_efficientnetv2_l.in21k --size 256 \\
        --batch-size 16 --amp bf16 --steps 10 --warmup 3 --tta none flips
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

from agbm.inference import TTA, predict_batch
from agbm.runtime import autocast_dtype


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_model_options(parser, batch_size=4)
    parser.add_argument(
        "--tta", nargs="+", default=["none", "flips"], choices=list(TTA), help="TTA modes to time"
    )
    args = parser.parse_args()
    device = pick_device(args.device)
    model = make_model(args.backbone, args.recipe, device, args.channels_last).eval()
    forward = torch.compile(model) if args.compile else model
    amp = autocast_dtype(args.amp, device, inference=True)
    image, present, _ = random_chips(args.batch_size, args.size, device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    for tta in args.tta:
        seconds = timed(
            lambda tta=tta: predict_batch([forward], image, present, tta=tta, amp_dtype=amp),
            args.steps,
            args.warmup,
            device,
        )
        label = "predict " + describe(args, device, tta=tta)
        print(f"{label}: {args.batch_size / seconds:.3g} chips/s")
    print(f"predict {describe(args, device)}: peak memory {peak_memory(device)}")


if __name__ == "__main__":
    main()
