"""The inference layer: predictions from trained models, for chips and for whole scenes.

`options` holds `InferenceOptions`, the one way into every entry point (how a model makes
a map: its layers and the record of what made it), `layers` what a map holds (its bands and
tags), `intervals` the calibration file and the bounds it gives, `tta` test-time
augmentation, batch prediction and model loading, `chips` the per-chip prediction files of
`agbm predict`, `tiling` the sliding windows and their blending, and `scene` `agbm
predict-scene`. Nothing here imports training code or matplotlib.
"""

from agbm.inference.chips import pack, predict, write_prediction
from agbm.inference.options import InferenceOptions
from agbm.inference.scene import predict_scene
from agbm.inference.tta import TTA, load_for_inference, predict_batch

__all__ = [
    "InferenceOptions",
    "TTA",
    "load_for_inference",
    "pack",
    "predict",
    "predict_batch",
    "predict_scene",
    "write_prediction",
]
