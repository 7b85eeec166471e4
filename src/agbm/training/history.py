"""A run's history: metrics.csv, loss.png, TensorBoard, and one printed line per epoch.

matplotlib is imported by `plot_history` alone, through its object API: training never
loads pyplot, so it never switches the backend of a notebook or script that trains.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

from tqdm import tqdm

from agbm.io import replacing

METRICS_FIELDS = ("epoch", "train_loss", "val_rmse", "lr", "seconds", "chips_per_s")


def read_metrics(path: Path) -> list[dict[str, str]]:
    """The rows of a run's metrics.csv (none when it has none yet)."""
    if not path.exists():
        return []
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def write_metrics(path: Path, rows: list[dict[str, Any]]) -> None:
    """The whole log, rewritten through `replacing` (a few hundred rows, once an epoch): a
    kill mid-write never leaves a torn row, only the old log or the new."""
    with replacing(path) as tmp, tmp.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=METRICS_FIELDS)
        writer.writeheader()
        writer.writerows(rows)


def append_metrics(path: Path, row: dict[str, Any]) -> None:
    """Add one epoch's row to the log."""
    write_metrics(path, [*read_metrics(path), row])


def trim_metrics(path: Path, epoch: int) -> None:
    """Drop rows past `epoch` (a resumed run redoes them) so the log never has duplicates."""
    if path.exists():
        write_metrics(path, [r for r in read_metrics(path) if int(r["epoch"]) <= epoch])


def plot_history(metrics_csv: Path, out_png: Path) -> None:
    """Train loss and validation RMSE per epoch from a run's metrics.csv."""
    rows = read_metrics(Path(metrics_csv))
    epochs = [int(r["epoch"]) for r in rows]
    loss = [float(r["train_loss"]) for r in rows]
    val = [float(r["val_rmse"]) for r in rows]
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 4), dpi=100)
    ax = fig.subplots()
    ax.plot(epochs, loss, marker="o", ms=3, label="train loss (RMSE, targets < max)")
    if not all(math.isnan(v) for v in val):
        ax.plot(epochs, val, marker="o", ms=3, label="validation RMSE (challenge metric)")
    ax.set(xlabel="epoch", ylabel="t/ha", title="training")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    with replacing(Path(out_png)) as tmp:
        fig.savefig(tmp, format="png")


class History:
    """What a run records after each epoch, on the main process: a row of metrics.csv, the
    loss.png drawn from it, TensorBoard scalars when asked, and one printed line."""

    def __init__(self, out: Path, tensorboard: bool) -> None:
        self.metrics = out / "metrics.csv"
        self.plot = out / "loss.png"
        self.tensorboard_dir = out / "tb" if tensorboard else None
        self._writer = None

    def start(self, epoch: int) -> None:
        """Begin at `epoch` (0, or a resumed run's): rows past it are dropped, to be redone."""
        trim_metrics(self.metrics, epoch)

    def record(self, row: dict[str, Any], improved: bool) -> None:
        """Log one finished epoch (`row` holds `METRICS_FIELDS` as text)."""
        append_metrics(self.metrics, row)
        plot_history(self.metrics, self.plot)
        if self.tensorboard_dir is not None:
            self._tensorboard(row)
        tqdm.write(
            f"epoch {row['epoch']:>4}  loss {row['train_loss']}  val RMSE {row['val_rmse']}  "
            f"lr {row['lr']}  {row['chips_per_s']} chips/s" + ("  *best*" if improved else "")
        )

    def _tensorboard(self, row: dict[str, Any]) -> None:
        if self._writer is None:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(str(self.tensorboard_dir))
        for key in ("train_loss", "val_rmse", "lr", "chips_per_s"):
            self._writer.add_scalar(key, float(row[key]), int(row["epoch"]))
        self._writer.flush()
