"""Augmentations move image and target together, are reproducible per chip, act on each chip
of a batch independently, and never drop all months."""

from __future__ import annotations

import pytest
import torch

from agbm.training.augment import Augment, Draw, chip_generator, draw_month_drop, rotate

MONTHS = 12


def batch(chips: int = 1) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Distinct pixel values; the target is month 0's first band, so it must move with it."""
    image = torch.arange(chips * MONTHS * 2 * 8 * 8, dtype=torch.float32)
    image = image.reshape(chips, MONTHS, 2, 8, 8)
    return image, torch.ones(chips, MONTHS, dtype=torch.bool), image[:, 0, :1].clone()


def draws(augment: Augment, present: torch.Tensor, seed: int) -> list[Draw]:
    return [
        augment.draw(p, (8, 8), chip_generator(seed, 0, f"chip{i}")) for i, p in enumerate(present)
    ]


def test_image_and_target_get_the_same_geometric_transform() -> None:
    augment = Augment(month_dropout_prob=0.0)
    for seed in range(8):
        image, present, target = batch(3)
        image, _, target = augment(image, present, target, draws(augment, present, seed))
        torch.testing.assert_close(target, image[:, 0, :1])


def test_flips_and_turns_match_hand_made_ones() -> None:
    image, present, target = batch()
    drop = torch.zeros(MONTHS, dtype=torch.bool)
    draw = Draw(flip_w=True, flip_h=False, quarter_turns=1, degrees=0.0, drop=drop)
    out, kept, _ = Augment()(image, present, target, [draw])
    torch.testing.assert_close(out, image.flip(-1).rot90(1, dims=(-2, -1)), rtol=0, atol=0)
    assert kept.all()


def test_each_chip_of_a_batch_is_augmented_as_if_alone() -> None:
    augment = Augment()
    image, present, target = batch(4)
    chosen = draws(augment, present, seed=3)
    assert any(d.degrees for d in chosen) and any(not d.degrees for d in chosen)
    together = augment(image, present, target, chosen)
    for i in range(4):
        alone = augment(image[i : i + 1], present[i : i + 1], target[i : i + 1], [chosen[i]])
        for a, b in zip(together, alone, strict=True):
            torch.testing.assert_close(a[i : i + 1], b, rtol=0, atol=1e-5)


def test_draws_depend_only_on_seed_epoch_and_chip() -> None:
    def numbers(seed: int, epoch: int, chip: str) -> torch.Tensor:
        return torch.rand(8, generator=chip_generator(seed, epoch, chip))

    first = numbers(0, 5, "0003d2eb")
    assert torch.equal(first, numbers(0, 5, "0003d2eb"))
    for other in (numbers(1, 5, "0003d2eb"), numbers(0, 6, "0003d2eb"), numbers(0, 5, "0003d2ec")):
        assert not torch.equal(first, other)


def test_rotation_by_zero_is_identity_and_by_90_matches_rot90() -> None:
    plane = torch.rand(2, 3, 16, 16)
    torch.testing.assert_close(rotate([plane], [0.0, 0.0])[0], plane, atol=1e-5, rtol=0)
    turned = rotate([plane], [90.0, -90.0])[0]
    torch.testing.assert_close(turned[0], plane[0].rot90(1, dims=(-2, -1)), atol=1e-4, rtol=0)
    torch.testing.assert_close(turned[1], plane[1].rot90(-1, dims=(-2, -1)), atol=1e-4, rtol=0)


def test_rotation_turns_about_the_shifted_centre() -> None:
    """A half turn maps pixel p to 2c - p: with the centre one pixel (1/8 of 8) off the
    middle (3.5, 3.5), the image lands two pixels further."""
    plane = torch.zeros(3, 1, 8, 8)
    plane[:, 0, 3, 5] = 1.0
    out = rotate([plane], [180.0] * 3, [(0.0, 0.0), (0.125, 0.0), (0.0, 0.125)])[0][:, 0]
    for i, (row, col) in enumerate([(4, 2), (4, 4), (6, 2)]):
        expected = torch.zeros(8, 8)
        expected[row, col] = 1.0
        torch.testing.assert_close(out[i], expected, atol=1e-5, rtol=0)
    assert torch.equal(rotate([plane], [0.0] * 3, [(0.1, -0.1)] * 3)[0], plane)  # no turn


def test_the_rotation_shift_is_drawn_only_when_asked_for() -> None:
    present = torch.ones(12, dtype=torch.bool)

    def draw(shift: float) -> Draw:
        return Augment(rotate_prob=1.0, rotate_shift=shift).draw(
            present, (64, 64), chip_generator(0, 0, "0003d2eb")
        )

    plain, shifted = draw(0.0), draw(0.1)
    assert plain.shift == (0.0, 0.0) and plain.degrees == shifted.degrees
    assert all(0 < abs(s) <= 0.1 for s in shifted.shift)


@pytest.mark.parametrize("seed", range(30))
def test_month_dropout_zeroes_dropped_months_and_never_drops_all(seed: int) -> None:
    present = torch.tensor([True, False] * 6)
    drop = draw_month_drop(present, 0.9, torch.Generator().manual_seed(seed))
    assert not (drop & ~present).any() and (present & ~drop).any()
    draw = Draw(False, False, 0, 0.0, drop)
    image, kept, _ = Augment()(torch.ones(1, MONTHS, 2, 4, 4), present[None], batch()[2], [draw])
    assert torch.equal(kept[0], present & ~drop)
    assert torch.equal(image[0].flatten(1).any(1), ~drop)


def test_month_dropout_at_rate_one_keeps_exactly_one_month() -> None:
    present = torch.tensor([True, False] * 6)
    drop = draw_month_drop(present, 1.0, torch.Generator().manual_seed(0))
    assert (present & ~drop).sum() == 1


def test_crop_cuts_image_and_target_to_the_same_window_and_covers_every_offset() -> None:
    augment = Augment(flip_prob=0.0, rot90=False, rotate_prob=0.0, month_dropout_prob=0.0, crop=4)
    image, present, target = batch(1)
    chosen = [draws(augment, present, seed)[0] for seed in range(300)]
    for draw in chosen[:10]:
        out, _, out_target = augment(image, present, target, [draw])
        window = (slice(draw.top, draw.top + 4), slice(draw.left, draw.left + 4))
        torch.testing.assert_close(out, image[..., window[0], window[1]], rtol=0, atol=0)
        torch.testing.assert_close(out_target, out[:, 0, :1], rtol=0, atol=0)
    offsets = {(d.top, d.left) for d in chosen}
    assert offsets == {(t, left) for t in range(5) for left in range(5)}  # 8 - 4 + 1 per axis


def test_crop_leaves_the_other_draws_unchanged_and_refuses_too_large_windows() -> None:
    present = torch.ones(MONTHS, dtype=torch.bool)
    whole = Augment().draw(present, (8, 8), chip_generator(0, 0, "c"))
    cropped = Augment(crop=4).draw(present, (8, 8), chip_generator(0, 0, "c"))
    assert (whole.flip_w, whole.flip_h, whole.quarter_turns, whole.degrees) == (
        cropped.flip_w,
        cropped.flip_h,
        cropped.quarter_turns,
        cropped.degrees,
    )
    assert torch.equal(whole.drop, cropped.drop)
    with pytest.raises(ValueError, match="cannot crop 16 px"):
        Augment(crop=16).draw(present, (8, 8), chip_generator(0, 0, "c"))
