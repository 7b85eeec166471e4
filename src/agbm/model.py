"""TemporalUNet: one timm encoder shared by all months, temporal attention at every level, UNet.

Each month's 15-band image goes through the same encoder (one batch of `B*T` images). At
every encoder level the `T` month feature vectors of each spatial position are fused into
one: a masked self-attention over months (with a learned month embedding) followed by
attention pooling, or attention pooling alone (`temporal="pool"`, the BioMassters winner's
exact variant). Absent months are masked out of both. A heavy UNet decoder (smp's, with
scSE attention and batch norm) upsamples the fused levels to full resolution, and a 3x3
conv head gives one channel: AGBM in t/ha.

Checkpoint format (a `torch.save`d dict, read back with `weights_only=True`)::

    {"model_config": dict, "model": state_dict, ...anything else}

`model_config` holds the constructor arguments (`TemporalUNet.config`), so `load_model`
rebuilds the model from the file alone; training code may add more keys beside them.
"""

from __future__ import annotations

import contextlib
import inspect
import os
import pickle
import socket
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import timm
import torch
import torch.nn.functional as F
from segmentation_models_pytorch.decoders.unet.decoder import UnetDecoder
from timm.models import get_pretrained_cfg, load_state_dict
from torch import nn

from agbm.data import InputConventions
from agbm.errors import PretrainedWeightsError

__all__ = [
    "PretrainedWeightsError",
    "TemporalUNet",
    "build_model",
    "load_model",
    "save_model",
]

#: Most sequences (spatial positions) per fused-attention call. The CUDA flash and
#: memory-efficient SDPA kernels put the batch in a grid dimension capped at 65535
#: (pytorch/pytorch#146704), and a 256x256 input at batch 8 has 131072 positions at stride 2.
_SDPA_MAX_BATCH = 32768

#: Width of one attention head; heads are capped at `_MAX_HEADS` (see `TemporalAttention`).
_HEAD_DIM = 32
_MAX_HEADS = 8

TEMPORAL_KINDS = ("attention", "pool")


# --- temporal aggregation ---------------------------------------------------------------------


class AttentionPool(nn.Module):
    """Months -> one vector: softmax over months of a learned per-month score, weighted sum.

    The score MLP (Linear -> LayerNorm -> GELU -> Linear) is the BioMassters winner's. The
    softmax runs in float32 with absent months at -inf, so it is exact and safe under fp16
    autocast; the caller guarantees at least one present month, so no row is all -inf.
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.score = nn.Sequential(
            nn.Linear(dim, dim), nn.LayerNorm(dim), nn.GELU(), nn.Linear(dim, 1)
        )

    def forward(self, x: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        """`x` `[N, T, D]`, `present` bool `[N, T]` -> `[N, D]`."""
        logits = self.score(x).squeeze(-1).float().masked_fill(~present, float("-inf"))
        weights = logits.softmax(dim=1).to(x.dtype)
        return torch.bmm(weights.unsqueeze(1), x).squeeze(1)  # no [N, T, D] product kept


class TemporalAttention(nn.Module):
    """Masked multi-head self-attention over months, then `AttentionPool`.

    A pre-norm residual block: months attend to each other through PyTorch's fused
    `scaled_dot_product_attention`, a learned month embedding (added to the normalised
    features) tells them apart, and absent months are masked out of the keys (and later of
    the pooling). The sequence is the `T` months of one position, so memory grows with
    positions x T, never positions x positions.

    The attention width is `heads * head_dim` with 32-wide heads, one per 32 channels, at
    most 8 (so at most 256 wide): twelve tokens need little capacity, the cost at the
    shallow full-resolution levels (many positions, few channels) stays at the feature width,
    and the wide deep levels (640 channels for EfficientNetV2-L) keep their q/k/v/out
    projections at a quarter of the square size.
    """

    def __init__(self, dim: int, months: int) -> None:
        super().__init__()
        self.heads = min(max(dim // _HEAD_DIM, 1), _MAX_HEADS)
        self.head_dim = min(dim, _HEAD_DIM)
        width = self.heads * self.head_dim
        self.norm = nn.LayerNorm(dim)
        self.month_embedding = nn.Parameter(torch.zeros(months, dim))
        nn.init.trunc_normal_(self.month_embedding, std=0.02)
        self.qkv = nn.Linear(dim, 3 * width)
        self.proj = nn.Linear(width, dim)
        self.pool = AttentionPool(dim)

    def forward(self, x: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        """`x` `[N, T, D]`, `present` bool `[N, T]` -> `[N, D]`."""
        n, t, _ = x.shape
        qkv = self.qkv(self.norm(x) + self.month_embedding)
        q, k, v = qkv.view(n, t, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        attended = _chunked_attention(q, k, v, present[:, None, None, :])
        x = x + self.proj(attended.transpose(1, 2).reshape(n, t, -1))
        return self.pool(x, present)


def _chunked_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor
) -> torch.Tensor:
    """SDPA over `[N, heads, T, head_dim]`, at most `_SDPA_MAX_BATCH` sequences per call."""
    if q.shape[0] <= _SDPA_MAX_BATCH:
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    chunks = zip(*(z.split(_SDPA_MAX_BATCH) for z in (q, k, v, mask)), strict=True)
    return torch.cat(
        [F.scaled_dot_product_attention(a, b, c, attn_mask=m) for a, b, c, m in chunks]
    )


def fuse_months(features: torch.Tensor, present: torch.Tensor, module: nn.Module) -> torch.Tensor:
    """`[B*T, C, h, w]` encoder features -> `[B, C, h, w]`, fusing months per position.

    Positions become the batch (`B*h*w` sequences of length `T`), which is what keeps the
    full-resolution levels affordable. The result is a channels-last view (no copy back).
    """
    b, t = present.shape
    _, c, h, w = features.shape
    seq = features.view(b, t, c, h, w).permute(0, 3, 4, 1, 2).reshape(b * h * w, t, c)
    mask = present[:, None, None, :].expand(b, h, w, t).reshape(b * h * w, t)
    return module(seq, mask).view(b, h, w, c).permute(0, 3, 1, 2)


# --- the model --------------------------------------------------------------------------------


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
        self.temporal = nn.ModuleList(
            TemporalAttention(c, months) if temporal == "attention" else AttentionPool(c)
            for c in channels
        )
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
        empty = (~present.any(dim=1)).nonzero().flatten().tolist()
        if empty:
            raise ValueError(
                f"sample(s) {empty} of the batch have no month present; "
                "a prediction needs at least one"
            )


# --- encoder weights --------------------------------------------------------------------------


def create_encoder(backbone: str, in_chans: int, pretrained: bool | str | os.PathLike) -> nn.Module:
    """A timm `features_only` encoder, with the weights asked for or a `PretrainedWeightsError`.

    Random init happens only for `pretrained=False`: a silently random encoder would cost a
    whole training run before anyone noticed.
    """
    if not timm.is_model(backbone):
        raise ValueError(f"unknown timm backbone {backbone!r} (see timm.list_models())")
    kwargs: dict[str, Any] = {"features_only": True, "in_chans": in_chans}
    if pretrained is False:
        return timm.create_model(backbone, pretrained=False, **kwargs)
    if pretrained is True:
        try:
            with _hub_offline_unless_reachable():
                return timm.create_model(backbone, pretrained=True, **kwargs)
        except Exception as err:  # hub, network and cache errors come in many types
            raise PretrainedWeightsError(_download_hint(backbone, str(err))) from err
    path = Path(pretrained)
    if not path.is_file():
        raise PretrainedWeightsError(_download_hint(backbone, f"no weights file at {path}"))
    try:
        _check_weights_file(backbone, path)
        return timm.create_model(
            backbone, pretrained=True, pretrained_cfg_overlay={"file": str(path)}, **kwargs
        )
    except Exception as err:  # unreadable file, or weights of another architecture
        raise PretrainedWeightsError(
            f"cannot load {backbone} encoder weights from {path}: {err}"
        ) from err


def _check_weights_file(backbone: str, path: Path) -> None:
    """Fail unless the file holds every weight of the backbone (its classifier aside).

    timm loads `features_only` weights non-strictly (the classifier is dropped), so a file of
    another architecture would otherwise leave the encoder silently random. Costs one extra
    read of the file and one random-init model, once per training run.
    """
    names = load_state_dict(str(path)).keys()
    expected = timm.create_model(backbone, pretrained=False, num_classes=0).state_dict()
    missing = [k for k in expected if k not in names and not k.endswith("num_batches_tracked")]
    if missing:
        raise ValueError(
            f"{len(missing)} of its {len(expected)} tensors are missing from the file "
            f"(e.g. {missing[:3]}); is it a timm {backbone} weights file?"
        )


#: The Hugging Face hub, where timm's pretrained weights come from.
HUB = ("huggingface.co", 443)


def hub_reachable(timeout: float = 3.0) -> bool:
    """Whether a connection to the hub opens within `timeout` seconds."""
    try:
        socket.create_connection(HUB, timeout=timeout).close()
    except OSError:
        return False
    return True


@contextlib.contextmanager
def _hub_offline_unless_reachable() -> Iterator[None]:
    """Offline, the hub client retries for about a minute before failing. When the hub cannot
    be reached, switch it to offline mode for the block: weights already in the local cache
    still load, and missing ones fail at once."""
    import huggingface_hub.constants as hub

    if getattr(hub, "HF_HUB_OFFLINE", True) or hub_reachable():
        yield
        return
    hub.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        hub.HF_HUB_OFFLINE = False


def _download_hint(backbone: str, reason: str) -> str:
    cfg = get_pretrained_cfg(backbone)
    hub_id = cfg.hf_hub_id if cfg is not None and cfg.hf_hub_id else f"timm/{backbone}"
    reason = " ".join(reason.split()).rstrip(".")
    return (
        f"cannot get pretrained weights for {backbone} ({reason}). On a machine with internet "
        f"access download https://huggingface.co/{hub_id}/resolve/main/model.safetensors, "
        f"copy it here and pass --pretrained PATH/model.safetensors (in Python: "
        f"pretrained='PATH/model.safetensors'), or --pretrained none for random init"
    )


# --- building and checkpoints ----------------------------------------------------------------


def check_model_config(config: dict[str, Any]) -> None:
    """Fail unless every key of `config` is a `TemporalUNet` constructor argument."""
    known = set(inspect.signature(TemporalUNet.__init__).parameters) - {"self"}
    unknown = sorted(set(config) - known)
    if unknown:
        raise ValueError(f"unknown model config key(s) {unknown}; known: {sorted(known)}")


def build_model(config: dict[str, Any]) -> TemporalUNet:
    """A `TemporalUNet` from a (possibly partial) dict of its constructor arguments."""
    check_model_config(config)
    return TemporalUNet(**config)


def save_model(
    path: str | os.PathLike, model: TemporalUNet, config: dict[str, Any] | None = None
) -> None:
    """Write `{"model_config": config or model.config, "model": state_dict}` to `path`.

    A `config` given is checked now, not when the file is loaded back: a checkpoint that
    cannot rebuild its model is a lost model."""
    if config is not None:
        check_model_config(config)
    torch.save({"model_config": config or model.config, "model": model.state_dict()}, path)


def read_checkpoint(
    path: str | os.PathLike, keys: Sequence[str] = ("model_config", "model")
) -> dict:
    """A checkpoint dict holding `keys`, read with `weights_only=True` (tensors and plain
    values only), or a one-line `ValueError` naming the file and its fault: zero-byte,
    truncated, not a checkpoint, a whole pickled model, or a dict of another program."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise ValueError(
            f"{path}: holds Python objects, not a plain checkpoint (a whole pickled model? "
            "the BioMassters winner's files go through `agbm import-winner`)"
        ) from None
    except Exception as err:  # EOFError, RuntimeError (zip), KeyError (text), ...: many types
        reason = str(err).strip().splitlines()[0][:120] if str(err).strip() else type(err).__name__
        raise ValueError(f"{path}: unreadable, truncated or not a checkpoint ({reason})") from None
    if not isinstance(ckpt, dict) or not set(keys) <= ckpt.keys():
        found = sorted(map(str, ckpt))[:6] if isinstance(ckpt, dict) else type(ckpt).__name__
        raise ValueError(f"{path}: not an agbm checkpoint (needs {list(keys)}; holds {found})")
    return ckpt


def model_from_checkpoint(ckpt: dict, path: str | os.PathLike) -> TemporalUNet:
    """The model a checkpoint dict describes, with its weights; faults name `path`."""
    config = ckpt["model_config"]
    if not isinstance(config, dict):
        raise ValueError(f"{path}: its model_config is a {type(config).__name__}, not a dict")
    try:
        model = build_model({**config, "pretrained": False})
    except (ValueError, TypeError) as err:
        raise ValueError(f"{path}: its model_config cannot build a model ({err})") from None
    missing, unexpected = [], []
    try:
        result = model.load_state_dict(ckpt["model"], strict=False)
        missing, unexpected = result.missing_keys, result.unexpected_keys
    except RuntimeError as err:  # shape mismatches
        first = next((line.strip() for line in str(err).splitlines()[1:] if line.strip()), "")
        raise ValueError(f"{path}: its weights do not fit its model_config ({first})") from None
    if missing or unexpected:
        raise ValueError(
            f"{path}: its weights do not fit its model_config ({len(missing)} missing, e.g. "
            f"{missing[:2]}; {len(unexpected)} unexpected, e.g. {unexpected[:2]})"
        )
    return model


def load_model(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> TemporalUNet:
    """Rebuild a `TemporalUNet` from a checkpoint dict with "model_config" and "model" keys.

    Weights come from the checkpoint, so the encoder is built with `pretrained=False` (no
    download, no weights file needed). Read by `read_checkpoint`: the file may hold only
    tensors and plain Python values, and every fault is a one-line `ValueError`.
    """
    return model_from_checkpoint(read_checkpoint(path), path).to(map_location)
