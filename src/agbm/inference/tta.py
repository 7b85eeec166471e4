"""Test-time augmentation, batch prediction, and the models an inference run loads."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from agbm.data.conventions import InputConventions
from agbm.errors import CheckpointError
from agbm.models.checkpoint import load_model
from agbm.runtime import autocast

Transform = tuple[Callable[[torch.Tensor], torch.Tensor], Callable[[torch.Tensor], torch.Tensor]]


def _flip(dims: tuple[int, ...]) -> Transform:
    def apply(x: torch.Tensor) -> torch.Tensor:
        return x.flip(dims) if dims else x

    return apply, apply  # a flip is its own inverse


def _turn(k: int, flip: bool) -> Transform:
    def forward(x: torch.Tensor) -> torch.Tensor:
        x = x.rot90(k, dims=(-2, -1))
        return x.flip(-1) if flip else x

    def inverse(x: torch.Tensor) -> torch.Tensor:
        x = x.flip(-1) if flip else x
        return x.rot90(-k, dims=(-2, -1))

    return forward, inverse


#: Test-time augmentations: (forward, inverse) pairs acting on the last two (spatial) dims.
#: "hv" is the BioMassters winner's submission: the plain pass and the pass flipped on both
#: axes (its script's `--tta 4`).
TTA: dict[str, list[Transform]] = {
    "none": [_flip(())],
    "hv": [_flip(()), _flip((-2, -1))],
    "flips": [_flip(()), _flip((-1,)), _flip((-2,)), _flip((-2, -1))],
    "d4": [_turn(k, flip) for flip in (False, True) for k in range(4)],
}


def predict_batch(
    models: Sequence[torch.nn.Module],
    image: torch.Tensor,
    present: torch.Tensor,
    *,
    tta: str = "flips",
    amp_dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """Mean prediction `[B, 1, H, W]` (t/ha, >= 0) over models and test-time augmentations."""
    return predict_spread(models, image, present, tta=tta, amp_dtype=amp_dtype)[0]


@torch.no_grad()
def predict_spread(
    models: Sequence[torch.nn.Module],
    image: torch.Tensor,
    present: torch.Tensor,
    *,
    tta: str = "flips",
    amp_dtype: torch.dtype | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean `[B, 1, H, W]` as `predict_batch`, the standard deviation between the models'
    and TTA passes' predictions): the members' disagreement, not a calibrated interval. The
    sums are of each member's difference from the first: sums of the predictions' own
    squares (~1e4 at 100 t/ha) would cancel to float32's rounding, ~0.03 t/ha of spread."""
    first: torch.Tensor | None = None
    total = torch.zeros(image.shape[0], 1, *image.shape[-2:], device=image.device)
    squares = torch.zeros_like(total)
    for model in models:
        for forward, inverse in TTA[tta]:
            with autocast(image.device, amp_dtype):
                pred = inverse(model(forward(image), present).float())
            first = pred if first is None else first
            total += pred - first
            squares += (pred - first) ** 2
    n = members(len(models), tta)
    shift = total / n
    spread = (squares / n - shift**2).clamp_(min=0).sqrt_()
    return (first + shift).clamp_(min=0), spread


def members(models: int, tta: str) -> int:
    """How many predictions an ensemble of `models` with `tta` averages: its members, whose
    spread `predict_spread` measures."""
    return models * len(TTA[tta])


def load_for_inference(
    checkpoints: Sequence[Path | str], device: torch.device
) -> list[torch.nn.Module]:
    """The checkpoints' models on `device` in eval mode, channels-last as they trained (the
    layout convolutions run fastest in on GPUs, and no slower on CPUs)."""
    return [load_model(c).to(device, memory_format=torch.channels_last).eval() for c in checkpoints]


def shared_conventions(models: Sequence[torch.nn.Module]) -> InputConventions:
    """The input conventions every model of an ensemble was trained with: one input serves
    them all, so models made with different conventions cannot be averaged."""
    found = {model.conventions for model in models}
    if len(found) > 1:
        names = ", ".join(sorted(c.name for c in found))
        raise CheckpointError(
            f"the checkpoints were trained on inputs made by different conventions ({names}); "
            "an ensemble needs checkpoints of one kind"
        )
    return found.pop()


def check_ensemble(checkpoints: Sequence[Path | str]) -> InputConventions:
    """The input conventions of the ensemble of `checkpoints`, each loaded once on the CPU:
    a file that is not a checkpoint, or models that cannot be averaged, fail before the
    work of a run that loads them later (composing a place, a region's tasks)."""
    return shared_conventions(load_for_inference(checkpoints, torch.device("cpu")))
