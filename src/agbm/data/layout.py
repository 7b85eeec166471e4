"""Where the BioMassters files are: the challenge's directory layout and its chip lists.

Layout (the challenge's, after extraction)::

    ROOT/{split}_features/{chip}_S1_{MM}.tif   4 float32 bands, -9999 = no data
    ROOT/{split}_features/{chip}_S2_{MM}.tif   11 uint16 bands, the last = cloud probability
    ROOT/{split}_agbm/{chip}_agbm.tif          1 float32 band, AGBM in t/ha

with split = train | test and MM = 00 (September) ... 11 (August). A month with no file
simply was not acquired; that is normal (often for S2 in winter), not an error.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

from agbm.errors import DataError

SPLITS = ("train", "test")


#: Metadata file names accepted for the chip list, first found wins.
FEATURES_METADATA_NAMES = (
    "The_BioMassters_-_features_metadata.csv.csv",
    "features_metadata_FzP19JI.csv",  # the name DrivenData first published it under
    "features_metadata.csv",
)


AGBM_METADATA_NAME = "The_BioMassters_-_train_agbm_metadata.csv.csv"


_FEATURE_RE = re.compile(r"^(?P<chip>[A-Za-z0-9]+)_S(?P<sat>[12])_(?P<month>\d{2})\.tif$")


#: A target (or prediction) file name; dotfiles such as macOS's `._*` copies never match.
_AGBM_FILE = re.compile(r"^(?P<chip>[A-Za-z0-9]+)_agbm\.tif$")


def features_folder(root: Path | str, split: str) -> Path:
    """The folder of a split's monthly S1 and S2 files."""
    return Path(root) / f"{split}_features"


def targets_folder(root: Path | str, split: str) -> Path:
    """The folder of a split's AGBM targets."""
    return Path(root) / f"{split}_agbm"


def labels_folder(root: Path | str, split: str) -> Path:
    """Where a data root keeps its chips' labels (`agbm chips`)."""
    return Path(root) / f"{split}_labels"


def agbm_chips(folder: Path) -> list[str]:
    """The chip ids of the `{chip}_agbm.tif` files (targets or predictions) in `folder`."""
    return sorted(m["chip"] for p in folder.iterdir() if (m := _AGBM_FILE.match(p.name)))


def features_path(root: Path | str, chip_id: str, satellite: str, month: int, split: str) -> Path:
    """Path of one monthly feature file (`satellite` is "S1" or "S2", `month` 0..11)."""
    return features_folder(root, split) / f"{chip_id}_{satellite}_{month:02d}.tif"


def target_path(root: Path | str, chip_id: str, split: str) -> Path:
    """Path of a chip's AGBM target."""
    return targets_folder(root, split) / f"{chip_id}_agbm.tif"


def check_split(root: Path, split: str) -> Path:
    if split not in SPLITS:
        raise DataError(f"unknown split {split!r}: expected one of {', '.join(SPLITS)}")
    if not root.is_dir():
        raise DataError(f"data root {root} does not exist or is not a directory")
    features = features_folder(root, split)
    if not features.is_dir():
        raise DataError(
            f"{root} has no {split}_features/ directory: not a BioMassters data root "
            f"(expected {split}_features/ and {split}_agbm/ inside it)"
        )
    return features


def list_chips(root: Path | str, split: str = "train") -> list[str]:
    """Sorted chip ids of a split: from the features metadata CSV when present, else file names.

    The CSV is what the organisers publish and lists every chip even before all files are
    unpacked, so a half-extracted archive fails loudly in `read_chip` instead of shrinking
    the data set without notice.
    """
    root = Path(root)
    features = check_split(root, split)
    metadata = features_metadata(root)
    if metadata is not None:
        chips = _chips_from_metadata(metadata, split)
    else:
        chips = {m["chip"] for p in features.iterdir() if (m := _FEATURE_RE.match(p.name))}
    if not chips:
        raise DataError(f"no chips found for split {split!r} in {root}")
    return sorted(chips)


def splits_present(root: Path | str) -> list[str]:
    """The splits whose `{split}_features/` directory holds any file (an empty one, as a
    partial download or `agbm synth --test-chips 0` leaves, does not count)."""
    folders = (features_folder(root, split) for split in SPLITS)
    return [s for s, f in zip(SPLITS, folders, strict=True) if f.is_dir() and any(f.iterdir())]


def features_metadata(root: Path) -> Path | None:
    """The features metadata CSV of a data root: a known name first, else any
    `*features_metadata*.csv` (TorchGeo's `biomassters_features_metadata.csv`, ...); None
    when there is none. Dotfiles (macOS's `._*` copies) are never it."""
    for name in FEATURES_METADATA_NAMES:
        if (root / name).is_file():
            return root / name
    found = sorted(
        p
        for p in root.glob("*features_metadata*.csv")
        if p.is_file() and not p.name.startswith(".")
    )
    return found[0] if found else None


def _chips_from_metadata(path: Path, split: str) -> set[str]:
    try:  # utf-8-sig: a spreadsheet's byte-order mark is not part of the first column's name
        with path.open(newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            missing = {"chip_id", "split"} - set(reader.fieldnames or ())
            if missing:
                raise DataError(f"{path}: metadata lacks column(s) {', '.join(sorted(missing))}")
            return {row["chip_id"] for row in reader if row["split"] == split}
    except UnicodeDecodeError as err:
        raise DataError(
            f"{path}: not a UTF-8 CSV file ({err.reason} at byte {err.start})"
        ) from None


def prediction_path(out: Path | str, chip_id: str, layer: str = "agbm") -> Path:
    """Where a chip's predicted AGBM map goes: named as its target, in the challenge's format;
    `layer` "low", "high" or "spread" names its calibrated bounds and its members' spread."""
    return Path(out) / f"{chip_id}_{layer}.tif"


def has_targets(root: Path | str, split: str) -> bool:
    """Whether a split ships targets (train always; test when `test_agbm/` was unpacked)."""
    return targets_folder(root, split).is_dir()
