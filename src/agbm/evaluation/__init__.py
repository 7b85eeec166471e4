"""The evaluation layer: predictions scored with the challenge metric, and the baselines a
model must beat."""

from agbm.evaluation.baselines import baseline_scores
from agbm.evaluation.evaluate import Evaluation, evaluate

__all__ = ["Evaluation", "baseline_scores", "evaluate"]
