"""The data layer: BioMassters chips and users' scenes, from files to the model's input.

`bands` holds the sensors' facts (one `Sensor` record each: bands, dtype, no-data, channels),
`layout` knows where the challenge's files are, `geotiff` reads and writes GeoTIFFs (one
checked read, one dtype policy, one profile), `raw` reads a chip's files, `cache` and
`sources` give the same chips faster from an `agbm prepare` cache, `conventions` says how a
model's input is made (`InputConventions`, a property of the model) and `normalise` makes it
in torch, and `dataset` serves chips to torch. `scene` reads a user's monthly images by
window. `synth` (a learnable synthetic data set in the real layout) only writes, through
`geotiff`; no reader needs it. Nothing here knows about models.

The names below are imported when first used (`agbm.lazy`): importing one module of the
layer (`agbm.labels.frame`, say) loads only what that module needs, not torch.
"""

from agbm.lazy import lazy_package

__all__ = lazy_package(
    __name__,
    {
        "bands": [
            "BANDS", "CHANNELS", "MONTH_NAMES", "MONTHS", "S1_BANDS", "S1_MAX", "S1_MIN",
            "S1_NODATA", "S2_BANDS", "S2_MAX", "S2_NODATA_CLOUD",
        ],
        "conventions": [
            "AGBM_CONVENTIONS", "CONVENTIONS", "WINNER_CONVENTIONS", "InputConventions",
        ],
        "dataset": ["ChipDataset", "Sample"],
        "layout": [
            "FEATURES_METADATA_NAMES", "SPLITS", "features_path", "has_targets", "list_chips",
            "prediction_path", "splits_present", "target_path",
        ],
        "normalise": ["model_input", "normalise"],
        "raw": ["RawChip", "read_chip", "read_prediction", "read_raw_chip", "read_target"],
        "sources": ["ChipSource", "open_source"],
    },
)  # fmt: skip
