"""The recipe ablation: `winner` and `agbm` trained on one synthetic set; one line per figure.

    python bench/recipes.py [--epochs 10] [--chips 48] [--test-chips 12] [--size 64]
                            [--backbone resnet18] [--seed 0] [--out DIR]

Three runs train the same backbone from random weights (no download) with the same epochs,
batch, learning rate, seed and validation fold (the winner's split, so that all validate on
the same chips), then predict the same test chips with flip TTA: the `winner` recipe, the
`agbm` recipe, and `winner` with agbm's output scaling alone (`model_options`), which
separates that one difference from the rest. Printed per run: the validation RMSE of the
last and of the best epoch, and the test set's average RMSE (the challenge metric) of the
best checkpoint. Synthetic results say which recipe learns faster on this toy problem, not
which is better on real Sentinel data.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import sys
import tempfile
from pathlib import Path

from agbm.data.synth import generate
from agbm.evaluation import evaluate
from agbm.inference import InferenceOptions, predict
from agbm.training import RECIPES, TrainConfig, train

#: Run name -> (recipe, model options over the recipe's).
RUNS: dict[str, tuple[str, dict]] = {
    "winner": ("winner", {}),
    "agbm": ("agbm", {}),
    "winner+scaled-output": (
        "winner",
        {k: RECIPES["agbm"].model[k] for k in ("output_scale", "output_init")},
    ),
}


def run_recipe(name: str, data: Path, out: Path, args: argparse.Namespace) -> list[str]:
    """Train and score one run of `RUNS`; returns its figure lines."""
    recipe, model_options = RUNS[name]
    config = TrainConfig(
        data=str(data),
        out=str(out / name),
        recipe=recipe,
        model_options=model_options,
        backbone=args.backbone,
        pretrained="none",
        decoder_channels=[64, 48, 32, 24, 16],
        epochs=args.epochs,
        batch_size=args.batch_size,
        folds=6,
        split="winner",
        workers=0,
        seed=args.seed,
    )
    with contextlib.redirect_stdout(sys.stderr):  # epoch lines: stdout holds figures only
        run = train(config, resume=True)
    with (run / "metrics.csv").open(newline="") as f:
        val = [float(row["val_rmse"]) for row in csv.DictReader(f)]
    options = InferenceOptions((run / "best.pt",))
    predict(data, out / f"{name}-pred", options=options, workers=0, overwrite=True)
    test = evaluate(out / f"{name}-pred", data).average
    label = f"{name} {args.backbone} {args.size}px {args.epochs} epochs seed={args.seed}"
    return [
        f"{label} val RMSE last epoch: {val[-1]:.2f} t/ha",
        f"{label} val RMSE best epoch: {min(val):.2f} t/ha",
        f"{label} test average RMSE (best.pt, flip TTA): {test:.2f} t/ha",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=10, help="epochs per recipe (default 10)")
    parser.add_argument("--chips", type=int, default=48, help="training chips (default 48)")
    parser.add_argument("--test-chips", type=int, default=12, help="test chips (default 12)")
    parser.add_argument("--size", type=int, default=64, help="chip side (default 64)")
    parser.add_argument("--batch-size", type=int, default=4, help="batch (default 4)")
    parser.add_argument("--backbone", default="resnet18", help="timm encoder (default resnet18)")
    parser.add_argument("--seed", type=int, default=0, help="data and training seed (default 0)")
    parser.add_argument(
        "--runs", nargs="+", default=list(RUNS), choices=list(RUNS), help="runs (default all)"
    )
    parser.add_argument("--out", type=Path, help="keep the runs here (default: a temporary dir)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="agbm-recipes-") as tmp:
        out = args.out or Path(tmp)
        data = out / "data"
        if not data.is_dir():
            generate(data, args.chips, args.test_chips, args.seed, args.size)
        for name in args.runs:
            for line in run_recipe(name, data, out, args):
                print(line, flush=True)


if __name__ == "__main__":
    main()
