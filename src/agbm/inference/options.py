"""`InferenceOptions`: how a model makes a map, the one way into every inference entry point.

`agbm predict` (`chips.predict`), `predict-scene` (`scene.predict_files`), `map`
(`agbm.mapping.map_place`), `calibrate` (`agbm.evaluation.calibration.calibrate`) and
`map-region` (`agbm.region.engine.map_region`) take one `InferenceOptions`, which the CLI
builds once (`agbm.cli.options.inference_options`). The options go one way: from the CLI to
the options, which decide the map's layers (`layers`) and the record of what made an
output (`record`), to the engine, which hands the layers to the writer.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from agbm.choices import check_tta
from agbm.inference.intervals import Calibration, check_coverage, read_calibration
from agbm.inference.layers import CHECKPOINTS_TAG, TTA_TAG, MapLayers
from agbm.io import file_sha256

#: The tag saying what a map's spread band is.
SPREAD_TAG = (
    "band 4: standard deviation between the models' and TTA passes' predictions, t/ha: "
    "their disagreement, not a calibrated interval"
)


def check_batch_size(batch_size: int) -> None:
    """Refuse a batch of no chips or windows, in one line naming `batch_size`."""
    if batch_size < 1:
        raise ValueError(f"`batch_size` must be at least 1, not {batch_size}")


@dataclass(frozen=True)
class InferenceOptions:
    """How an ensemble makes its maps: the `checkpoints` (several are averaged) with test-time
    augmentation `tta`, mixed precision `amp` (`--amp`) and `batch_size` chips or windows a
    batch; a scene's or region's windows of `window` pixels overlapping by at least
    `overlap`; with `calibration` (`agbm calibrate`'s file of these checkpoints and TTA),
    bounds at `coverage`. Cheap values are checked here, when the options are made, before
    any work; the files when `layers` or `record` reads them.

    The chip commands' loader `workers` are not an option of the model: they are how this
    machine reads chips (`predict` and `calibrate` take them beside the options), and a
    scene's windows are read in one thread. Frozen and hashable: a region's worker loads the
    models once per options."""

    checkpoints: tuple[Path, ...]
    tta: str = "flips"
    amp: str = "auto"
    batch_size: int = 8
    window: int = 256
    overlap: int = 64
    calibration: Path | None = None
    coverage: float = 0.9

    def __post_init__(self) -> None:
        """Paths as `Path`s (one checkpoint may be given alone), and the values checked."""
        given = self.checkpoints
        given = [given] if isinstance(given, (str, os.PathLike)) else given
        object.__setattr__(self, "checkpoints", tuple(Path(c) for c in given))
        if self.calibration is not None:
            object.__setattr__(self, "calibration", Path(self.calibration))
        if not self.checkpoints:
            raise ValueError("give at least one checkpoint in `checkpoints`")
        check_tta(self.tta)
        check_batch_size(self.batch_size)
        if self.calibration is not None:
            check_coverage(self.coverage)

    def absolute(self) -> InferenceOptions:
        """These options with the checkpoints' and calibration's paths absolute: a worker
        of a cluster reads them from its own working folder."""
        calibration = self.calibration and Path(os.path.abspath(self.calibration))
        checkpoints = tuple(Path(os.path.abspath(c)) for c in self.checkpoints)
        return replace(self, checkpoints=checkpoints, calibration=calibration)

    def model_record(self) -> dict[str, Any]:
        """The model: its checkpoints by content (SHA-256; a missing one is a one-line
        `CheckpointError`) and TTA. What a calibration and a map's tags belong to."""
        from agbm.models.checkpoint import checkpoint_file

        shas = [file_sha256(checkpoint_file(c)) for c in self.checkpoints]
        return {"checkpoints": shas, "tta": self.tta}

    def record(self, windows: bool = False) -> dict[str, Any]:
        """What makes an output what it is, for the record of the folder it fills: the
        model (`model_record`), the `windows` when it is made of them (not a chip's), and
        the calibration (by content) and coverage of its bounds, when there are."""
        record = self.model_record()
        if windows:
            record |= {"window": self.window, "overlap": self.overlap}
        if self.calibration is not None:
            record |= {"calibration": file_sha256(self.calibration), "coverage": self.coverage}
        return record

    def own_calibration(self, path: Path | str, kind: str = "stock") -> Calibration:
        """The calibration file `path` of `kind` (the stocks', or the change's of `agbm
        calibrate --change`), refused in one line unless it is of these checkpoints and TTA."""
        calibration = read_calibration(path, kind)
        calibration.check(self.model_record()["checkpoints"], self.tta, path)
        return calibration

    def layers(self) -> MapLayers:
        """The layers of the maps: with a calibration (checked to be of these checkpoints and
        TTA, and to give bounds at this coverage somewhere) its bounds, and with more than
        one member (models x TTA passes) their spread; tagged with the model and what the
        bands are. Missing checkpoints and another model's calibration fail here."""
        model = self.model_record()
        tags = {CHECKPOINTS_TAG: ",".join(model["checkpoints"]), TTA_TAG: self.tta}
        if self.calibration is None:
            return MapLayers(tags=tags)
        intervals = self.own_calibration(self.calibration)
        note = intervals.pixel_note(self.coverage, self.calibration)  # a coverage no bin gives
        coverage = self.coverage

        def bounds(agbm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            return intervals.bounds(agbm, coverage)

        tags["AGBM_BOUNDS"] = (
            f"bands 2-3: calibrated {coverage:.0%} bounds, t/ha (agbm calibrate "
            f"{file_sha256(self.calibration)[:12]}); low clamped at 0"
        )
        if note:
            tags["AGBM_BOUNDS"] += f"; {note.removeprefix('warning: ')}"
        from agbm.inference.tta import members

        spread = members(len(self.checkpoints), self.tta) > 1
        if spread:
            tags["AGBM_SPREAD"] = SPREAD_TAG
        return MapLayers(bounds, spread, tags, note)
