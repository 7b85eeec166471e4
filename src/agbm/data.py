"""The BioMassters data layer: find chips, read and normalise their GeoTIFFs, serve them to torch.

Layout (the challenge's, after extraction)::

    ROOT/{split}_features/{chip}_S1_{MM}.tif   4 float32 bands, -9999 = no data
    ROOT/{split}_features/{chip}_S2_{MM}.tif   11 uint16 bands, the last = cloud probability
    ROOT/{split}_agbm/{chip}_agbm.tif          1 float32 band, AGBM in t/ha

with split = train | test and MM = 00 (September) ... 11 (August). A month with no file
simply was not acquired; that is normal (often for S2 in winter), not an error.

Everything that is wrong with the files raises :class:`DataError` naming the file and the
fault: a model trained on silently patched garbage is worse than a run that stops.
"""

from __future__ import annotations

import collections
import csv
import dataclasses
import functools
import re
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import torch
from rasterio.errors import NotGeoreferencedWarning, RasterioError
from torch.utils.data import Dataset

from agbm.errors import DataError

MONTHS = 12
#: Month names in file order: the BioMassters year runs September -> August.
MONTH_NAMES = (
    "September",
    "October",
    "November",
    "December",
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
)
S1_BANDS = ("VV_asc", "VH_asc", "VV_desc", "VH_desc")
S2_BANDS = ("B2", "B3", "B4", "B5", "B6", "B7", "B8", "B8A", "B11", "B12", "CLP")
BANDS = S1_BANDS + S2_BANDS
CHANNELS = len(BANDS)

#: S1 backscatter (dB) is mapped to [0, 1] with the winning solution's fixed per-band range:
#: fixed constants (not per-chip statistics) keep absolute backscatter meaningful across chips.
S1_MIN = np.array([-25.0, -62.0, -25.0, -60.0], dtype=np.float32)
S1_MAX = np.array([29.0, 28.0, 30.0, 22.0], dtype=np.float32)
S1_NODATA = -9999.0
#: S2 reflectance (x 10,000) and cloud probability are divided by the winner's per-band maxima.
S2_MAX = np.array(
    [19616, 18400, 17536, 17097, 16928, 16768, 16593, 16492, 15401, 15226, 255], dtype=np.float32
)
#: Cloud probability 255 marks an S2 pixel without data.
S2_NODATA_CLOUD = 255

SPLITS = ("train", "test")
#: Metadata file names accepted for the chip list, first found wins.
FEATURES_METADATA_NAMES = (
    "The_BioMassters_-_features_metadata.csv.csv",
    "features_metadata_FzP19JI.csv",  # the name DrivenData first published it under
    "features_metadata.csv",
)
AGBM_METADATA_NAME = "The_BioMassters_-_train_agbm_metadata.csv.csv"
_FEATURE_RE = re.compile(r"^(?P<chip>[A-Za-z0-9]+)_S(?P<sat>[12])_(?P<month>\d{2})\.tif$")


def features_path(root: Path | str, chip_id: str, satellite: str, month: int, split: str) -> Path:
    """Path of one monthly feature file (`satellite` is "S1" or "S2", `month` 0..11)."""
    return Path(root) / f"{split}_features" / f"{chip_id}_{satellite}_{month:02d}.tif"


def target_path(root: Path | str, chip_id: str, split: str) -> Path:
    """Path of a chip's AGBM target."""
    return Path(root) / f"{split}_agbm" / f"{chip_id}_agbm.tif"


def _check_split(root: Path, split: str) -> Path:
    if split not in SPLITS:
        raise DataError(f"unknown split {split!r}: expected one of {', '.join(SPLITS)}")
    if not root.is_dir():
        raise DataError(f"data root {root} does not exist or is not a directory")
    features = root / f"{split}_features"
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
    features = _check_split(root, split)
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
    folders = (Path(root) / f"{split}_features" for split in SPLITS)
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


def read_raster(path: Path, bands: int, size: tuple[int, int] | None) -> np.ndarray:
    """Read all bands of a GeoTIFF as `[bands, H, W]`, checking band count, size and finiteness."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rasterio.open(path) as src:
                array = src.read()
    except RasterioError as exc:
        raise DataError(f"{path}: unreadable or truncated GeoTIFF ({exc})") from exc
    if array.shape[0] != bands:
        raise DataError(f"{path}: has {array.shape[0]} band(s), expected {bands}")
    if size is not None and array.shape[1:] != size:
        raise DataError(f"{path}: size {array.shape[1:]} differs from the chip's {size}")
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        raise DataError(f"{path}: contains NaN or infinite values")
    return array


#: The dtype each satellite's files have in the layout; the loaders keep it to the device.
RAW_DTYPES = {"S1": np.dtype(np.float32), "S2": np.dtype(np.uint16)}
#: Satellite, first of its channels among the 15, band count.
_SOURCES = (("S1", 0, len(S1_BANDS)), ("S2", len(S1_BANDS), len(S2_BANDS)))


@dataclass(frozen=True)
class RawChip:
    """A chip's 12 months as its files hold them (months without a file are zeros).

    This, not the normalised image, is what the loaders move: the uint16 S2 bands take half
    the bytes of float32, and normalising on the training device (`normalise`) takes no CPU
    time in the loader workers.
    """

    s1: np.ndarray  # float32 [12, 4, H, W], dB, -9999 = no data
    s2: np.ndarray  # uint16 [12, 11, H, W], CLP 255 = no data
    acquired: np.ndarray  # bool [2, 12]: which S1 / S2 monthly files exist

    @property
    def present(self) -> np.ndarray:
        """bool `[12]`: months with an S1 or an S2 file."""
        return self.acquired.any(axis=0)


def as_layout_dtype(raw: np.ndarray, satellite: str, path: Path) -> np.ndarray:
    """`raw` in the layout's dtype for `satellite` (S1 float32, S2 uint16), whatever type the
    file stores it in (TorchGeo's fixtures hold S1 as uint16, some tools write S2 as float),
    as long as every value survives: a value that cannot be represented is an error."""
    dtype = RAW_DTYPES[satellite]
    if raw.dtype == dtype:
        return raw
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        fits = raw.size == 0 or (raw.min() >= info.min and raw.max() <= info.max)
        exact = np.issubdtype(raw.dtype, np.integer) or bool((raw == np.round(raw)).all())
    else:
        limit = 2**24 if np.issubdtype(raw.dtype, np.integer) else np.finfo(dtype).max
        fits, exact = raw.size == 0 or bool(np.abs(raw).max() <= limit), True
    if not (fits and exact):
        raise DataError(
            f"{path}: its {raw.dtype} values cannot all be held as the layout's {dtype} "
            f"({satellite}: {'integers 0..65535' if dtype == np.uint16 else 'float32'})"
        )
    return raw.astype(dtype)


def read_raw_chip(root: Path | str, chip_id: str, split: str = "train") -> RawChip:
    """Read one chip's 12 months of S1 and S2 files, checking each file; a file whose size
    differs from most of the chip's files is the one named."""
    root = Path(root)
    _check_split(root, split)
    rasters: dict[tuple[int, int], np.ndarray] = {}
    paths: dict[tuple[int, int], Path] = {}
    for month in range(MONTHS):
        for index, (satellite, _, bands) in enumerate(_SOURCES):
            path = features_path(root, chip_id, satellite, month, split)
            if path.is_file():
                raw = as_layout_dtype(read_raster(path, bands, None), satellite, path)
                rasters[index, month], paths[index, month] = raw, path
    if not rasters:
        raise DataError(
            f"chip {chip_id}: no S1 or S2 file for any month in {root / f'{split}_features'}"
        )
    sizes = collections.Counter(r.shape[1:] for r in rasters.values())
    size, count = sizes.most_common(1)[0]
    for key, raster in rasters.items():
        if raster.shape[1:] != size:
            raise DataError(
                f"{paths[key]}: size {raster.shape[1:]} differs from the {size} of "
                f"{count} other file(s) of chip {chip_id}"
            )
    acquired = np.zeros((len(_SOURCES), MONTHS), dtype=bool)
    stacks = []
    for index, (satellite, _, bands) in enumerate(_SOURCES):
        stack = np.zeros((MONTHS, bands, *size), dtype=RAW_DTYPES[satellite])
        for month in range(MONTHS):
            if (index, month) in rasters:
                stack[month], acquired[index, month] = rasters[index, month], True
        stacks.append(stack)
    return RawChip(*stacks, acquired)


@dataclass(frozen=True)
class InputConventions:
    """How a model's input image is made from the files: part of the model, not of a run.

    A model only works on inputs made the way it was trained on, so every checkpoint records
    its conventions (`TemporalUNet.config["input_conventions"]`) and everything that feeds a
    model applies the model's own. Two sets exist:

    * `AGBM` (agbm's first models): normalised values clipped to [0, 1], S2 pixels whose
      cloud probability is 255 set to 0, months without any file masked out of the
      attention;
    * `WINNER` (the BioMassters winner's, as measured from its code): nothing clipped, cloud
      probability 255 read as 1.0, every month attended (absent ones as zeros).

    Both use the winner's fixed min-max constants, S1 no data (-9999) as 0 and zeros for a
    satellite without a file that month.
    """

    s1_min: tuple[float, ...] = tuple(S1_MIN.tolist())
    s1_max: tuple[float, ...] = tuple(S1_MAX.tolist())
    s2_max: tuple[float, ...] = tuple(S2_MAX.tolist())
    #: Clip every normalised value to [0, 1] (values beyond the constants' range are rare).
    clamp: bool = True
    #: Set all bands of S2 pixels whose cloud probability is 255 (no data) to 0.
    cloud_nodata: bool = True
    #: Mask months with neither an S1 nor an S2 file out of the attention.
    mask_absent: bool = True

    def to_dict(self) -> dict[str, Any]:
        """Plain values, as checkpoints store them (loadable with `weights_only=True`)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in vars(self).items()}

    @classmethod
    def from_config(cls, value: str | dict[str, Any] | InputConventions) -> InputConventions:
        """From a name ("agbm", "winner"), a stored dict, or conventions themselves."""
        if isinstance(value, InputConventions):
            return value
        if isinstance(value, str):
            if value not in CONVENTIONS:
                raise ValueError(
                    f"unknown input conventions {value!r}; known: {', '.join(CONVENTIONS)}"
                )
            return CONVENTIONS[value]
        if not isinstance(value, dict):
            raise ValueError(f"input conventions must be a name or a dict, got {value!r}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(value) - known)
        if unknown:
            raise ValueError(f"unknown input convention(s) {unknown}; known: {sorted(known)}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in value.items()})

    @property
    def name(self) -> str:
        """ "agbm", "winner", or "custom"."""
        return next((n for n, c in CONVENTIONS.items() if c == self), "custom")

    def attended(self, present: torch.Tensor) -> torch.Tensor:
        """The month mask the model gets: `present` itself, or all months (`[..., 12]`)."""
        return present if self.mask_absent else torch.ones_like(present)


AGBM_CONVENTIONS = InputConventions()
WINNER_CONVENTIONS = InputConventions(clamp=False, cloud_nodata=False, mask_absent=False)
CONVENTIONS = {"agbm": AGBM_CONVENTIONS, "winner": WINNER_CONVENTIONS}


@functools.cache
def _normalisation_constants(
    device: torch.device, conventions: InputConventions
) -> tuple[torch.Tensor, ...]:
    """S1 minimum, S1 range and S2 maxima as `[bands, 1, 1]` tensors, made once per device (a
    fresh host-to-device copy at every batch would stall the CPU until the GPU catches up)."""
    s1_min, s1_max, s2_max = (
        np.array(c, dtype=np.float32)
        for c in (conventions.s1_min, conventions.s1_max, conventions.s2_max)
    )
    return tuple(
        torch.from_numpy(a)[:, None, None].to(device) for a in (s1_min, s1_max - s1_min, s2_max)
    )


def normalise(
    s1: torch.Tensor,
    s2: torch.Tensor,
    acquired: torch.Tensor,
    conventions: InputConventions = AGBM_CONVENTIONS,
) -> torch.Tensor:
    """The model's input image `[..., 12, 15, H, W]` float32 from raw months, on their device.

    `s1` float32 `[..., 12, 4, H, W]` dB, `s2` uint16 `[..., 12, 11, H, W]`, `acquired` bool
    `[..., 2, 12]`. Each band is min-max normalised with fixed constants (S1 by its minimum
    and maximum, S2 divided by its maximum); S1 no data (-9999) and months without a file
    become 0; clipping to [0, 1] and S2 cloud no data (255) follow `conventions`. Computed
    in place in the one output tensor: fresh temporaries of a chip's size cost more than the
    arithmetic on a CPU.
    """
    s1_min, s1_range, s2_max = _normalisation_constants(s1.device, conventions)
    image = torch.empty((*s1.shape[:-3], CHANNELS, *s1.shape[-2:]), device=s1.device)
    s1_norm, s2_norm = image[..., : len(S1_BANDS), :, :], image[..., len(S1_BANDS) :, :, :]
    torch.sub(s1, s1_min, out=s1_norm)
    s1_norm.div_(s1_range)
    s2_norm.copy_(s2)  # the only uint16 operation: CUDA supports few others on uint16
    cloud_nodata = s2_norm[..., -1:, :, :] == S2_NODATA_CLOUD if conventions.cloud_nodata else None
    s2_norm.div_(s2_max)
    if conventions.clamp:
        image.clamp_(0.0, 1.0)
    s1_norm.masked_fill_(s1 == S1_NODATA, 0.0)
    if cloud_nodata is not None:
        s2_norm.masked_fill_(cloud_nodata, 0.0)
    for index, (_, first, bands) in enumerate(_SOURCES):
        absent = ~acquired[..., index, :, None, None, None]
        image[..., first : first + bands, :, :].masked_fill_(absent, 0.0)
    return image


def read_chip(
    root: Path | str,
    chip_id: str,
    split: str = "train",
    conventions: InputConventions = AGBM_CONVENTIONS,
) -> tuple[np.ndarray, np.ndarray]:
    """Read and normalise one chip's 12 months.

    Returns `image` float32 `[12, 15, H, W]` (S1 bands then S2 bands, each in [0, 1] with the
    default conventions, no data as 0) and `present` bool `[12]`, False for a month with
    neither S1 nor S2 file (its image is all zeros). A month with only one of the two has the
    other's bands at 0.
    """
    chip = read_raw_chip(root, chip_id, split)
    arrays = (torch.from_numpy(a) for a in (chip.s1, chip.s2, chip.acquired))
    image = normalise(*arrays, conventions)
    return image.numpy(), chip.present


def read_target(root: Path | str, chip_id: str, split: str = "train") -> np.ndarray:
    """A chip's AGBM target, float32 `[H, W]` in t/ha."""
    path = target_path(root, chip_id, split)
    if not path.is_file():
        raise DataError(f"{path}: target file missing for chip {chip_id}")
    return read_raster(path, 1, None)[0].astype(np.float32, copy=False)


def prediction_path(out: Path | str, chip_id: str) -> Path:
    """Where a chip's predicted AGBM map goes: named as its target, in the challenge's format."""
    return Path(out) / f"{chip_id}_agbm.tif"


def read_prediction(path: Path, shape: tuple[int, ...]) -> np.ndarray:
    """A prediction file's AGBM `[H, W]`, checked: one finite band of the chip's `shape`."""
    if not path.is_file():
        raise DataError(f"{path}: prediction missing")
    return read_raster(path, 1, tuple(shape))[0]


def has_targets(root: Path | str, split: str) -> bool:
    """Whether a split ships targets (train always; test when `test_agbm/` was unpacked)."""
    return (Path(root) / f"{split}_agbm").is_dir()


Sample = dict[str, torch.Tensor | str]


class ChipDataset(Dataset):
    """A torch Dataset of chips: dicts with `image` `[12, 15, H, W]`, `present` `[12]`,
    `target` `[1, H, W]` (when the split has targets) and `chip_id`.

    `root` is a raw data root or a cache made by `agbm prepare` (same samples, faster).
    `transform`, if given, maps a sample dict to a sample dict (augmentation). `targets`
    False skips reading targets (prediction); None reads them when the split has them.
    `raw` True gives the months as stored instead of `image` (`s1`, `s2`, `acquired`; see
    `RawChip`), for `model_input` to normalise on the device.
    """

    def __init__(
        self,
        root: Path | str,
        split: str = "train",
        chip_ids: Sequence[str] | None = None,
        transform: Callable[[Sample], Sample] | None = None,
        targets: bool | None = None,
        raw: bool = False,
    ) -> None:
        from agbm.cache import open_source  # late: agbm.cache builds on this module

        self.root = Path(root)
        self.split = split
        #: A raw root or an `agbm prepare` cache: both give bit-identical samples.
        self.source = open_source(self.root, split)
        self.chip_ids = list(chip_ids) if chip_ids is not None else self.source.chip_ids()
        self.with_target = self.source.has_targets() if targets is None else targets
        self.transform = transform
        self.raw = raw
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
        if self.with_target:
            target = self.source.read_target(chip_id)
            if target.shape != chip.s1.shape[2:]:
                raise DataError(
                    f"{target_path(self.root, chip_id, self.split)}: size {target.shape} "
                    f"differs from the chip's {chip.s1.shape[2:]}"
                )
            sample["target"] = torch.from_numpy(target)[None]
        return self.transform(sample) if self.transform is not None else sample


def model_input(
    batch: dict, device: torch.device, conventions: InputConventions
) -> tuple[torch.Tensor, torch.Tensor]:
    """`image` `[B, 12, 15, H, W]` and the attended months `[B, 12]` on `device` from a batch
    of raw samples (`ChipDataset(..., raw=True)`), made by the model's `conventions`: the
    normalisation runs there."""
    s1, s2, acquired, present = (
        batch[key].to(device, non_blocking=True) for key in ("s1", "s2", "acquired", "present")
    )
    return normalise(s1, s2, acquired, conventions), conventions.attended(present)
