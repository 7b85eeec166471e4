"""Bands, their fixed normalisation constants, and the input conventions a model was
trained with: how the files' raw values become the model's input image."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

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


#: The dtype each satellite's files have in the layout; the loaders keep it to the device.
RAW_DTYPES = {"S1": np.dtype(np.float32), "S2": np.dtype(np.uint16)}


#: Satellite, first of its channels among the 15, band count.
SATELLITES = (("S1", 0, len(S1_BANDS)), ("S2", len(S1_BANDS), len(S2_BANDS)))


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
    for index, (_, first, bands) in enumerate(SATELLITES):
        absent = ~acquired[..., index, :, None, None, None]
        image[..., first : first + bands, :, :].masked_fill_(absent, 0.0)
    return image


def check_present(present: torch.Tensor, chip_ids: Sequence[str] | None = None) -> None:
    """Refuse a batch (`present` bool `[B, 12]`, on the CPU) with a sample that has no month:
    the model would have nothing to attend to (a NaN). Checked where batches are made, so
    that the device never waits for the answer."""
    empty = (~present.any(dim=1)).nonzero().flatten().tolist()
    if empty:
        named = [chip_ids[i] for i in empty] if chip_ids is not None else empty
        raise ValueError(
            f"sample(s) {named} of the batch have no month present; a prediction needs at least one"
        )


def model_input(
    batch: dict, device: torch.device, conventions: InputConventions
) -> tuple[torch.Tensor, torch.Tensor]:
    """`image` `[B, 12, 15, H, W]` and the attended months `[B, 12]` on `device` from a batch
    of raw samples (`ChipDataset(..., raw=True)`), made by the model's `conventions`: the
    normalisation runs there. The attended months are checked on the CPU first
    (`check_present`)."""
    attended = conventions.attended(batch["present"])
    check_present(attended, batch.get("chip_id"))
    s1, s2, acquired = (
        batch[key].to(device, non_blocking=True) for key in ("s1", "s2", "acquired")
    )
    return normalise(s1, s2, acquired, conventions), attended.to(device, non_blocking=True)
