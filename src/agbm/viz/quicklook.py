"""A map's quick-look: the S2 true colour of a clear summer month beside the biomass map."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from matplotlib.figure import Figure
from rasterio.enums import Resampling

from agbm.data.bands import MONTH_NAMES, MONTHS, S2_BANDS, S2_NODATA_CLOUD
from agbm.io import replacing
from agbm.viz.plots import CLEAR_BELOW, RGB_WHITE, SUMMER, choose_month

#: The longest side drawn, in pixels: a quick-look of a large scene is read decimated.
MAX_SIDE = 1000
#: Positions of B4, B3, B2 (red, green, blue) among a month's S2 bands.
RGB_BANDS = tuple(S2_BANDS.index(b) for b in ("B4", "B3", "B2"))


def _read(path: Path, bands: list[int]) -> np.ndarray:
    """`bands` (1-based) of `path`, decimated to at most `MAX_SIDE` pixels a side."""
    with rasterio.open(path) as src:
        scale = max(src.height, src.width) / MAX_SIDE
        shape = (
            max(1, round(src.height / max(scale, 1))),
            max(1, round(src.width / max(scale, 1))),
        )
        return src.read(bands, out_shape=(len(bands), *shape), resampling=Resampling.nearest)


def clearest_summer(s2_stack: Path) -> tuple[int, np.ndarray]:
    """The month `choose_month` picks in a 132-band S2 stack (summer first), and its RGB
    `[H, W, 3]` in [0, 1] (black when no month has a clear pixel)."""
    per_month = len(S2_BANDS)
    clouds = _read(s2_stack, [m * per_month + per_month for m in range(MONTHS)])
    clear = (clouds < CLEAR_BELOW) & (clouds != S2_NODATA_CLOUD)
    best = choose_month({m: float(clear[m].mean()) for m in range(MONTHS)})
    best = SUMMER[0] if best is None else best
    rgb = _read(s2_stack, [best * per_month + b + 1 for b in RGB_BANDS]).astype(np.float32)
    return best, np.clip(rgb / RGB_WHITE, 0, 1).transpose(1, 2, 0)


def _draw_map(ax: Any, fig: Figure, agbm_map: Path) -> None:
    """The map, decimated (read from its overviews, or its tiles' through a VRT), in t/ha
    with a colour bar up to its 99th percentile."""
    agbm = _read(agbm_map, [1])[0].astype(np.float32)
    finite = agbm[np.isfinite(agbm)]
    vmax = float(np.percentile(finite, 99)) if finite.size else 1.0
    shown = ax.imshow(np.ma.masked_invalid(agbm), cmap="viridis", vmin=0, vmax=vmax or 1.0)
    fig.colorbar(shown, ax=ax, fraction=0.046, label="AGBM, t/ha")
    ax.set(xticks=[], yticks=[])


def _save(fig: Figure, out_png: Path | str) -> Path:
    out_png = Path(out_png)
    with replacing(out_png) as tmp:
        fig.savefig(tmp, format="png")
    return out_png


def quicklook(s2_stack: Path | str, agbm_map: Path | str, out_png: Path | str) -> Path:
    """Draw the quick-look PNG: true colour (left) and AGBM in t/ha with a colour bar."""
    month, rgb = clearest_summer(Path(s2_stack))
    fig = Figure(figsize=(12, 5.5), dpi=100, layout="constrained")
    left, right = fig.subplots(1, 2)
    left.imshow(rgb)
    left.set_title(f"Sentinel-2 true colour, {MONTH_NAMES[month]}")
    left.set(xticks=[], yticks=[])
    _draw_map(right, fig, Path(agbm_map))
    right.set_title("above-ground biomass")
    return _save(fig, out_png)


def map_quicklook(agbm_map: Path | str, out_png: Path | str, subtitle: str = "") -> Path:
    """Draw a region's quick-look PNG: its map alone, read from the overviews (a true colour
    of a whole region would read all its inputs, which have none)."""
    fig = Figure(figsize=(8, 7), dpi=100, layout="constrained")
    ax = fig.subplots()
    _draw_map(ax, fig, Path(agbm_map))
    ax.set_title(f"above-ground biomass{', ' + subtitle if subtitle else ''}")
    return _save(fig, out_png)
