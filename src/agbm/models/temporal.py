"""Fusing the months: the blocks that turn `T` month feature vectors into one, per position."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

#: Most sequences (spatial positions) per fused-attention call. The CUDA flash and
#: memory-efficient SDPA kernels put the batch in a grid dimension capped at 65535
#: (pytorch/pytorch#146704), and a 256x256 input at batch 8 has 131072 positions at stride 2.
_SDPA_MAX_BATCH = 32768


#: Width of one attention head; heads are capped at `_MAX_HEADS` (see `TemporalAttention`).
_HEAD_DIM = 32


_MAX_HEADS = 8


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


#: The month fusion blocks by name (`TemporalUNet(temporal=...)`), each built from its
#: level's feature width and the number of months.
TEMPORAL_BLOCKS: dict[str, Callable[[int, int], nn.Module]] = {
    "attention": TemporalAttention,
    "pool": lambda dim, months: AttentionPool(dim),
}
