"""Pictures people would rather look at than read: training curves and per-chip map panels.

`agbm plot` draws, for each chip, an S2 true-colour composite of its clearest summer month,
the 12-month availability strip, the target, the prediction and the error, the two maps
sharing one colour bar in t/ha. `agbm train` writes `loss.png` after every epoch.
"""

from __future__ import annotations

import argparse
import csv
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: works on servers without a display

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from agbm.cache import open_source  # noqa: E402
from agbm.data import MONTH_NAMES, S2_MAX, SPLITS, ChipDataset  # noqa: E402
from agbm.evaluate import chip_prediction  # noqa: E402

#: Summer months (June, July, August, May), best first, for the true-colour composite.
SUMMER = (9, 10, 11, 8)
#: Channel indices of B4, B3, B2 (red, green, blue) in the 15-channel image.
RGB = (6, 5, 4)
#: Reflectance (x 10,000) shown as full brightness: forests are dark, so stretch.
RGB_WHITE = 2500.0


def plot_history(metrics_csv: Path, out_png: Path) -> None:
    """Train loss and validation RMSE per epoch from a run's metrics.csv."""
    with Path(metrics_csv).open(newline="") as f:
        rows = list(csv.DictReader(f))
    epochs = [int(r["epoch"]) for r in rows]
    loss = [float(r["train_loss"]) for r in rows]
    val = [float(r["val_rmse"]) for r in rows]
    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    ax.plot(epochs, loss, marker="o", ms=3, label="train loss (RMSE, targets < max)")
    if not all(math.isnan(v) for v in val):
        ax.plot(epochs, val, marker="o", ms=3, label="validation RMSE (challenge metric)")
    ax.set(xlabel="epoch", ylabel="t/ha", title="training")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out_png)
    plt.close(fig)


def true_colour(image: np.ndarray, present_s2: np.ndarray) -> tuple[np.ndarray, str]:
    """RGB `[H, W, 3]` of the clearest summer month with S2 (any month as a fallback)."""
    candidates = [m for m in SUMMER if present_s2[m]] or list(np.flatnonzero(present_s2))
    if not candidates:
        return np.zeros((*image.shape[-2:], 3)), "no S2 image"
    cloud = [image[m, -1].mean() for m in candidates]
    month = candidates[int(np.argmin(cloud))]
    scale = S2_MAX[[c - 4 for c in RGB]][:, None, None] / RGB_WHITE
    rgb = np.clip(image[month, list(RGB)] * scale, 0, 1)
    return rgb.transpose(1, 2, 0), f"S2 {MONTH_NAMES[month]}"


def plot_chip(
    image: np.ndarray, target: np.ndarray | None, pred: np.ndarray, chip_id: str, out_png: Path
) -> None:
    """One row of panels for one chip (see module docstring)."""
    s1 = image[:, :4].reshape(12, -1).any(axis=1)
    s2 = image[:, 4:].reshape(12, -1).any(axis=1)
    rgb, rgb_title = true_colour(image, s2)
    fig, axes = plt.subplots(
        1,
        5,
        figsize=(19, 4),
        dpi=90,
        gridspec_kw={"width_ratios": [1, 1.1, 1, 1, 1]},
        layout="constrained",  # room for the colour bars and their labels, no overlaps
    )
    axes[0].imshow(rgb)
    axes[0].set_title(rgb_title)
    axes[1].imshow(np.stack([s1, s2]).astype(float), cmap="Greens", vmin=0, vmax=1.4)
    axes[1].set(yticks=[0, 1], yticklabels=["S1", "S2"], xticks=range(12), title="months available")
    axes[1].set_xticklabels([n[:3] for n in MONTH_NAMES], rotation=90)
    vmax = float(np.percentile(target if target is not None else pred, 99.5)) or 1.0
    maps = axes[3].imshow(pred, cmap="viridis", vmin=0, vmax=vmax)
    axes[3].set_title("prediction")
    if target is not None:
        axes[2].imshow(target, cmap="viridis", vmin=0, vmax=vmax)
        axes[2].set_title("target")
        error = pred - target
        limit = float(np.percentile(np.abs(error), 99)) or 1.0
        err = axes[4].imshow(error, cmap="RdBu_r", vmin=-limit, vmax=limit)
        rmse = float(np.sqrt((error**2).mean()))
        axes[4].set_title(f"error (RMSE {rmse:.1f} t/ha)")
        fig.colorbar(err, ax=axes[4], fraction=0.046, label="prediction - target, t/ha")
    else:
        axes[2].set_title("no target")
        axes[4].set_title("no target")
    for ax in axes[[0, 2, 3, 4]]:
        ax.set(xticks=[], yticks=[])
    fig.colorbar(maps, ax=axes[2:4], fraction=0.03, label="AGBM, t/ha")
    fig.suptitle(f"chip {chip_id}")
    fig.savefig(out_png, bbox_inches="tight")
    plt.close(fig)


def plot_predictions(
    data: Path, pred_dir: Path, out_dir: Path, split: str = "test", limit: int = 8
) -> list[Path]:
    """Panels for the first `limit` chips of `split` that have a prediction."""
    out_dir.mkdir(parents=True, exist_ok=True)
    chips = [
        c for c in open_source(data, split).chip_ids() if (pred_dir / f"{c}_agbm.tif").is_file()
    ]
    written = []
    for sample in ChipDataset(data, split, chips[:limit]):
        image = sample["image"].numpy()
        target = sample["target"][0].numpy() if "target" in sample else None
        pred = chip_prediction(pred_dir, sample["chip_id"], image.shape[-2:])
        path = out_dir / f"{sample['chip_id']}.png"
        plot_chip(image, target, pred, sample["chip_id"], path)
        written.append(path)
    return written


def _run(args: argparse.Namespace) -> int:
    written = plot_predictions(args.data, args.pred, args.out, args.split, args.chips)
    print(f"wrote {len(written)} figure(s) to {args.out}")
    return 0


def add_command(subparsers: argparse._SubParsersAction) -> None:
    """`agbm plot`."""
    parser = subparsers.add_parser(
        "plot",
        help="draw per-chip maps: true colour, months available, target, prediction, error",
        description="Write one PNG per chip comparing predictions with the targets.",
    )
    parser.add_argument("--data", required=True, type=Path, help="data root")
    parser.add_argument("--pred", required=True, type=Path, help="prediction directory")
    parser.add_argument("--out", required=True, type=Path, help="figure directory")
    parser.add_argument("--split", default="test", choices=SPLITS, help="split (default test)")
    parser.add_argument("--chips", type=int, default=8, help="how many chips (default 8)")
    parser.set_defaults(func=_run)
