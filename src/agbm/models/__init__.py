"""The models layer: the temporal UNet, its parts, and its checkpoints.

`temporal` holds the blocks that fuse the months (by name, `TEMPORAL_BLOCKS`), `encoder` the
timm encoder and its pretrained weights, `unet` the `TemporalUNet` that assembles them with
smp's decoder, `checkpoint` saving and loading with one clear error per bad file, and
`winner` the safe import of the BioMassters winner's own checkpoints (`read` its files,
`translate` them to `TemporalUNet`'s keys, `convert`: `agbm import-winner`).
"""

from agbm.models.checkpoint import build_model, load_model, read_checkpoint, save_model
from agbm.models.temporal import AttentionPool, TemporalAttention
from agbm.models.unet import TemporalUNet

__all__ = [
    "AttentionPool",
    "TemporalAttention",
    "TemporalUNet",
    "build_model",
    "load_model",
    "read_checkpoint",
    "save_model",
]
