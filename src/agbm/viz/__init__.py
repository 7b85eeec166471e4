"""Pictures people would rather look at than read (matplotlib, Agg backend)."""

from agbm.viz.plots import plot_chip, plot_predictions

__all__ = ["plot_chip", "plot_predictions"]
