"""The data layer: BioMassters chips and users' scenes, from files to the model's input.

`layout` knows where the challenge's files are, `raw` reads them, `cache` and `sources` give
the same chips faster from an `agbm prepare` cache, `bands` turns raw values into the model's
input by a model's `InputConventions`, and `dataset` serves chips to torch. `augment` (run on
the training device), `synth` (a learnable synthetic data set in the real layout) and `scene`
(a user's monthly images, read by window) complete it. Nothing here knows about models.
"""

from agbm.data.bands import (
    AGBM_CONVENTIONS,
    BANDS,
    CHANNELS,
    CONVENTIONS,
    MONTH_NAMES,
    MONTHS,
    S1_BANDS,
    S1_MAX,
    S1_MIN,
    S1_NODATA,
    S2_BANDS,
    S2_MAX,
    S2_NODATA_CLOUD,
    WINNER_CONVENTIONS,
    InputConventions,
    model_input,
    normalise,
)
from agbm.data.dataset import ChipDataset, Sample
from agbm.data.layout import (
    FEATURES_METADATA_NAMES,
    SPLITS,
    features_path,
    has_targets,
    list_chips,
    prediction_path,
    splits_present,
    target_path,
)
from agbm.data.raw import RawChip, read_chip, read_prediction, read_raw_chip, read_target
from agbm.data.sources import ChipSource, open_source

__all__ = [
    "AGBM_CONVENTIONS",
    "BANDS",
    "CHANNELS",
    "CONVENTIONS",
    "FEATURES_METADATA_NAMES",
    "MONTHS",
    "MONTH_NAMES",
    "S1_BANDS",
    "S1_MAX",
    "S1_MIN",
    "S1_NODATA",
    "S2_BANDS",
    "S2_MAX",
    "S2_NODATA_CLOUD",
    "SPLITS",
    "WINNER_CONVENTIONS",
    "ChipDataset",
    "ChipSource",
    "InputConventions",
    "RawChip",
    "Sample",
    "features_path",
    "has_targets",
    "list_chips",
    "model_input",
    "normalise",
    "open_source",
    "prediction_path",
    "read_chip",
    "read_prediction",
    "read_raw_chip",
    "read_target",
    "splits_present",
    "target_path",
]
