"""`agbm evaluate`: score a prediction directory with the challenge metric.

Average RMSE (the RMSE over each chip's pixels, averaged over chips) is what BioMassters
ranked by; the RMSE over all pixels pooled is printed beside it because it weighs every
pixel equally, which is what a map user feels. Every chip with a target must have a
well-formed prediction: a gap is an error naming the chip, never a silent skip.
"""

from __future__ import annotations

import argparse
import csv
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from agbm.data import SPLITS, DataError, read_raster, read_target
from agbm.metrics import average_rmse, chip_rmse


@dataclass(frozen=True)
class Evaluation:
    """Per-chip RMSEs and the summary figures."""

    chip_ids: list[str]
    per_chip: np.ndarray
    pooled: float

    @property
    def average(self) -> float:
        return average_rmse(self.per_chip)


def truth_chips(truth: Path, split: str) -> list[str]:
    """Chip ids with a target in `truth/{split}_agbm/`."""
    folder = truth / f"{split}_agbm"
    if not folder.is_dir():
        raise DataError(f"{truth} has no {split}_agbm/ directory of targets")
    chips = sorted(p.name[: -len("_agbm.tif")] for p in folder.glob("*_agbm.tif"))
    if not chips:
        raise DataError(f"no targets in {folder}")
    return chips


def read_prediction(pred_dir: Path, chip_id: str, shape: tuple[int, ...]) -> np.ndarray:
    path = pred_dir / f"{chip_id}_agbm.tif"
    if not path.is_file():
        raise DataError(f"chip {chip_id}: prediction {path} is missing")
    try:
        return read_raster(path, 1, shape)[0]
    except DataError as exc:
        raise DataError(f"chip {chip_id}: malformed prediction: {exc}") from exc


def evaluate(pred_dir: Path | str, truth: Path | str, split: str = "test") -> Evaluation:
    """Compare every target of `split` under `truth` with its prediction in `pred_dir`."""
    pred_dir, truth = Path(pred_dir), Path(truth)
    if not pred_dir.is_dir():
        raise DataError(f"prediction directory {pred_dir} does not exist")
    chips = truth_chips(truth, split)
    per_chip, sq_sum, pixels = [], 0.0, 0
    for chip in chips:
        target = read_target(truth, chip, split)
        pred = read_prediction(pred_dir, chip, target.shape)
        per_chip.append(chip_rmse(pred[None], target[None])[0])
        sq_sum += float(((pred.astype(np.float64) - target) ** 2).sum())
        pixels += target.size
    return Evaluation(chips, np.array(per_chip), math.sqrt(sq_sum / pixels))


def write_per_chip(path: Path, result: Evaluation) -> None:
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["chip_id", "rmse"])
        writer.writerows(
            (c, f"{r:.4f}") for c, r in zip(result.chip_ids, result.per_chip, strict=True)
        )


def format_table(result: Evaluation) -> str:
    rows = [
        ("chips", f"{len(result.chip_ids)}"),
        ("average RMSE (challenge metric, t/ha)", f"{result.average:.3f}"),
        ("pooled RMSE over all pixels (t/ha)", f"{result.pooled:.3f}"),
    ]
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value:>10}" for name, value in rows)


def _run(args: argparse.Namespace) -> int:
    result = evaluate(args.pred, args.truth, args.split)
    print(format_table(result))
    if args.per_chip:
        write_per_chip(args.per_chip, result)
    return 0


def add_command(subparsers: argparse._SubParsersAction) -> None:
    """`agbm evaluate`."""
    parser = subparsers.add_parser(
        "evaluate",
        help="score predictions with the challenge metric (average RMSE)",
        description="Average per-chip RMSE of PRED_DIR/{chip}_agbm.tif against the targets.",
    )
    parser.add_argument("--pred", required=True, type=Path, help="prediction directory")
    parser.add_argument("--truth", required=True, type=Path, help="data root with the targets")
    parser.add_argument("--split", default="test", choices=SPLITS, help="split (default test)")
    parser.add_argument("--per-chip", type=Path, help="write per-chip RMSEs to this CSV")
    parser.set_defaults(func=_run)
