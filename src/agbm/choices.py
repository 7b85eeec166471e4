"""The names of settings whose code needs torch, without torch: what `--tta`, `--amp` and
`--temporal` take, so that a command's `--help` and its checks before any work load no torch.

The code they name is keyed by them (`agbm.inference.tta.TTA`, `agbm.runtime.AMP_DTYPES`,
`agbm.models.temporal.TEMPORAL_BLOCKS`); tests/test_layers.py checks that names and code
agree.
"""

#: The test-time augmentations (`agbm.inference.tta.TTA`), by name.
TTA_NAMES = ("none", "hv", "flips", "d4")
#: The mixed precisions `--amp` names (`agbm.runtime.AMP_DTYPES`), besides "auto".
AMP_NAMES = ("bf16", "fp16", "off")
#: The month fusion blocks (`agbm.models.temporal.TEMPORAL_BLOCKS`), by name.
TEMPORAL_KINDS = ("attention", "pool")


def check_tta(tta: str) -> None:
    """Refuse an unknown TTA name before any model runs (and before torch loads)."""
    if tta not in TTA_NAMES:
        raise ValueError(f"`tta` must be one of {', '.join(TTA_NAMES)}, not {tta!r}")
