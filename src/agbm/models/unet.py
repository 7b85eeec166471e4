"""TemporalUNet: one timm encoder shared by all months, temporal attention at every level, UNet.

Each month's 15-band image goes through the same encoder (one batch of `B*T` images). At
every encoder level the `T` month feature vectors of each spatial position are fused into
one: a masked self-attention over months (with a learned month embedding) followed by
attention pooling, or attention pooling alone (`temporal="pool"`, the BioMassters winner's
exact variant). Absent months are masked out of both. A heavy UNet decoder (smp's, with
scSE attention and batch norm) upsamples the fused levels to full resolution, and a 3x3
conv head gives one channel: AGBM in t/ha.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import torch
from segmentation_models_pytorch.decoders.unet.decoder import UnetDecoder
from torch import nn

from agbm.choices import TEMPORAL_KINDS
from agbm.data.conventions import InputConventions
from agbm.data.normalise import check_present
from agbm.models.encoder import create_encoder
from agbm.models.temporal import TEMPORAL_BLOCKS, fuse_months


class TemporalUNet(nn.Module):
    """AGBM (t/ha) from a `[B, T, C, H, W]` monthly image stack and a `[B, T]` month mask.

    Args:
        backbone: any timm model name with `features_only` support.
        in_chans: bands per month (15: 4 Sentinel-1 + 11 Sentinel-2).
        months: T; the month embedding has one entry per month, and inputs must match.
        pretrained: False for random init, True for timm's weights (Hugging Face hub, stem
            adapted to `in_chans` by timm), or a path to a local timm weights file
            (safetensors or torch) of the full classification model.
        decoder_channels: UNet decoder widths, deepest first; the first `len(levels)` are
            used, so the 5 defaults also fit backbones with 4 levels (stride 4 first).
        temporal: "attention" (self-attention over months, then attention pooling) or
            "pool" (attention pooling alone: the winner's exact variant).
        output_scale: the head's output is multiplied by this constant. Targets span
            0..400 t/ha and Adam moves each weight by about the learning rate per step,
            whatever the loss scale: with the scale, O(1) activations span the target range
            instead of needing thousands of steps to grow to it.
        output_init: the head's bias starts at `output_init / output_scale`, so a fresh
            model predicts about the mean biomass (~70 t/ha) rather than 0. Non-negativity
            is not forced; inference clamps.
        input_conventions: how the model's input is made from the files ("agbm", "winner"
            or a dict; see `agbm.data.InputConventions`). The model does not apply them
            itself: it carries them, in `conventions` and in its checkpoint's config, for
            whatever feeds it. The default is what agbm's checkpoints written before the
            setting existed were trained with.
    """

    def __init__(
        self,
        backbone: str = "tf_efficientnetv2_l.in21k",
        in_chans: int = 15,
        months: int = 12,
        pretrained: bool | str | os.PathLike = False,
        decoder_channels: Sequence[int] = (384, 368, 352, 336, 320),
        temporal: str = "attention",
        output_scale: float = 100.0,
        output_init: float = 70.0,
        input_conventions: str | dict[str, Any] | InputConventions = "agbm",
    ) -> None:
        super().__init__()
        if temporal not in TEMPORAL_KINDS:
            raise ValueError(f"temporal must be one of {TEMPORAL_KINDS}, got {temporal!r}")
        #: How inputs must be made for this model (applied by the callers).
        self.conventions = InputConventions.from_config(input_conventions)
        self.config: dict[str, Any] = {
            "backbone": backbone,
            "in_chans": in_chans,
            "months": months,
            "pretrained": pretrained if isinstance(pretrained, bool) else str(pretrained),
            "decoder_channels": [int(c) for c in decoder_channels],
            "temporal": temporal,
            "output_scale": float(output_scale),
            "output_init": float(output_init),
            "input_conventions": self.conventions.to_dict(),
        }
        self.encoder = create_encoder(backbone, in_chans, pretrained)
        channels = self.encoder.feature_info.channels()
        self.stride = max(self.encoder.feature_info.reduction())
        if len(decoder_channels) < len(channels):
            raise ValueError(
                f"{backbone} has {len(channels)} feature levels but decoder_channels has only "
                f"{len(decoder_channels)} entries"
            )
        self.temporal = nn.ModuleList(TEMPORAL_BLOCKS[temporal](c, months) for c in channels)
        widths = list(decoder_channels[: len(channels)])
        self.decoder = UnetDecoder(
            encoder_channels=[in_chans, *channels],  # first entry: the full-res "skip", unused
            decoder_channels=widths,
            n_blocks=len(widths),
            use_norm="batchnorm",
            attention_type="scse",
        )
        # The last block has no skip connection, so smp never calls its skip attention: drop
        # it, as DDP needs every parameter to take part in the forward pass.
        self.decoder.blocks[-1].attention1 = nn.Identity()
        self.head = nn.Conv2d(widths[-1], 1, kernel_size=3, padding=1)
        nn.init.constant_(self.head.bias, output_init / output_scale)
        self.output_scale = output_scale

    def forward(self, image: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        """`image` float `[B, T, C, H, W]`, `present` bool `[B, T]` -> float `[B, 1, H, W]`."""
        self._check_inputs(image, present)
        b, t, c, h, w = image.shape
        levels = self.encoder(image.reshape(b * t, c, h, w))
        fused = [fuse_months(f, present, m) for f, m in zip(levels, self.temporal, strict=True)]
        # smp's decoder only reads the first entry's size (full resolution) to upsample to.
        x = self.decoder([image.new_empty(b, 0, h, w), *fused])
        return self.head(x) * self.output_scale

    def _check_inputs(self, image: torch.Tensor, present: torch.Tensor) -> None:
        """Fail with a clear message rather than a shape error deep inside, or a NaN."""
        months, in_chans = self.config["months"], self.config["in_chans"]
        if image.ndim != 5 or not image.is_floating_point():
            raise ValueError(
                f"image must be a float [B, T, C, H, W] tensor, got "
                f"{image.dtype} {tuple(image.shape)}"
            )
        b, t, c, h, w = image.shape
        if t != months or c != in_chans:
            raise ValueError(
                f"image has {t} months of {c} bands, the model expects {months} of {in_chans}"
            )
        if h % self.stride or w % self.stride:
            raise ValueError(
                f"image height and width must be multiples of {self.stride}, got {h}x{w}"
            )
        if present.dtype != torch.bool or tuple(present.shape) != (b, t):
            raise ValueError(
                f"present must be a bool [B, T] = [{b}, {t}] tensor, got "
                f"{present.dtype} {tuple(present.shape)}"
            )
        # Which samples lack a month is a question to the host: on a GPU it would wait for
        # the device at every step, and break the graph under torch.compile. The loaders
        # check their batches on the CPU instead (`agbm.data.check_present`).
        if present.device.type == "cpu" and not torch.compiler.is_compiling():
            check_present(present)
