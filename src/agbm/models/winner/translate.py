"""The winner's checkpoint in agbm's terms: its timm 0.6 backbone name in timm 1.x, its
architecture as `TemporalUNet`'s config (`model_config`), its keys as `TemporalUNet`'s
(`agbm_key`), and its tensors loaded into the model, every one checked (`load_weights`)."""

from __future__ import annotations

import re
from typing import Any

import timm
import torch
from timm.models import get_deprecated_models

from agbm.data.conventions import WINNER_CONVENTIONS
from agbm.errors import CheckpointError
from agbm.models.unet import TemporalUNet
from agbm.models.winner.read import WinnerCheckpoint

#: Winner key prefix -> TemporalUNet key prefix.
_RENAMES: tuple[tuple[str, str], ...] = (
    ("encoder.model.", "encoder."),
    ("segmentation_head.", "head."),
)


_ATTN = re.compile(r"^attn\.(\d+)\.attn\.")


def agbm_key(key: str) -> str:
    """A winner state-dict key as `TemporalUNet` names it."""
    for old, new in _RENAMES:
        if key.startswith(old):
            return new + key[len(old) :]
    return _ATTN.sub(r"temporal.\1.score.", key)


def timm_name(name: str) -> str:
    """A timm 0.6 model name in timm 1.x (`tf_efficientnetv2_l_in21k` ->
    `tf_efficientnetv2_l.in21k`); names timm still knows are kept."""
    renamed = get_deprecated_models().get(name)
    if renamed:
        return renamed
    if timm.is_model(name):
        return name
    raise CheckpointError(f"backbone {name!r} is not a timm model, under its timm 0.6 or 1.x name")


def model_config(ckpt: WinnerCheckpoint) -> dict[str, Any]:
    """The `TemporalUNet` arguments that rebuild the winner's model from its file."""
    if not ckpt.backbone:
        raise CheckpointError("the file names no backbone (no args.backbone, no pretrained_cfg)")
    stem = next(
        (t for k, t in ckpt.state_dict.items() if k.startswith("encoder.") and t.ndim == 4), None
    )
    if stem is None:
        raise CheckpointError("the file holds no encoder convolution weights")
    widths = ckpt.args.get("dec_channels") or _decoder_widths(ckpt.state_dict)
    return {
        "backbone": timm_name(ckpt.backbone),
        "in_chans": int(ckpt.args.get("in_channels") or stem.shape[1]),
        "months": 12,
        "decoder_channels": [int(w) for w in widths],
        "temporal": "pool",
        "output_scale": 1.0,
        "output_init": 0.0,
        "input_conventions": WINNER_CONVENTIONS.to_dict(),
    }


def _decoder_widths(state_dict: dict[str, torch.Tensor]) -> list[int]:
    """Decoder block widths from the output channels of each block's first convolution."""
    found = {}
    for key, tensor in state_dict.items():
        if match := re.fullmatch(r"decoder\.blocks\.(\d+)\.conv1\.0\.weight", key):
            found[int(match[1])] = tensor.shape[0]
    if not found:
        raise CheckpointError("the file holds no UNet decoder blocks (decoder.blocks.N.conv1)")
    return [found[i] for i in sorted(found)]


def load_weights(model: TemporalUNet, state_dict: dict[str, torch.Tensor]) -> list[str]:
    """Copy the winner's tensors into `model`, every one checked; returns the winner keys
    left out (the decoder's last skip attention, which its forward pass never used)."""
    unused = f"decoder.blocks.{len(model.decoder.blocks) - 1}.attention1."
    dropped = [k for k in state_dict if k.startswith(unused)]
    mapped = {agbm_key(k): t for k, t in state_dict.items() if not k.startswith(unused)}
    target = model.state_dict()
    problems = [f"{k}: missing from the file" for k in target if k not in mapped]
    problems += [f"{k}: no place in the model" for k in mapped if k not in target]
    problems += [
        f"{k}: shape {tuple(mapped[k].shape)} in the file, {tuple(t.shape)} in the model"
        for k, t in target.items()
        if k in mapped and mapped[k].shape != t.shape
    ]
    if problems:
        shown = "; ".join(problems[:3])
        raise CheckpointError(
            f"{len(problems)} tensor(s) do not fit {model.config['backbone']} (agbm names): {shown}"
        )
    model.load_state_dict(mapped)
    return dropped
