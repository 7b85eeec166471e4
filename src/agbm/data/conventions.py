"""The input conventions a model was trained with: how the files' raw values become its
input image. A property of the model, recorded in every checkpoint; no torch here."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from agbm.data.bands import S1_MAX, S1_MIN, S2_MAX


@dataclass(frozen=True)
class InputConventions:
    """How a model's input image is made from the files: part of the model, not of a run.

    A model only works on inputs made the way it was trained on, so every checkpoint records
    its conventions (`TemporalUNet.config["input_conventions"]`) and everything that feeds a
    model applies the model's own. Two sets exist:

    * `AGBM` (agbm's first models): normalised values clipped to [0, 1], S2 pixels whose
      cloud probability is 255 set to 0, months without any file masked out of the
      attention;
    * `WINNER` (the BioMassters winner's, as measured from its code): nothing clipped, cloud
      probability 255 read as 1.0, every month attended (absent ones as zeros).

    Both use the winner's fixed min-max constants, S1 no data (-9999) as 0 and zeros for a
    satellite without a file that month.
    """

    s1_min: tuple[float, ...] = tuple(S1_MIN.tolist())
    s1_max: tuple[float, ...] = tuple(S1_MAX.tolist())
    s2_max: tuple[float, ...] = tuple(S2_MAX.tolist())
    #: Clip every normalised value to [0, 1] (values beyond the constants' range are rare).
    clamp: bool = True
    #: Set all bands of S2 pixels whose cloud probability is 255 (no data) to 0.
    cloud_nodata: bool = True
    #: Mask months with neither an S1 nor an S2 file out of the attention.
    mask_absent: bool = True

    def to_dict(self) -> dict[str, Any]:
        """Plain values, as checkpoints store them (loadable with `weights_only=True`)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in vars(self).items()}

    @classmethod
    def from_config(cls, value: str | dict[str, Any] | InputConventions) -> InputConventions:
        """From a name ("agbm", "winner"), a stored dict, or conventions themselves."""
        if isinstance(value, InputConventions):
            return value
        if isinstance(value, str):
            if value not in CONVENTIONS:
                raise ValueError(
                    f"unknown input conventions {value!r}; known: {', '.join(CONVENTIONS)}"
                )
            return CONVENTIONS[value]
        if not isinstance(value, dict):
            raise ValueError(f"input conventions must be a name or a dict, got {value!r}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(value) - known)
        if unknown:
            raise ValueError(f"unknown input convention(s) {unknown}; known: {sorted(known)}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in value.items()})

    @property
    def name(self) -> str:
        """ "agbm", "winner", or "custom"."""
        return next((n for n, c in CONVENTIONS.items() if c == self), "custom")

    def attended(self, present: Any) -> Any:
        """The month mask the model gets: `present` itself, or all months (`[..., 12]`)."""
        return present if self.mask_absent else present.new_ones(present.shape)


AGBM_CONVENTIONS = InputConventions()


WINNER_CONVENTIONS = InputConventions(clamp=False, cloud_nodata=False, mask_absent=False)


CONVENTIONS = {"agbm": AGBM_CONVENTIONS, "winner": WINNER_CONVENTIONS}
