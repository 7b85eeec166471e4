"""The inference layer: predictions from trained models, for chips and for whole scenes.

`options` holds `InferenceOptions`, the one way into every entry point (how a model makes
a map: its layers and the record of what made it), `layers` what a map holds (its bands and
tags), `intervals` the calibration file and the bounds it gives, `tta` test-time
augmentation, batch prediction and model loading, `chips` the per-chip prediction files of
`agbm predict`, `tiling` the sliding windows and their blending, and `scene` `agbm
predict-scene`. Nothing here imports training code or matplotlib. The names below are
imported when first used (`agbm.lazy`): `tiling` and `intervals` load no torch.
"""

from agbm.lazy import lazy_package

__all__ = lazy_package(
    __name__,
    {
        "chips": ["pack", "predict", "write_prediction"],
        "options": ["InferenceOptions"],
        "scene": ["predict_scene"],
        "tta": ["TTA", "load_for_inference", "predict_batch"],
    },
)
