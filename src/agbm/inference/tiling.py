"""Sliding windows over a scene, and the tapered blending that hides their seams."""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass

import numpy as np

#: Window sides must be multiples of the encoder's total stride.
WINDOW_MULTIPLE = 32


#: Output tile side; finished rows are written in whole rows of tiles, so that each
#: compressed tile is written once.
BLOCK = 256


#: A block of a scene, (top, left, height, width) in pixels: a region's tile.
Block = tuple[int, int, int, int]


@dataclass(frozen=True)
class Tiling:
    """The windows over a `shape` (height, width) scene: `size` (h, w), top-left corners
    `rows` x `cols`, neighbours overlapping by at least `overlap`."""

    shape: tuple[int, int]
    size: tuple[int, int]
    overlap: int
    rows: tuple[int, ...]
    cols: tuple[int, ...]

    def corners(self) -> list[tuple[int, int]]:
        """Top-left pixels of all windows, in raster order (the order blending relies on)."""
        return [(r, c) for r in self.rows for c in self.cols]

    def corners_touching(self, block: Block) -> list[tuple[int, int]]:
        """Top-left pixels of the windows that reach into `block`, in raster order: the
        windows a block of the scene (a region's tile) blends, on the scene's own lattice."""
        (h, w), (top, left, height, width) = self.size, block
        rows = self.rows[
            bisect.bisect_right(self.rows, top - h) : bisect.bisect_left(self.rows, top + height)
        ]
        cols = self.cols[
            bisect.bisect_right(self.cols, left - w) : bisect.bisect_left(self.cols, left + width)
        ]
        return [(r, c) for r in rows for c in cols]

    def weights(self, row: int, col: int) -> np.ndarray:
        """Blending weights of the window at (`row`, `col`), cropped to the scene: tapered
        towards each side that lies inside the scene, flat towards the scene's border."""
        (height, width), (h, w) = self.shape, self.size
        rows = taper(h, self.overlap, start=row > 0, end=row + h < height)[: height - row]
        cols = taper(w, self.overlap, start=col > 0, end=col + w < width)[: width - col]
        return np.outer(rows, cols)


@dataclass
class BlockSums:
    """Weighted prediction sums `total` float64 `[layers, h, w]` (of AGBM, and its spread)
    and summed weights `weight` `[h, w]` over one `block` of a scene: what the windows
    reaching into the block add (`add`), blended by dividing (`blend`). A region's tile
    blends its own windows and the sums its neighbours' windows left over it the same way
    (`add_sums`), so a map made tile by tile is the map made whole."""

    block: Block
    total: np.ndarray
    weight: np.ndarray

    @classmethod
    def zeros(cls, block: Block, layers: int = 1) -> BlockSums:
        """No sums yet over `block`, of `layers` layers."""
        height, width = block[2:]
        total = np.zeros((layers, height, width), dtype=np.float64)
        return cls(block, total, np.zeros((height, width), dtype=np.float64))

    def add(self, row: int, col: int, weighted: np.ndarray, weights: np.ndarray) -> None:
        """Add `weighted` `[layers, h, w]` (layers times weights) and `weights` `[h, w]`
        that start at scene pixel (`row`, `col`), cropped to the block (nothing when they
        miss it)."""
        top, left, height, width = self.block
        r0, r1 = max(row, top), min(row + weights.shape[0], top + height)
        c0, c1 = max(col, left), min(col + weights.shape[1], left + width)
        if r0 >= r1 or c0 >= c1:
            return
        here = (slice(r0 - top, r1 - top), slice(c0 - left, c1 - left))
        there = (slice(r0 - row, r1 - row), slice(c0 - col, c1 - col))
        self.total[(slice(None), *here)] += weighted[(slice(None), *there)]
        self.weight[here] += weights[there]

    def add_window(self, row: int, col: int, pred: np.ndarray, weights: np.ndarray) -> None:
        """Add a window's prediction `[layers, >= h, >= w]` with its `weights` `[h, w]` (the
        window cropped to the scene) at scene pixel (`row`, `col`)."""
        h, w = weights.shape
        self.add(row, col, pred[:, :h, :w] * weights, weights)

    def add_sums(self, other: BlockSums) -> None:
        """Add the sums of another block where it overlaps this one."""
        self.add(other.block[0], other.block[1], other.total, other.weight)

    def blend(self) -> np.ndarray:
        """float32 `[layers, h, w]`: the weighted means, NaN where nothing added weight."""
        out = np.full(self.total.shape, np.nan, dtype=np.float32)
        np.divide(self.total, self.weight, out=out, where=self.weight > 0, casting="unsafe")
        return out


def _starts(length: int, size: int, stride: int) -> tuple[int, ...]:
    """Window starts along one axis, from 0 to `length - size` in equal steps of at most
    `stride`: equal overlaps keep every window edge inside a neighbour's full-weight middle
    (a last window merely moved back to the edge could overlap its neighbour by nearly all
    of it, putting that neighbour's edge in its ramp)."""
    if length <= size:
        return (0,)
    steps = math.ceil((length - size) / stride)
    return tuple(round(k * (length - size) / steps) for k in range(steps + 1))


def plan_tiling(height: int, width: int, *, window: int = 256, overlap: int = 64) -> Tiling:
    """Windows of `window` pixels overlapping by at least `overlap` over a `height x width` scene.

    Along a side shorter than `window` the window shrinks to the side rounded up to a multiple
    of 32: a small scene costs no more than its own size.
    """
    if window <= 0 or window % WINDOW_MULTIPLE:
        raise ValueError(f"`window` must be a positive multiple of {WINDOW_MULTIPLE}, not {window}")
    if not 0 <= overlap < window:
        raise ValueError(
            f"`overlap` must be in 0..{window - 1} (less than `window`), not {overlap}"
        )
    stride = window - overlap
    h, w = (min(window, math.ceil(n / WINDOW_MULTIPLE) * WINDOW_MULTIPLE) for n in (height, width))
    rows, cols = _starts(height, h, stride), _starts(width, w, stride)
    return Tiling((height, width), (h, w), overlap, rows, cols)


def taper(size: int, overlap: int, *, start: bool = True, end: bool = True) -> np.ndarray:
    """1-D window weights `[size]`: raised-cosine ramps over `overlap` pixels at the `start`
    and `end` (a side without a ramp has no neighbour to blend with and keeps full weight).

    Pixel centres sit half a pixel inside a ramp, so every weight is positive, and two windows
    overlapping by exactly `overlap` have weights summing to 1 across their overlap.
    """
    index = np.arange(size) + 0.5
    distance = np.minimum(np.where(start, index, np.inf), np.where(end, size - index, np.inf))
    ramp = np.minimum(distance / overlap, 1.0) if overlap else np.ones(size)
    return (np.sin(np.pi / 2 * ramp) ** 2).astype(np.float32)


class StripBlender:
    """Weighted prediction sums (of each of `layers` layers: AGBM, and its spread) and
    summed weights of a horizontal strip of the scene.

    Windows must arrive in raster order: once a window starting at row r arrives, the rows
    above r are final and can be released. Since rows are released in whole output blocks,
    the strip needs `window + BLOCK` rows, whatever the scene's height.
    """

    def __init__(self, rows: int, width: int, layers: int = 1) -> None:
        self.top = 0  # scene row of the strip's first row
        self.total = np.zeros((layers, rows, width), dtype=np.float32)
        self.weight = np.zeros((rows, width), dtype=np.float32)

    def add(self, row: int, col: int, pred: np.ndarray, weights: np.ndarray) -> None:
        """Add a window's prediction `[layers, h, w]` and weights `[h, w]` at scene pixel
        (`row`, `col`)."""
        h, w = weights.shape
        r = row - self.top
        if r < 0 or r + h > len(self.weight):
            raise ValueError(f"window at row {row} is outside the strip (windows out of order?)")
        self.total[:, r : r + h, col : col + w] += pred * weights
        self.weight[r : r + h, col : col + w] += weights

    def release(self, until: int) -> tuple[int, np.ndarray]:
        """Blend the strip's rows above scene row `until` and drop them; returns the scene row of
        the first and the rows `[layers, n, width]`, NaN where no window added weight."""
        top, n = self.top, until - self.top
        if n <= 0:
            return top, self.total[:, :0]
        weight = self.weight[:n]
        rows = np.full(self.total[:, :n].shape, np.nan, dtype=np.float32)
        np.divide(self.total[:, :n], weight, out=rows, where=weight > 0)
        for acc in (self.total, self.weight):
            acc[..., :-n, :] = acc[..., n:, :]  # NumPy copies overlapping slices correctly
            acc[..., -n:, :] = 0.0
        self.top = until
        return top, rows
