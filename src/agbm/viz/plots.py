"""Per-chip map panels, for people who would rather look than read.

`agbm plot` draws, for each chip, an S2 true-colour composite of its clearest summer month,
the 12-month availability strip, the target, the prediction and the error, the two maps
sharing one colour bar in t/ha.

Figures are made with matplotlib's object API (`Figure`, drawn by its Agg canvas), never
pyplot: nothing here depends on a display or changes the backend of the caller's session.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from agbm.data.bands import MONTH_NAMES, S2_MAX
from agbm.data.dataset import ChipDataset
from agbm.data.layout import prediction_path
from agbm.data.raw import chip_prediction
from agbm.data.sources import open_source
from agbm.io import replacing

#: Summer months (June, July, August, May), best first, for the true-colour composite.
SUMMER = (9, 10, 11, 8)


#: Channel indices of B4, B3, B2 (red, green, blue) in the 15-channel image.
RGB = (6, 5, 4)


#: Reflectance (x 10,000) shown as full brightness: forests are dark, so stretch.
RGB_WHITE = 2500.0


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
    fig = Figure(figsize=(19, 4), dpi=90, layout="constrained")
    axes = fig.subplots(
        1,
        5,
        gridspec_kw={"width_ratios": [1, 1.1, 1, 1, 1]},
    )  # constrained layout: room for the colour bars and their labels, no overlaps
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
    with replacing(out_png) as tmp:
        fig.savefig(tmp, format="png", bbox_inches="tight")


def plot_predictions(
    data: Path, pred_dir: Path, out_dir: Path, split: str = "test", limit: int = 8
) -> list[Path]:
    """Panels for the first `limit` chips of `split` that have a prediction."""
    out_dir.mkdir(parents=True, exist_ok=True)
    chips = [
        c for c in open_source(data, split).chip_ids() if prediction_path(pred_dir, c).is_file()
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
