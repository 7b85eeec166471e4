"""The inference layer: predictions from trained models, for chips and for whole scenes.

`tta` holds test-time augmentation, batch prediction and model loading, `chips` the
per-chip prediction files of `agbm predict`, `tiling` the sliding windows and their
blending, and `scene` `agbm predict-scene`. Nothing here imports training code or matplotlib.
The names below are imported when first used (`agbm.lazy`): `tiling` and `intervals` load
no torch.
"""

from agbm.lazy import lazy_package

__all__ = lazy_package(
    __name__,
    {
        "chips": ["pack", "predict", "write_prediction"],
        "scene": ["predict_scene"],
        "tta": ["TTA", "load_for_inference", "predict_batch"],
    },
)
