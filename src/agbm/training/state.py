"""A run's directory and its checkpoints: claiming it, resuming it exactly, refusing to mix runs."""

from __future__ import annotations

import csv
import dataclasses
from pathlib import Path
from typing import Any

import torch

from agbm.errors import OutputError
from agbm.io import check_record, remove_stale_temporaries
from agbm.training.config import TrainConfig, resolve


def rng_state() -> dict[str, Any]:
    """The global torch RNG states (augmentation draws from its own seeded generators)."""
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


#: What `Trainer.state` writes and `Trainer.resume` needs.
RESUME_KEYS = (
    "model_config", "model", "optimizer", "scheduler", "scaler", "epoch", "step", "best", "rng",
    "train_config",
)  # fmt: skip


#: What `best.pt` keeps of `Trainer.state`: the model and how it was trained, no optimiser.
BEST_KEYS = ("model_config", "model", "epoch", "best", "train_config")


#: Settings a resumed run may change: where things are and how they are computed, not what.
_RESUMABLE_CHANGES = frozenset({"data", "out", "workers", "tensorboard", "compile"})


def check_same_run(saved: dict[str, Any], current: dict[str, Any], path: Path) -> None:
    """Refuse to resume a checkpoint with other settings: the result would be neither run.
    A setting the checkpoint predates counts as its default; one that predates recipes was
    written by the agbm recipe."""
    recipe = saved.get("recipe", "agbm")
    saved = {**dataclasses.asdict(resolve(TrainConfig(recipe=recipe))), **saved}
    remedy = "resume with the same options, or start a new run from its weights with `init`"
    check_record(saved, current, path, remedy, ignore=_RESUMABLE_CHANGES)


#: What a run writes into its directory (besides TensorBoard's `tb/`).
RUN_FILES = ("metrics.csv", "loss.png", "best.pt", "last.pt")


def existing_run(out: Path) -> str | None:
    """A one-line account of the run in `out` (epochs done, best validation RMSE), or None
    when `out` holds none."""
    if not any((out / name).exists() for name in RUN_FILES):
        return None
    try:
        with (out / "metrics.csv").open(newline="") as f:
            rows = list(csv.DictReader(f))
        vals = [float(r["val_rmse"]) for r in rows if r["val_rmse"] != "nan"]
        best = f", best val RMSE {min(vals):.2f}" if vals else ""
        return f"{len(rows)} epoch(s) done{best}"
    except (OSError, KeyError, ValueError):
        return "its files, but no readable metrics.csv"


def claim_run_dir(out: Path, resume: bool, overwrite: bool) -> None:
    """Refuse to start over a run that `out` already holds unless told what to do with it:
    continue it (`resume`) or replace it (`overwrite`, which deletes its files now so that
    none of the old run mixes into the new). Temporary files of killed runs are removed."""
    remove_stale_temporaries(out)
    found = existing_run(out)
    if found is None or resume:
        return
    if not overwrite:
        raise OutputError(
            f"{out} already holds a training run ({found}); pass `resume` to continue it "
            "or `overwrite` to start again (deleting it)"
        )
    for name in RUN_FILES:
        (out / name).unlink(missing_ok=True)
