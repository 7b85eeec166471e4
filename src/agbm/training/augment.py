"""Training augmentations, the winning recipe's: flips, 90-degree turns, a small random
rotation with reflected borders, and month dropout; optionally a random crop (`--image-size`).

They run on whole batches on the training device, not per chip in the loader: rotating a
`[12, 15, 256, 256]` chip costs ~120 ms on one CPU core, which would make the loader, not
the GPU, set the pace. Each chip's random choices (`Draw`) are drawn on the CPU from an
explicit `torch.Generator` seeded by (seed, epoch, chip), so they are the same on any device,
for any number of ranks and loader workers, and after a resumed run, which is what makes
resuming exact.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class Draw:
    """One chip's random choices: the crop window first, then the rest in this order."""

    flip_w: bool  # left-right
    flip_h: bool  # up-down
    quarter_turns: int  # 0..3 turns of 90 degrees
    degrees: float  # small rotation; 0.0 for none
    drop: torch.Tensor  # bool [months]: months to drop (a subset of the present ones, never all)
    top: int = 0  # the crop window's first row and column (0, 0 without cropping)
    left: int = 0
    #: The rotation's centre, moved by these fractions of the width and height.
    shift: tuple[float, float] = (0.0, 0.0)


@dataclass(frozen=True)
class Augment:
    """Random geometric and temporal augmentation; image and target move together."""

    flip_prob: float = 0.5
    rot90: bool = True
    rotate_prob: float = 0.7
    rotate_degrees: float = 45.0
    #: The rotation's centre moves by up to this fraction of the size along each axis (the
    #: winner's 0.1); drawn only when positive, so runs without it draw as before.
    rotate_shift: float = 0.0
    month_dropout_prob: float = 0.5
    month_drop_rate: float = 0.3
    #: Side of the random square window each chip is cut to first (0: the whole chip).
    crop: int = 0

    #: The options that switch every augmentation off (`agbm train --no-augment`).
    OFF = {"flip_prob": 0.0, "rot90": False, "rotate_prob": 0.0, "month_dropout_prob": 0.0}

    def draw(
        self, present: torch.Tensor, size: tuple[int, int], generator: torch.Generator
    ) -> Draw:
        """The random choices for one chip of `size` (H, W) whose available months are
        `present` `[T]`."""
        if self.crop > min(size):
            raise ValueError(
                f"cannot crop {self.crop} px windows from chips of {size[0]}x{size[1]}"
            )

        def chance(p: float) -> bool:
            return p > 0 and torch.rand((), generator=generator).item() < p

        flip_w, flip_h = chance(self.flip_prob), chance(self.flip_prob)
        turns = int(torch.randint(4, (), generator=generator)) if self.rot90 else 0
        degrees, shift = 0.0, (0.0, 0.0)
        if chance(self.rotate_prob):
            degrees = (torch.rand((), generator=generator).item() * 2 - 1) * self.rotate_degrees
            if self.rotate_shift > 0:
                dx, dy = (torch.rand(2, generator=generator) * 2 - 1) * self.rotate_shift
                shift = (dx.item(), dy.item())
        drop = torch.zeros_like(present)
        if chance(self.month_dropout_prob):
            drop = draw_month_drop(present, self.month_drop_rate, generator)
        top = left = 0
        if self.crop:  # drawn last, so that the other draws do not depend on cropping
            top, left = (
                int(torch.randint(n - self.crop + 1, (), generator=generator)) for n in size
            )
        return Draw(flip_w, flip_h, turns, degrees, drop, top, left, shift)

    def __call__(
        self,
        image: torch.Tensor,
        present: torch.Tensor,
        target: torch.Tensor | None,
        draws: Sequence[Draw],
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Apply each chip's `Draw` to a batch (`image` `[B, T, C, H, W]`, `present` `[B, T]`,
        `target` `[B, 1, H, W]`, or None for chips with sparse labels, which `move_labels`
        moves) on the batch's device; returns new tensors."""
        planes = [image] if target is None else [image, target]
        planes = [
            torch.stack([self._place(x, d) for x, d in zip(p, draws, strict=True)]) for p in planes
        ]
        turned = [i for i, d in enumerate(draws) if d.degrees]
        if turned:
            # Small host tensors move with non_blocking: a blocking copy would make the CPU wait
            # for the GPU at every step.
            index = torch.tensor(turned).to(image.device, non_blocking=True)
            rotated = rotate(
                [p[index] for p in planes],
                [draws[i].degrees for i in turned],
                [draws[i].shift for i in turned],
            )
            for plane, turned_plane in zip(planes, rotated, strict=True):
                plane[index] = turned_plane
        image, target = planes[0], (planes[1] if target is not None else None)
        drop = torch.stack([d.drop for d in draws]).to(image.device, non_blocking=True)
        image = image.masked_fill(drop[:, :, None, None, None], 0.0)
        return image, present & ~drop, target

    def move_labels(
        self, labels: torch.Tensor, draws: Sequence[Draw], size: tuple[int, int]
    ) -> torch.Tensor:
        """Sparse labels `[B, K, 5]` (row, col, ...: `agbm.training.sparse`) moved as each
        chip's image moves under its `Draw` (crop, flips, turns, rotation), so that they stay
        on their pixels; a label moved off the chip becomes a NaN (padding) row."""
        out = labels.clone()
        for i, draw in enumerate(draws):
            row, col = out[i, :, 0].double(), out[i, :, 1].double()
            height, width = size
            if self.crop:
                row, col, height, width = row - draw.top, col - draw.left, self.crop, self.crop
            if draw.flip_w:
                col = width - col
            if draw.flip_h:
                row = height - row
            for _ in range(draw.quarter_turns):  # rot90 of dims (-2, -1): (r, c) -> (W - c, r)
                row, col, height, width = width - col, row, width, height
            if draw.degrees:
                row, col = _rotate_point(row, col, (height, width), draw.degrees, draw.shift)
            off = (row < 0) | (row >= height) | (col < 0) | (col >= width) | row.isnan()
            out[i, :, 0], out[i, :, 1] = row.to(out.dtype), col.to(out.dtype)
            out[i, off] = torch.nan
        return out

    def _place(self, plane: torch.Tensor, draw: Draw) -> torch.Tensor:
        """`plane` `[..., H, W]` cut to the drawn window (first: less to flip and rotate), then
        oriented."""
        if self.crop:
            plane = plane[..., draw.top : draw.top + self.crop, draw.left : draw.left + self.crop]
        return orient(plane, draw)


def orient(plane: torch.Tensor, draw: Draw) -> torch.Tensor:
    """`plane` `[..., H, W]` flipped and turned as `draw` says (a view where possible)."""
    dims = [d for d, flip in ((-1, draw.flip_w), (-2, draw.flip_h)) if flip]
    if dims:
        plane = plane.flip(dims)
    return plane.rot90(draw.quarter_turns, dims=(-2, -1)) if draw.quarter_turns else plane


def rotate(
    planes: list[torch.Tensor],
    degrees: Sequence[float],
    shifts: Sequence[tuple[float, float]] | None = None,
) -> list[torch.Tensor]:
    """Rotate chip `i` of each batched `[n, ..., H, W]` tensor by `degrees[i]` about its
    centre, moved by `shifts[i]` (fractions of width and height; none by default),
    reflecting at the borders.

    Bilinear for everything: the target is a smooth physical field, so interpolating it is
    right, and nearest-neighbour would shift its pixels against the image's.
    """
    radians = torch.tensor(degrees, dtype=torch.float64).deg2rad()
    cos, sin = radians.cos(), radians.sin()
    # The centre c in grid units (-1..1 across the plane); sampling at R (x - c) + c turns
    # the plane about c.
    cx, cy = torch.tensor(shifts or [(0.0, 0.0)] * len(degrees), dtype=torch.float64).T * 2
    tx, ty = cx - (cos * cx - sin * cy), cy - (sin * cx + cos * cy)
    theta = torch.stack([torch.stack([cos, -sin, tx], 1), torch.stack([sin, cos, ty], 1)], 1)
    theta = theta.to(planes[0].device, torch.float32, non_blocking=True)
    grid = None
    out = []
    for plane in planes:
        flat = plane.reshape(len(degrees), -1, *plane.shape[-2:])
        if grid is None:
            grid = F.affine_grid(theta, list(flat.shape), align_corners=False)
        warped = F.grid_sample(
            flat, grid, mode="bilinear", padding_mode="reflection", align_corners=False
        )
        out.append(warped.reshape(plane.shape))
    return out


def _rotate_point(
    row: torch.Tensor,
    col: torch.Tensor,
    size: tuple[int, int],
    degrees: float,
    shift: tuple[float, float],
) -> tuple[torch.Tensor, torch.Tensor]:
    """Where `rotate` takes the points (row, col) of a plane of `size`: it samples the input
    at A p + t (normalised coordinates, align_corners=False), so a point p_in goes to
    A^T (p_in - t)."""
    height, width = size
    radians = math.radians(degrees)
    cos, sin = math.cos(radians), math.sin(radians)
    cx, cy = shift[0] * 2, shift[1] * 2
    tx, ty = cx - (cos * cx - sin * cy), cy - (sin * cx + cos * cy)
    x, y = 2 * col / width - 1 - tx, 2 * row / height - 1 - ty
    x_out, y_out = cos * x + sin * y, -sin * x + cos * y
    return (y_out + 1) * height / 2, (x_out + 1) * width / 2


def draw_month_drop(present: torch.Tensor, rate: float, generator: torch.Generator) -> torch.Tensor:
    """Months to drop `[T]`: each present month with probability `rate`, never all of them."""
    drop = (torch.rand(present.shape, generator=generator) < rate) & present
    if drop.sum() == present.sum():  # keep one present month, chosen at random
        keep = present.nonzero().flatten()
        drop[keep[torch.randint(len(keep), (), generator=generator)]] = False
    return drop


def chip_generator(seed: int, epoch: int, chip_id: str) -> torch.Generator:
    """The generator of a chip's draws in an epoch: a pure function of (seed, epoch, chip)."""
    key = hashlib.blake2b(f"{seed}/{epoch}/{chip_id}".encode(), digest_size=8).digest()
    return torch.Generator().manual_seed(int.from_bytes(key, "little") >> 1)
