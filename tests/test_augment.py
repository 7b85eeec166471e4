"""Augmentations move image and target together, are reproducible, and never drop all months."""

from __future__ import annotations

import torch

from agbm.augment import Augment, drop_months, rotate


def sample(present: list[bool] | None = None) -> dict:
    image = torch.arange(12 * 2 * 8 * 8, dtype=torch.float32).reshape(12, 2, 8, 8)
    target = image[0, :1].clone()
    present = torch.tensor(present if present is not None else [True] * 12)
    return {"image": image, "present": present, "target": target, "chip_id": "x"}


def test_image_and_target_get_the_same_geometric_transform() -> None:
    augment = Augment(rotate_prob=0.0, month_dropout_prob=0.0)
    for seed in range(8):
        out = augment(sample(), torch.Generator().manual_seed(seed))
        torch.testing.assert_close(out["target"], out["image"][0, :1])


def test_same_generator_seed_same_result_different_seed_differs() -> None:
    augment = Augment()
    runs = [augment(sample(), torch.Generator().manual_seed(s)) for s in (1, 1, 2, 3, 4)]
    torch.testing.assert_close(runs[0]["image"], runs[1]["image"])
    assert any(not torch.equal(runs[0]["image"], r["image"]) for r in runs[2:])


def test_rotation_by_zero_is_identity_and_by_90_matches_rot90_inside() -> None:
    plane = torch.rand(3, 16, 16)
    torch.testing.assert_close(rotate([plane], 0.0)[0], plane, atol=1e-5, rtol=0)
    turned = rotate([plane], 90.0)[0]
    expected = plane.rot90(1, dims=(-2, -1))
    ok = (
        torch.isclose(turned, expected, atol=1e-4).all()
        or torch.isclose(turned, plane.rot90(-1, dims=(-2, -1)), atol=1e-4).all()
    )
    assert ok


def test_month_dropout_zeroes_dropped_months_and_never_drops_all() -> None:
    present = torch.tensor([True, False] * 6)
    for seed in range(50):
        image, kept = drop_months(
            torch.ones(12, 2, 4, 4),
            present,
            rate=0.9,
            generator=torch.Generator().manual_seed(seed),
        )
        assert kept.any() and not (kept & ~present).any()
        assert (image.flatten(1).any(1) == kept | ~present).all()
    # rate 1: exactly one month survives
    _, kept = drop_months(torch.ones(12, 1, 1, 1), present, 1.0, torch.Generator().manual_seed(0))
    assert kept.sum() == 1
