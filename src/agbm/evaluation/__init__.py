"""The evaluation layer: predictions scored with the challenge metric, and the baselines a
model must beat. The names below are imported when first used (`agbm.lazy`), so that
`agbm stats`, `change` and `estimate` load no torch: only the baselines need it."""

from agbm.lazy import lazy_package

__all__ = lazy_package(
    __name__,
    {"baselines": ["baseline_scores"], "evaluate": ["Evaluation", "evaluate"]},
)
