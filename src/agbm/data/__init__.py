"""The data layer: BioMassters chips and users' scenes, from files to the model's input.

`bands` holds the sensors' facts (one `Sensor` record each: bands, dtype, no-data, channels),
`layout` knows where the challenge's files are, `geotiff` reads and writes GeoTIFFs (one
checked read, one dtype policy, one profile), `raw` reads a chip's files, `cache` and
`sources` give the same chips faster from an `agbm prepare` cache, `conventions` says how a
model's input is made (`InputConventions`, a property of the model) and `normalise` makes it
in torch, and `dataset` serves chips to torch. `scene` reads a user's monthly images by
window. `synth` (a learnable synthetic data set in the real layout) only writes, through
`geotiff`; no reader needs it. Nothing here knows about models.
"""

from agbm.data.bands import (
    BANDS,
    CHANNELS,
    MONTH_NAMES,
    MONTHS,
    S1_BANDS,
    S1_MAX,
    S1_MIN,
    S1_NODATA,
    S2_BANDS,
    S2_MAX,
    S2_NODATA_CLOUD,
)
from agbm.data.conventions import (
    AGBM_CONVENTIONS,
    CONVENTIONS,
    WINNER_CONVENTIONS,
    InputConventions,
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
from agbm.data.normalise import model_input, normalise
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
