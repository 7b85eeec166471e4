"""The torch Dataset of chips that training, prediction and the baselines read."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from agbm.data.layout import target_path
from agbm.data.normalise import normalise
from agbm.data.sources import open_source
from agbm.errors import DataError

Sample = dict[str, torch.Tensor | str]


class ChipDataset(Dataset):
    """A torch Dataset of chips: dicts with `image` `[12, 15, H, W]`, `present` `[12]`,
    `target` `[1, H, W]` (when the split has targets) and `chip_id`.

    `root` is a raw data root or a cache made by `agbm prepare` (same samples, faster).
    `transform`, if given, maps a sample dict to a sample dict (augmentation). `targets`
    False skips reading targets (prediction); None reads them when the split has them.
    `raw` True gives the months as stored instead of `image` (`s1`, `s2`, `acquired`; see
    `RawChip`), for `model_input` to normalise on the device. `labels`, if given, maps chip
    ids to their sparse labels (`agbm.labels.chips.label_array`): each sample then has
    `labels` `[K, 5]`, padded with NaN rows to the most any chip has, so that they batch.
    """

    def __init__(
        self,
        root: Path | str,
        split: str = "train",
        chip_ids: Sequence[str] | None = None,
        transform: Callable[[Sample], Sample] | None = None,
        targets: bool | None = None,
        raw: bool = False,
        labels: Mapping[str, np.ndarray] | None = None,
    ) -> None:
        self.root = Path(root)
        self.split = split
        #: A raw root or an `agbm prepare` cache: both give bit-identical samples.
        self.source = open_source(self.root, split)
        self.chip_ids = list(chip_ids) if chip_ids is not None else self.source.chip_ids()
        self.with_target = self.source.has_targets() if targets is None else targets
        self.transform = transform
        self.raw = raw
        self.labels = labels
        #: Every sample's labels are padded to this many rows.
        counts = (len(labels.get(c, ())) for c in self.chip_ids) if labels else ()
        self.max_labels = max(counts, default=0)
        #: Every chip must have the first one's size: batches stack them.
        self.size = tuple(self.source.size(self.chip_ids[0])) if self.chip_ids else None

    def __len__(self) -> int:
        return len(self.chip_ids)

    def __getitem__(self, index: int) -> Sample:
        chip_id = self.chip_ids[index]
        chip = self.source.read_raw(chip_id)
        if chip.s1.shape[2:] != self.size:
            raise DataError(
                f"chip {chip_id}: size {chip.s1.shape[2:]} differs from the {self.size} of chip "
                f"{self.chip_ids[0]}; the chips of a data set must share one size"
            )
        s1, s2, acquired = (torch.from_numpy(a) for a in (chip.s1, chip.s2, chip.acquired))
        sample: Sample = {"present": torch.from_numpy(chip.present), "chip_id": chip_id}
        if self.raw:
            sample.update(s1=s1, s2=s2, acquired=acquired)
        else:
            sample["image"] = normalise(s1, s2, acquired)
        if self.labels is not None:
            padded = np.full((max(self.max_labels, 1), 5), np.nan, np.float32)
            found = self.labels.get(chip_id, np.zeros((0, 5), np.float32))
            padded[: len(found)] = found
            sample["labels"] = torch.from_numpy(padded)
        if self.with_target:
            target = self.source.read_target(chip_id)
            if target.shape != chip.s1.shape[2:]:
                raise DataError(
                    f"{target_path(self.root, chip_id, self.split)}: size {target.shape} "
                    f"differs from the chip's {chip.s1.shape[2:]}"
                )
            sample["target"] = torch.from_numpy(target)[None]
        return self.transform(sample) if self.transform is not None else sample
