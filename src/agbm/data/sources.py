"""Where chips come from: a raw data root or an `agbm prepare` cache, behind one interface.

`open_source(root, split)` is the one place that tells a cache from a raw root: `ChipDataset`,
`agbm train`, `agbm predict` and `agbm info` read chips through the `ChipSource` it returns.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from agbm.data.cache import CacheSource, is_cache, read_manifest
from agbm.data.layout import (
    SPLITS,
    features_folder,
    labels_folder,
    splits_present,
    targets_folder,
)
from agbm.data.raw import RawChip, RawSource


def data_folders(root: Path | str) -> list[Path]:
    """The folders of a data root (or cache) that hold its chips' images, targets and labels:
    what no output may be, lie inside or hold (`agbm.io.refuse_overwriting_inputs`); other
    files and folders in the root, predictions say, are the user's."""
    root = Path(root)
    if is_cache(root):
        return [root / split for split in SPLITS]
    folders = (features_folder, targets_folder, labels_folder)
    return [folder(root, split) for split in SPLITS for folder in folders]


class ChipSource(Protocol):
    """Where one split's chips come from: `ChipDataset` and `agbm predict` need only this."""

    root: Path
    split: str

    def chip_ids(self) -> list[str]: ...

    def has_targets(self) -> bool: ...

    def read_raw(self, chip_id: str) -> RawChip: ...

    def read_target(self, chip_id: str) -> np.ndarray: ...

    def georeference(self, chip_id: str) -> dict: ...

    def size(self, chip_id: str) -> tuple[int, int]: ...

    def acquired(self, chip_id: str) -> np.ndarray: ...

    def has_target(self, chip_id: str) -> bool: ...


def open_source(root: Path | str, split: str) -> ChipSource:
    """The chips of `split` in `root`, whether a raw BioMassters root or a cache."""
    root = Path(root)
    if is_cache(root):
        return CacheSource.open(root, split)
    return RawSource(root, split)


def available_splits(root: Path) -> list[str]:
    """The splits a data root holds files of, or a cache has prepared."""
    if is_cache(root):
        return [s for s in SPLITS if s in read_manifest(root)["splits"]]
    return splits_present(root)


def splits_to_read(root: Path, asked: Sequence[str] | None = None) -> list[str]:
    """The splits a command works on: those asked for, else those the root holds, else
    "train", so that an empty or wrong root fails with the error that says what is missing."""
    return list(asked or available_splits(root) or ["train"])


def summarise(source: ChipSource) -> dict[str, float]:
    """Counts and month availability of a split, for a quick look at a data set."""
    chips = source.chip_ids()
    acquired = np.stack([source.acquired(c) for c in chips])  # [chips, 2, 12]
    return {
        "chips": len(chips),
        "s1_months_present": float(acquired[:, 0].mean()),
        "s2_months_present": float(acquired[:, 1].mean()),
        "targets": sum(source.has_target(c) for c in chips),
    }
