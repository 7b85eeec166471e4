"""Training augmentations of a chip sample, the winning recipe's: flips, 90-degree turns, a
small random rotation with reflected borders, and month dropout.

Each draw comes from an explicit `torch.Generator`, so a sample's augmentation depends only
on (seed, epoch, index): the same in any number of loader workers, on any rank, and after a
resumed run, which is what makes resuming exact.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from agbm.data import Sample


@dataclass(frozen=True)
class Augment:
    """Random geometric and temporal augmentation; image and target move together."""

    flip_prob: float = 0.5
    rot90: bool = True
    rotate_prob: float = 0.7
    rotate_degrees: float = 45.0
    month_dropout_prob: float = 0.5
    month_drop_rate: float = 0.3

    def __call__(self, sample: Sample, generator: torch.Generator) -> Sample:
        image, present = sample["image"], sample["present"].clone()
        target = sample.get("target")
        planes = [image] if target is None else [image, target]

        def chance(p: float) -> bool:
            return p > 0 and torch.rand((), generator=generator).item() < p

        if chance(self.flip_prob):
            planes = [p.flip(-1) for p in planes]
        if chance(self.flip_prob):
            planes = [p.flip(-2) for p in planes]
        if self.rot90:
            k = int(torch.randint(4, (), generator=generator))
            planes = [p.rot90(k, dims=(-2, -1)) for p in planes]
        if chance(self.rotate_prob):
            angle = (torch.rand((), generator=generator).item() * 2 - 1) * self.rotate_degrees
            planes = rotate(planes, angle)
        image = planes[0]
        if chance(self.month_dropout_prob):
            image, present = drop_months(image, present, self.month_drop_rate, generator)
        out = {**sample, "image": image.contiguous(), "present": present}
        if target is not None:
            out["target"] = planes[1].contiguous()
        return out


def rotate(planes: list[torch.Tensor], degrees: float) -> list[torch.Tensor]:
    """Rotate `[..., H, W]` tensors about their centre, reflecting at the borders.

    Bilinear for everything: the target is a smooth physical field, so interpolating it is
    right, and nearest-neighbour would shift its pixels against the image's.
    """
    theta = math.radians(degrees)
    matrix = torch.tensor(
        [[math.cos(theta), -math.sin(theta), 0.0], [math.sin(theta), math.cos(theta), 0.0]]
    )
    out = []
    for plane in planes:
        flat = plane.reshape(1, -1, *plane.shape[-2:])
        grid = F.affine_grid(matrix[None], list(flat.shape), align_corners=False)
        warped = F.grid_sample(
            flat, grid, mode="bilinear", padding_mode="reflection", align_corners=False
        )
        out.append(warped.reshape(plane.shape))
    return out


def drop_months(
    image: torch.Tensor, present: torch.Tensor, rate: float, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Drop each present month with probability `rate` (zeroed, present=False), never all."""
    drop = (torch.rand(present.shape, generator=generator) < rate) & present
    if drop.sum() == present.sum():  # keep one present month, chosen at random
        keep = present.nonzero().flatten()
        drop[keep[torch.randint(len(keep), (), generator=generator)]] = False
    image = image.clone()
    image[drop] = 0.0
    return image, present & ~drop
