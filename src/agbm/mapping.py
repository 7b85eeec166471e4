"""`agbm map`: from a place and a year to a biomass map, in one resumable run.

Composes the year's Sentinel-1 and Sentinel-2 stacks from a STAC catalog (`agbm.compose`),
predicts the map with `agbm predict-scene`'s engine, and draws a PNG quick-look beside it.
The composed inputs are kept (by default in `{map}_inputs/` beside the map), so a run that
is interrupted resumes with the months already downloaded; another map of the same place
and year (another checkpoint) given the same `inputs` folder downloads nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from agbm.compose import compose
from agbm.compose.catalog import PLANETARY_COMPUTER
from agbm.inference.options import InferenceOptions
from agbm.inference.scene import SceneMap, predict_files
from agbm.inference.tta import check_ensemble
from agbm.io import check_output_file
from agbm.viz.quicklook import quicklook


@dataclass(frozen=True)
class PlaceMap:
    """What `map_place` wrote."""

    map: SceneMap
    inputs: Path
    quicklook: Path


def inputs_folder(out: Path) -> Path:
    """Where the composed inputs of the map `out` go by default."""
    return out.with_name(f"{out.stem}_inputs")


def map_place(
    out: Path | str,
    year: int,
    *,
    options: InferenceOptions,
    bbox: Sequence[float] | None = None,
    like: Path | str | None = None,
    catalog: str | Path = PLANETARY_COMPUTER,
    s2_catalog: str | Path | None = None,
    inputs: Path | str | None = None,
    overwrite: bool = False,
    progress: bool = False,
) -> PlaceMap:
    """Compose, predict and draw the AGBM map of `bbox` (or the grid of `like`) in `year`
    from `catalog` (Sentinel-2 from `s2_catalog` when given) into `out`, by the model of
    `options` with their layers (`InferenceOptions.layers`: with a calibration, its bounds
    as bands 2 and 3, and with several members their spread as band 4); the composed
    inputs go to `inputs` (default: `inputs_folder`); an existing map `out` is replaced
    only with `overwrite`; `progress` shows bars of the months composed and the windows
    predicted. The output, the calibration and the checkpoints (each loaded once on the
    CPU) are checked before composing, not after."""
    out = check_output_file(out, [like, *options.checkpoints, options.calibration], overwrite)
    options.layers()
    check_ensemble(options.checkpoints)
    folder = Path(inputs) if inputs is not None else inputs_folder(out)
    composed = compose(folder, year, bbox, like, catalog, s2_catalog, progress=progress)
    done = predict_files(
        composed.s1, composed.s2, out, options=options, overwrite=overwrite, progress=progress
    )
    return PlaceMap(done, folder, quicklook(composed.s2, out, out.with_suffix(".png")))
