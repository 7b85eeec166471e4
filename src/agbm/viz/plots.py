"""Per-chip map panels, for people who would rather look than read.

`agbm plot` draws, for each chip, an S2 true-colour composite of its clearest summer month,
the 12-month availability strip, the target, the prediction and the error, the two maps
sharing one colour bar in t/ha.

Figures are made with matplotlib's object API (`Figure`, drawn by its Agg canvas), never
pyplot: nothing here depends on a display or changes the backend of the caller's session.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from agbm.data.bands import MONTH_NAMES, S2_MAX
from agbm.data.dataset import ChipDataset
from agbm.data.layout import prediction_path
from agbm.data.raw import chip_prediction
from agbm.data.sources import open_source
from agbm.errors import DataError
from agbm.io import replacing, writable_folder

#: The months a true colour shows, in turn: the clearest of June, July and August that has
#: a clear pixel; else May; else the clearest of any month.
SUMMER = (9, 10, 11)
LATE_SPRING = (8,)
#: Cloud probability (0..100) below which an S2 pixel counts as clear.
CLEAR_BELOW = 50


def choose_month(clear: Mapping[int, float]) -> int | None:
    """The month a true colour shows, from each month's share of clear pixels (`clear`):
    summer first, whatever May's view (`SUMMER`); None when no month has a clear pixel."""
    for group in (SUMMER, LATE_SPRING, tuple(clear)):
        seen = {m: clear[m] for m in group if clear.get(m, 0.0) > 0}
        if seen:
            return max(seen, key=seen.__getitem__)
    return None


#: Channel indices of B4, B3, B2 (red, green, blue) in the 15-channel image.
RGB = (6, 5, 4)


#: Reflectance (x 10,000) shown as full brightness: forests are dark, so stretch.
RGB_WHITE = 2500.0


def true_colour(image: np.ndarray) -> tuple[np.ndarray, str]:
    """RGB `[H, W, 3]` of the month `choose_month` picks from a normalised chip image
    `[12, 15, H, W]` (no data as zeros, cloud probability / 255 last)."""
    observed = image[:, 4:].any(axis=1)  # [12, H, W]
    clear = observed & (image[:, -1] < CLEAR_BELOW / S2_MAX[-1])
    month = choose_month({m: float(clear[m].mean()) for m in range(len(clear))})
    if month is None:
        return np.zeros((*image.shape[-2:], 3)), "no clear S2 image"
    scale = S2_MAX[[c - 4 for c in RGB]][:, None, None] / RGB_WHITE
    rgb = np.clip(image[month, list(RGB)] * scale, 0, 1)
    return rgb.transpose(1, 2, 0), f"S2 {MONTH_NAMES[month]}"


def plot_chip(
    image: np.ndarray, target: np.ndarray | None, pred: np.ndarray, chip_id: str, out_png: Path
) -> None:
    """One row of panels for one chip (see module docstring)."""
    s1 = image[:, :4].reshape(12, -1).any(axis=1)
    s2 = image[:, 4:].reshape(12, -1).any(axis=1)
    rgb, rgb_title = true_colour(image)
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
    """Panels for the first `limit` chips of `split` that have a prediction; a folder with
    no prediction of the split's chips is a `DataError` (not "0 figures")."""
    if not Path(pred_dir).is_dir():
        raise DataError(f"{pred_dir}: no such prediction folder")
    chips = [
        c for c in open_source(data, split).chip_ids() if prediction_path(pred_dir, c).is_file()
    ]
    if not chips:
        raise DataError(f"{pred_dir}: holds no prediction of a {split} chip of {data}")
    writable_folder(out_dir)
    written = []
    for sample in ChipDataset(data, split, chips[:limit]):
        image = sample["image"].numpy()
        target = sample["target"][0].numpy() if "target" in sample else None
        pred = chip_prediction(pred_dir, sample["chip_id"], image.shape[-2:])
        path = out_dir / f"{sample['chip_id']}.png"
        plot_chip(image, target, pred, sample["chip_id"], path)
        written.append(path)
    return written
