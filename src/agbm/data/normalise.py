"""From raw months to the model's input, in torch on the device: normalisation by a model's
input conventions, and the check of a batch's months made on the CPU."""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np
import torch

from agbm.data.bands import CHANNELS, S1_NODATA, S2_NODATA_CLOUD, SENSORS
from agbm.data.conventions import AGBM_CONVENTIONS, InputConventions


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
    s1_norm, s2_norm = (image[..., sensor.channels, :, :] for sensor in SENSORS)
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
    for index, sensor in enumerate(SENSORS):
        absent = ~acquired[..., index, :, None, None, None]
        image[..., sensor.channels, :, :].masked_fill_(absent, 0.0)
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
