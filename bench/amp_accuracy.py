"""How far a precision's maps are from full precision, on the winner fixture; one line per figure.

    python bench/amp_accuracy.py [--fixture ../shared/fixtures/winner] [--amp bf16]
                                 [--tta hv] [--checkpoint CKPT --data ROOT --split test]

Imports the fixture's winner checkpoint (the winner's own code made it), or takes any agbm
checkpoint and data root, predicts the chips through `agbm predict`'s path in full
precision and under the autocast dtype asked for, and prints the largest absolute
difference and the RMSE between the two, in t/ha. It says how much precision costs in a
map; docs/benchmarks.md holds the figures and the threshold `--amp auto` was chosen by.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import torch

from agbm.data import ChipDataset, model_input
from agbm.inference import TTA, load_for_inference, predict_batch
from agbm.models.winner.convert import import_winner
from agbm.runtime import AMP_DTYPES

FIXTURE = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "winner"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--fixture", type=Path, default=FIXTURE, help="the winner fixture")
    parser.add_argument("--amp", default="bf16", choices=[a for a in AMP_DTYPES if a != "off"])
    parser.add_argument("--tta", default="hv", choices=list(TTA), help="TTA (default hv)")
    parser.add_argument(
        "--checkpoint", type=Path, help="an agbm checkpoint (default: the fixture's)"
    )
    parser.add_argument("--data", type=Path, help="its data root (default: the fixture's)")
    parser.add_argument("--split", default="test", help="split (default test)")
    parser.add_argument("--chips", type=int, default=8, help="at most this many chips (default 8)")
    args = parser.parse_args()
    device = torch.device("cpu")
    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = args.checkpoint or Path(tmp) / "winner.pt"
        if args.checkpoint is None:
            import_winner(args.fixture / "checkpoints" / "model_best.pth", checkpoint)
        models = load_for_inference([checkpoint], device)
    root = args.data or args.fixture / "data"
    data = ChipDataset(root, args.split, targets=False, raw=True)
    batch = torch.utils.data.default_collate([data[i] for i in range(min(args.chips, len(data)))])
    image, present = model_input(batch, device, models[0].conventions)
    full = predict_batch(models, image, present, tta=args.tta).numpy()
    low = predict_batch(models, image, present, tta=args.tta, amp_dtype=AMP_DTYPES[args.amp])
    low = low.numpy()
    diff = np.abs(low - full)
    name = args.checkpoint.name if args.checkpoint else "winner fixture"
    label = f"{name}, {len(full)} chips, tta {args.tta}, {args.amp} vs fp32"
    print(f"{label}, max abs difference: {diff.max():.3f} t/ha")
    print(f"{label}, RMSE: {float(np.sqrt((diff**2).mean())):.3f} t/ha")
    print(f"{label}, mean fp32 prediction: {full.mean():.2f} t/ha")


if __name__ == "__main__":
    main()
